// SPDX-License-Identifier: Apache-2.0
// The session's worker threads: libfuse's receive/process calls, scheduled so that few threads wait on
// /dev/fuse at once.
//
// The kernel hands each request to the waiter that has waited longest (a FIFO of exclusive waiters). With
// libfuse's loop every idle worker waits there, so consecutive requests of one caller rotate over all of them,
// each wake-up landing on a thread that last ran elsewhere (on these VMs: an exit to the host per cross-CPU
// wake). Here at most `max_readers` workers hold a slot to wait on the device; the others park in a LIFO of our
// own. A worker that takes a request while no other slot is held wakes a parked one (or starts one, up to
// `max_threads`) to take its place, so requests that block (fsync, a pause) never starve the rest. Two
// things keep such stand-ins rare: a worker takes its slot back the moment its reply is written (custom I/O
// hooks; the caller's next request comes right after that reply), and requests the kernel does not wait for
// (FORGET, RELEASE, INTERRUPT) are handled without giving the slot up. A READ defers its stand-in: the
// thread in run_loop starts it 2 ms later if no worker waits on the device by then, or the READ handler
// asks for it at once when the data is not in the page cache (about_to_block), since a cached READ is back
// in microseconds and a third worker on 2 CPUs only competes with the busy ones.
// Thread-safety: run_loop() is called once per session; slots are atomic, the mutex is taken only to park,
// wake or start a worker.
#pragma once

#include "daemon.h"

namespace strata::fuse {

struct LoopOptions {
  unsigned max_threads = 16;  // workers at most
  unsigned max_readers = 2;   // workers waiting on /dev/fuse at once (at least 1)
  unsigned max_parked = 8;    // parked workers kept; more exit
  // Install libfuse custom I/O (plain system calls) to learn when a worker has replied. False when another
  // transport owns the session's I/O (io_uring: fuse/uring.h).
  bool own_io = true;
  // A worker serving a directory walk runs on the walker's CPU (walk_affinity.h).
  bool follow_walks = true;
};

// Serve `se` until it exits (unmount, signal, fatal read error). Workers run with signals blocked; the calling
// thread takes the signals (libfuse's handlers end the session) and then interrupts workers waiting on the
// device. Returns 0, or 1 when the session ended on an error.
int run_loop(fuse_session* se, const LoopOptions& opts);

// For the READ handler, on a loop worker: true when taking this request left no worker waiting on the device
// and the stand-in is deferred (a READ served from the page cache is back in microseconds).
bool stand_in_deferred();
// The request is about to wait (for the disk): start its stand-in now rather than after the delay.
void about_to_block();

}  // namespace strata::fuse
