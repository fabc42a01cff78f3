// SPDX-License-Identifier: Apache-2.0
#include "walk_affinity.h"

#include <linux/fuse.h>

#include "strata/sys/process.h"

namespace strata::fuse {

WalkAffinity::Decision WalkAffinity::on_request(uint32_t opcode, uint32_t pid) {
  switch (opcode) {
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_RELEASEDIR:
    case FUSE_INTERRUPT:
      return {};
    default:
      break;
  }
  if (pid == 0) return {};
  const bool dir_read = opcode == FUSE_READDIR || opcode == FUSE_READDIRPLUS;
  if (!dir_read || pid != walker_) {
    // Not (or not yet) a walk: the first directory read of a thread only marks it.
    walker_ = dir_read ? pid : 0;
    reads_ = dir_read ? 1 : 0;
    if (pinned_ < 0) return {};
    pinned_ = -1;
    return {Action::kUnpin, -1};
  }
  ++reads_;
  if ((reads_ - 2) % kRecheckEvery != 0) return {};
  int cpu = cpu_of_(static_cast<pid_t>(pid));
  if (cpu < 0 || cpu == pinned_) return {};
  pinned_ = cpu;
  return {Action::kPin, cpu};
}

WorkerPlacement::WorkerPlacement() : walk_([](pid_t tid) { return sys::last_cpu_of(tid); }) {
  CPU_ZERO(&allowed_);
  usable_ = sched_getaffinity(0, sizeof allowed_, &allowed_) == 0 && CPU_COUNT(&allowed_) > 1;
}

void WorkerPlacement::on_request(uint32_t opcode, uint32_t pid) {
  if (!usable_) return;
  WalkAffinity::Decision d = walk_.on_request(opcode, pid);
  if (d.action == WalkAffinity::Action::kPin) {
    if (!CPU_ISSET(d.cpu, &allowed_)) return walk_.failed();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(d.cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) walk_.failed();
  } else if (d.action == WalkAffinity::Action::kUnpin) {
    (void)sched_setaffinity(0, sizeof allowed_, &allowed_);  // fails only if our cpuset changed: stays pinned
  }
}

}  // namespace strata::fuse
