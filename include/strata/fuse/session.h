// SPDX-License-Identifier: Apache-2.0
// fuse: the only code that speaks the FUSE protocol (libfuse3 low-level API).
//
// Each request is decoded, handed to the merge::Overlay engine, and answered exactly once. No exception leaves a
// callback: every entry point catches, logs, and replies ENOMEM or EIO. The session runs multi-threaded
// (fuse/loop.h: few workers wait on the device, the rest park), with -o io_uring also on per-CPU rings
// (fuse/uring.h), and takes no global lock of its own. Requests that may change the upper
// pass the control::WriteGate (an atomic counter unless paused), so the control socket can pause them.
#pragma once

#include <string>
#include <vector>

#include "strata/merge/overlay.h"

namespace strata::fuse {

struct SessionOptions {
  std::string mountpoint;
  std::vector<std::string> mount_options;  // passed to libfuse as -o (allow_other, default_permissions, ...)
  bool foreground = false;
  bool debug = false;
  double timeout = 86400.0;   // entry/attr cache seconds; the engine sees every change, so long is safe
  unsigned max_threads = 16;  // worker threads of the session loop
  unsigned idle_threads = 8;  // idle workers kept beyond the readers (fewer: thread churn on bursts)
  unsigned readers = 0;       // workers waiting on /dev/fuse at once (fuse/loop.h); 0: one per online CPU
  bool prefetch = true;       // prefetch subdirectories' listings (fuse/prefetch.h)
  bool writeback = false;     // kernel writeback cache
  bool io_uring = false;      // FUSE over io_uring when the kernel allows it (fuse/uring.h)
  unsigned io_uring_threads = 2;  // ring threads (entries) per CPU
  std::string fsname = "stratafs";
  std::string control_socket;  // the control socket's path (control/server.h); empty: none
};

// Mount, detach unless foreground (the parent returns once the mount is ready), serve until unmounted or
// signalled, then clean up. Returns the process exit status.
// The control socket, when asked for, exists before the parent returns (it is made before mounting, so a path
// that cannot be used fails the mount) and is served by a thread of the daemon; it is removed at exit.
int run(merge::Overlay& ov, const SessionOptions& opts);

}  // namespace strata::fuse
