// SPDX-License-Identifier: Apache-2.0
// WalkAffinity: a /dev/fuse worker serving a directory walk runs on the walker's CPU.
//
// A walk (find, du, rm -rf) sends one request at a time and sleeps until the reply. Left to the scheduler,
// the worker it wakes often runs on another CPU than the walker, because the walker's CPU is busy at the
// moment of the wake-up; then every request and every reply is a wake-up across CPUs, which on these VMs is
// an exit to the host and back. FUSE over io_uring queues each request on the caller's CPU; over /dev/fuse
// the kernel does not say where the caller runs, so a worker reads it from /proc (the request header names
// the caller's thread) and pins itself there while it serves that walker's directory reads:
//   - READDIR/READDIRPLUS of the thread whose directory read this worker served last: pin to that thread's
//     CPU (looked up again every kRecheckEvery such requests, so a walker that moves is followed);
//   - any other request made by a thread, and directory reads of a different thread than the last one:
//     back to the CPUs the worker started with, so creates, writes and callers on several CPUs keep the
//     scheduler's spreading (pinning a worker to a single creating caller makes the caller move away);
//   - requests no one waits for (FORGET, BATCH_FORGET, RELEASEDIR, INTERRUPT, pid 0): nothing.
// The prefetch thread (prefetch.h) keeps off the walker's CPU, so the two do not compete.
// Measured on 2 vCPUs, bench `find` medians of 5: 56.6 -> 41.4 ms; `rm -rf` 1.30 -> 1.15 s.
// Thread-safety: one object per worker thread, used by that thread only.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>

namespace strata::fuse {

class WalkAffinity {
 public:
  static constexpr unsigned kRecheckEvery = 16;

  enum class Action { kNone, kPin, kUnpin };
  struct Decision {
    Action action = Action::kNone;
    int cpu = -1;  // kPin: the CPU
  };

  // `cpu_of`: the CPU a thread last ran on, -1 if unknown (sys::last_cpu_of; tests pass their own).
  explicit WalkAffinity(std::function<int(pid_t)> cpu_of) : cpu_of_(std::move(cpu_of)) {}

  // What to do before serving a request (opcode and pid from its header). Updates the state as if the
  // decision were carried out; failed() reports a pin that could not be.
  Decision on_request(uint32_t opcode, uint32_t pid);
  void failed() { pinned_ = -1; }  // the affinity call failed: count the worker as unpinned
  int pinned() const { return pinned_; }

 private:
  std::function<int(pid_t)> cpu_of_;
  uint32_t walker_ = 0;  // the thread of the last directory read served
  unsigned reads_ = 0;   // consecutive directory reads of walker_
  int pinned_ = -1;
};

// Carries out WalkAffinity's decisions on the calling worker thread.
class WorkerPlacement {
 public:
  WorkerPlacement();  // takes the calling thread's CPU set as the one to return to
  bool usable() const { return usable_; }
  void on_request(uint32_t opcode, uint32_t pid);

 private:
  WalkAffinity walk_;
  cpu_set_t allowed_;
  bool usable_ = false;  // more than one CPU allowed
};

}  // namespace strata::fuse
