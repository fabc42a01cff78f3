// SPDX-License-Identifier: Apache-2.0
// Shared by the fuse/ adapter files: the per-session state and the reply helpers.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>
#include <cstdint>
#include <new>

#include "strata/base/log.h"
#include "strata/control/write_gate.h"
#include "strata/fuse/session.h"
#include "plus_policy.h"
#include "prefetch.h"

namespace strata::fuse {

struct Daemon {
  merge::Overlay* ov;
  double timeout;
  bool writeback;
  control::WriteGate* gate;             // every modifying request passes it (gated()); the control socket pauses it
  std::atomic<uint64_t> requests{0};    // requests answered through guarded(), for stats (relaxed)
  PlusPolicy plus{};                    // which READDIRPLUS entries carry attributes
  bool no_opendir = false;              // the kernel takes ENOSYS from opendir as "never send it" (ops_dir.cc)
  bool io_uring = false;                // requests may come through io_uring rings (no splice: uring.h)
  ListingPrefetcher* prefetch = nullptr;  // null: listings are taken only when read (started after the fork)
};

inline Daemon* daemon_of(fuse_req_t req) { return static_cast<Daemon*>(fuse_req_userdata(req)); }

inline merge::Node* node_of(fuse_req_t req, fuse_ino_t ino) {
  if (ino == FUSE_ROOT_ID) return daemon_of(req)->ov->root();
  return reinterpret_cast<merge::Node*>(ino);
}

inline fuse_ino_t nodeid(Daemon* d, merge::Node* n) {
  return n == d->ov->root() ? FUSE_ROOT_ID : reinterpret_cast<fuse_ino_t>(n);
}

inline void reply_error(fuse_req_t req, const Error& e) {
  if (e.err <= 0 || e.err == EIO) log::debug("request failed: %s", e.message().c_str());
  fuse_reply_err(req, to_errno(e));
}

// Answer a request whose only result is success or an errno.
inline void reply_status(fuse_req_t req, const Status& r) {
  if (!r) return reply_error(req, r.error());
  fuse_reply_err(req, 0);
}

// Fill an entry reply for a looked-up node; the kernel's lookup count is taken before the reply goes out and
// given back if the reply does not arrive.
void reply_entry(fuse_req_t req, merge::Entry& e);
void fill_entry(Daemon* d, const merge::Entry& e, fuse_entry_param* out);

// Run `f`; if anything escapes, answer the request here (it has not been answered: replies come last).
template <typename F>
void guarded(fuse_req_t req, const char* op, F&& f) noexcept {
  try {
    daemon_of(req)->requests.fetch_add(1, std::memory_order_relaxed);
    f();
  } catch (const std::bad_alloc&) {
    log::error("%s: out of memory", op);
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& ex) {
    log::error("%s: %s", op, ex.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    log::error("%s: unknown exception", op);
    fuse_reply_err(req, EIO);
  }
}

// A request that may change the upper: guarded() inside the write gate, held from before the engine is called
// until after the reply (the gate comes before every engine lock; see control/write_gate.h). While the mount is
// paused this worker thread blocks here; at most max_threads workers can, after which every request (reads
// too) waits in the kernel's queue until resume. A gate shut because the session is ending answers EIO.
template <typename F>
void gated(fuse_req_t req, const char* op, F&& f) noexcept {
  guarded(req, op, [&] {
    auto entry = daemon_of(req)->gate->enter();
    if (!entry) return (void)fuse_reply_err(req, EIO);
    f();
  });
}

// Operation tables filled by each adapter file.
void add_entry_ops(fuse_lowlevel_ops* ops);
void add_file_ops(fuse_lowlevel_ops* ops);
void add_dir_ops(fuse_lowlevel_ops* ops);
void add_xattr_ops(fuse_lowlevel_ops* ops);

}  // namespace strata::fuse
