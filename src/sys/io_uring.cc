// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/io_uring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace strata::sys {
namespace {

int io_uring_setup(unsigned entries, io_uring_params* p) {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, p));
}

int io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg,
                   size_t argsz) {
  return static_cast<int>(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz));
}

}  // namespace

SqeRing::~SqeRing() {
  if (sqes_) ::munmap(sqes_, sqes_len_);
  if (rings_) ::munmap(rings_, rings_len_);
}

Status SqeRing::setup(unsigned entries) {
  io_uring_params p{};
  // Task work (a completion arriving) runs only when the ring's thread waits for it: no interrupts.
  p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int fd = io_uring_setup(entries, &p);
  if (fd < 0 && errno == EINVAL) {  // before 6.1: no deferred task work
    p = io_uring_params{};
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN;
    fd = io_uring_setup(entries, &p);
  }
  if (fd < 0) return errno_error("io_uring_setup");
  fd_.reset(fd);
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_EXT_ARG))
    return make_error(ENOSYS, "io_uring", "kernel too old (no single mmap or extended arguments)");
  rings_len_ = std::max<size_t>(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                                p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
  void* r = ::mmap(nullptr, rings_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r == MAP_FAILED) return errno_error("mmap io_uring rings");
  rings_ = r;
  sqes_len_ = p.sq_entries * kSqeSize;
  void* s = ::mmap(nullptr, sqes_len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (s == MAP_FAILED) return errno_error("mmap io_uring SQEs");
  sqes_ = s;
  auto* base = static_cast<char*>(rings_);
  sq_head_ = reinterpret_cast<unsigned*>(base + p.sq_off.head);
  sq_tail_ = reinterpret_cast<unsigned*>(base + p.sq_off.tail);
  sq_mask_ = *reinterpret_cast<unsigned*>(base + p.sq_off.ring_mask);
  sq_array_ = reinterpret_cast<unsigned*>(base + p.sq_off.array);
  cq_head_ = reinterpret_cast<unsigned*>(base + p.cq_off.head);
  cq_tail_ = reinterpret_cast<unsigned*>(base + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<unsigned*>(base + p.cq_off.ring_mask);
  cqes_ = reinterpret_cast<io_uring_cqe*>(base + p.cq_off.cqes);
  return {};
}

io_uring_sqe* SqeRing::prepare() {
  unsigned idx = *sq_tail_ & sq_mask_;
  auto* sqe = reinterpret_cast<io_uring_sqe*>(static_cast<char*>(sqes_) + idx * kSqeSize);
  std::memset(sqe, 0, kSqeSize);
  sq_array_[idx] = idx;
  return sqe;
}

void SqeRing::push() { __atomic_store_n(sq_tail_, *sq_tail_ + 1, __ATOMIC_RELEASE); }

bool SqeRing::submit_and_wait(long timeout_ms) {
  unsigned pending = *sq_tail_ - __atomic_load_n(sq_head_, __ATOMIC_ACQUIRE);
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  io_uring_getevents_arg arg{};
  if (timeout_ms >= 0) arg.ts = reinterpret_cast<uint64_t>(&ts);  // else: no timeout
  int r = io_uring_enter(fd_.get(), pending, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
  return r >= 0 || errno == ETIME || errno == EINTR || errno == EAGAIN || errno == EBUSY;
}

bool SqeRing::pop(io_uring_cqe* out) {
  unsigned head = *cq_head_;
  if (head == __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE)) return false;
  *out = cqes_[head & cq_mask_];
  __atomic_store_n(cq_head_, head + 1, __ATOMIC_RELEASE);
  return true;
}

}  // namespace strata::sys
