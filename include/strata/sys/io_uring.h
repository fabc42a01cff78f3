// SPDX-License-Identifier: Apache-2.0
// An io_uring instance with 128-byte SQEs (room for a command's arguments, as FUSE over io_uring wants), made
// and used by one thread. Only the system calls and the ring memory: no liburing among our dependencies.
#pragma once

#include <linux/io_uring.h>

#include <cstddef>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::sys {

class SqeRing {
 public:
  SqeRing() = default;
  SqeRing(const SqeRing&) = delete;
  SqeRing& operator=(const SqeRing&) = delete;
  ~SqeRing();

  // Makes the ring on the calling thread (single issuer, task work deferred to the waits), or with cooperative
  // task work where the kernel lacks those (before 6.1). Needs extended arguments (5.11) for timed waits.
  Status setup(unsigned entries);

  // A zeroed 128-byte SQE at the tail; push() publishes it.
  io_uring_sqe* prepare();
  void push();

  // Submits what is pushed and waits up to `timeout_ms` (< 0: no limit) for a completion. False on an error
  // other than a timeout or an interruption (errno is set).
  bool submit_and_wait(long timeout_ms);

  // Takes one completion if there is one.
  bool pop(io_uring_cqe* out);

  static constexpr size_t kSqeSize = 128;

 private:
  UniqueFd fd_;
  void* rings_ = nullptr;  // SQ and CQ rings, one mapping (IORING_FEAT_SINGLE_MMAP)
  void* sqes_ = nullptr;
  size_t rings_len_ = 0, sqes_len_ = 0;
  unsigned* sq_head_ = nullptr;
  unsigned* sq_tail_ = nullptr;
  unsigned sq_mask_ = 0;
  unsigned* sq_array_ = nullptr;
  unsigned* cq_head_ = nullptr;
  unsigned* cq_tail_ = nullptr;
  unsigned cq_mask_ = 0;
  io_uring_cqe* cqes_ = nullptr;
};

}  // namespace strata::sys
