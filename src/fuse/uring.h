// SPDX-License-Identifier: Apache-2.0
// FUSE over io_uring: per-CPU request queues instead of the one /dev/fuse queue.
//
// With /dev/fuse every request wakes whichever worker has waited longest, usually on another CPU than the
// caller, and every reply wakes the caller back across CPUs; on a VM each of those wakes of an idle vCPU is an
// exit to the host. With io_uring (Linux 6.14+, module parameter fuse.enable_uring=Y) the kernel hands a
// request to a ring entry of the caller's own CPU, served here by threads pinned to that CPU, so the caller
// and the daemon take turns on one CPU.
//
// libfuse 3.14 knows nothing of it, so the transport sits under libfuse's custom-I/O hooks
// (fuse_session_custom_io): requests taken from ring entries are laid out as /dev/fuse would deliver them and
// given to fuse_session_process_buf; the reply that libfuse writes from that thread is copied into the entry
// and committed. INIT, FORGET and INTERRUPT keep using /dev/fuse (the kernel sends them there). The INIT
// reply gains the FUSE_OVER_IO_URING flag only when the kernel offered it and every ring was set up; if
// registering fails the kernel falls back to /dev/fuse by itself.
#pragma once

#include <memory>

#include "daemon.h"

namespace strata::fuse {

struct UringOptions {
  unsigned threads_per_cpu = 2;  // ring entries (each with its own thread) per CPU queue
};

class UringTransport {
 public:
  // Installs the custom I/O on `se` (mounted: fuse_session_fd is the /dev/fuse fd). Returns null and logs
  // when it cannot (the session is then left as it was).
  static std::unique_ptr<UringTransport> install(fuse_session* se, const UringOptions& opts);
  ~UringTransport();  // stops and joins the ring threads

  UringTransport(const UringTransport&) = delete;
  UringTransport& operator=(const UringTransport&) = delete;

  bool active() const;  // the kernel took the INIT flag and every queue registered (for stats)

  struct Impl;

 private:
  explicit UringTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// On a ring thread serving a request: the entry's payload buffer, where a reply of up to `size` bytes can be
// built in place (fuse_reply_buf from it is then not copied again). Null elsewhere or when it is too small.
char* uring_reply_buffer(size_t size);

}  // namespace strata::fuse
