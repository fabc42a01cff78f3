// SPDX-License-Identifier: Apache-2.0
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "daemon.h"
#include "loop.h"
#include "uring.h"
#include "strata/control/server.h"
#include "strata/sys/process.h"

namespace strata::fuse {
namespace {

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* d = static_cast<Daemon*>(userdata);
  auto want = [&](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  want(FUSE_CAP_ATOMIC_O_TRUNC);  // O_TRUNC reaches open: copy-up then skips the data
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_NO_OPENDIR_SUPPORT);
  d->no_opendir = (conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
  want(FUSE_CAP_CACHE_SYMLINKS);
  if (d->io_uring) {
    // Replies on a ring are copied into its entry by the custom writev; a spliced reply would bypass it.
    conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
  } else {
    want(FUSE_CAP_SPLICE_WRITE);  // not SPLICE_MOVE: see op_read
    want(FUSE_CAP_SPLICE_READ);
  }
  want(FUSE_CAP_ASYNC_READ);
  if (d->writeback) want(FUSE_CAP_WRITEBACK_CACHE);
  else conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // Lock requests are answered by the kernel locally (single-host semantics, as overlayfs over local fs).
  conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

// The control socket's view of the engine: sync the upper, and counters that cost no lock worth mentioning.
control::ServerHooks control_hooks(merge::Overlay* ov, Daemon* d, const std::unique_ptr<UringTransport>* uring) {
  control::ServerHooks h;
  h.sync = [ov] { return ov->sync_upper(); };
  h.stats = [ov, d, uring](control::JsonLine& j) {
    j.add("writable", ov->has_upper())
        .add("layers", static_cast<uint64_t>(ov->layer_count()))
        .add("nodes", static_cast<uint64_t>(ov->table().size()))
        .add("fd_cache_nodes", static_cast<uint64_t>(ov->fd_cache().size()))
        .add("fd_cache_fds", static_cast<uint64_t>(ov->fd_cache().fd_count()))
        .add("copy_ups", ov->copy_ups())
        .add("copy_ups_deferred", ov->copy_ups_deferred())
        .add("copy_up_waits", ov->copy_up_waits())
        .add("listings_prefetched", ov->listings_prefetched())
        .add("listings_prefetch_used", ov->listings_prefetch_used())
        .add("fuse_requests", d->requests.load(std::memory_order_relaxed))
        .add("io_uring", *uring != nullptr && (*uring)->active());
  };
  return h;
}

}  // namespace

int run(merge::Overlay& ov, const SessionOptions& opts) {
  fuse_session* se = nullptr;
  // libfuse joins its workers when the session ends; one held by a pause would hang the exit. Blocked
  // workers poll this, and the gate opens for good (the request fails with EIO) once the session is over.
  control::WriteGate gate([&se] { return se != nullptr && fuse_session_exited(se) != 0; });
  Daemon d{&ov, opts.timeout, opts.writeback, &gate};
  // Started after the fork; outlives every thread that serves requests (the loop's workers, the ring threads).
  std::unique_ptr<ListingPrefetcher> prefetch;
  std::unique_ptr<UringTransport> uring;  // stopped before the session goes; d.io_uring: installed
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  add_entry_ops(&ops);
  add_file_ops(&ops);
  add_dir_ops(&ops);
  add_xattr_ops(&ops);

  std::vector<std::string> argv_s{"stratafs"};
  if (opts.debug) argv_s.push_back("-d");
  std::string o = "fsname=" + opts.fsname + ",subtype=stratafs";
  for (const auto& m : opts.mount_options) o += "," + m;
  argv_s.push_back("-o");
  argv_s.push_back(o);
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  se = fuse_session_new(&args, &ops, sizeof ops, &d);
  if (!se) {
    log::error("cannot start the FUSE session (options: %s)", o.c_str());
    return 1;
  }
  int rc = 1;
  // Made before mounting (a bad path fails the mount), inherited across fuse_daemonize's fork; served by a
  // thread started after it (threads do not survive a fork).
  std::unique_ptr<control::Server> control;
  if (!opts.control_socket.empty()) {
    auto srv = control::Server::listen(opts.control_socket, &gate, control_hooks(&ov, &d, &uring));
    if (!srv) {
      log::error("%s", srv.error().message().c_str());
      fuse_session_destroy(se);
      fuse_opt_free_args(&args);
      return 1;
    }
    control = std::move(*srv);
  }
  if (fuse_set_signal_handlers(se) != 0) {
    log::error("cannot install signal handlers");
  } else {
    if (fuse_session_mount(se, opts.mountpoint.c_str()) != 0) {
      log::error("cannot mount on %s", opts.mountpoint.c_str());
    } else {
      // The mount exists now: the parent may return and the caller use it (requests wait for the loop).
      // The ring threads start when INIT is answered, after the fork below.
      if (opts.io_uring) {
        uring = UringTransport::install(se, UringOptions{opts.io_uring_threads});
        d.io_uring = uring != nullptr;
      }
      if (fuse_daemonize(opts.foreground ? 1 : 0) != 0) {
        log::error("cannot detach from the terminal");
      } else {
        if (!opts.foreground) log::use_syslog("stratafs");
        // Now, before the worker threads exist: every later doubling of the fd table would stall the request
        // that opened the fd for an RCU grace period (a `find` paid 4 of them, 40 ms). Room for the directory
        // fd cache and as many open files again. (Not before the fork: a child's table is sized to its fds.)
        (void)sys::reserve_fd_table(2 * ov.fd_cache().capacity() + 1024);
        if (control) {
          auto st = control->start();
          if (!st) log::error("control socket %s not served: %s", opts.control_socket.c_str(),
                              st.error().message().c_str());
        }
        if (opts.prefetch) {
          try {
            prefetch = std::make_unique<ListingPrefetcher>(&ov);
          } catch (const std::exception& e) {  // no thread: listings are taken when read
            log::warning("listing prefetch off: %s", e.what());
          }
        }
        d.prefetch = prefetch.get();
        LoopOptions lo;
        lo.max_threads = opts.max_threads;
        lo.max_parked = opts.idle_threads;
        // One waiting worker per CPU (up to 4): measured on 2 vCPUs, more waiters only spread consecutive
        // requests over more threads and CPUs (threads=2 made rm -rf 25% faster than 16 waiting workers).
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        lo.max_readers = opts.readers ? opts.readers : static_cast<unsigned>(std::clamp(cpus, 1L, 4L));
        lo.own_io = uring == nullptr;
        lo.follow_walks = opts.prefetch;  // the other half of speeding up walks (prefetch.h, walk_affinity.h)
        rc = run_loop(se, lo);
      }
      // Before the session goes: connections closed (their pauses released), socket file removed; ring
      // threads joined (the kernel ends their commands at unmount; the transport's stop event wakes them).
      if (control) control->stop();
      uring.reset();
      d.prefetch = nullptr;
      prefetch.reset();
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return rc;
}

}  // namespace strata::fuse
