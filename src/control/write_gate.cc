// SPDX-License-Identifier: Apache-2.0
#include "strata/control/write_gate.h"

namespace strata::control {

WriteGate::Guard& WriteGate::Guard::operator=(Guard&& o) noexcept {
  if (this != &o) {
    if (gate_) gate_->leave();
    gate_ = o.gate_;
    o.gate_ = nullptr;
  }
  return *this;
}

WriteGate::WriteGate(std::function<bool()> give_up, std::chrono::milliseconds poll)
    : give_up_(std::move(give_up)), poll_(poll) {}

WriteGate::Guard WriteGate::enter_slow() {
  std::unique_lock lk(mu_);
  blocked_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    uint64_t s = state_.load(std::memory_order_relaxed);
    if (s & kShut) break;
    if (!(s & kPaused)) {
      // kPaused cannot be set now (we hold mu_); fast-path entries may race on the count, which
      // fetch_add allows.
      state_.fetch_add(1, std::memory_order_acquire);
      blocked_.fetch_sub(1, std::memory_order_relaxed);
      return Guard(this);
    }
    if (resumed_.wait_for(lk, poll_) == std::cv_status::timeout && give_up_) {
      lk.unlock();  // no callback under mu_ (it is a leaf lock)
      bool quit = give_up_();
      if (quit) shut();
      lk.lock();
    }
  }
  blocked_.fetch_sub(1, std::memory_order_relaxed);
  return Guard();
}

void WriteGate::leave() {
  uint64_t prev = state_.fetch_sub(1, std::memory_order_release);
  if ((prev & kPaused) && (prev & kCount) == 1) {
    // The last one out of a paused gate wakes the pausers. Taking mu_ orders this after a pauser
    // that has checked the count and is about to wait (it holds mu_ until it waits), so the wake-up
    // is not lost.
    std::lock_guard lk(mu_);
    drained_.notify_all();
  }
}

bool WriteGate::begin_pause() {
  std::lock_guard lk(mu_);
  if (state_.load(std::memory_order_relaxed) & kShut) return false;
  if (pauses_++ == 0) state_.fetch_or(kPaused, std::memory_order_relaxed);
  return true;
}

bool WriteGate::wait_drained(std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  return drained_.wait_for(lk, timeout, [&] {
    uint64_t s = state_.load(std::memory_order_acquire);
    return (s & kCount) == 0 || (s & kShut);
  }) && !(state_.load(std::memory_order_relaxed) & kShut);
}

bool WriteGate::pause() {
  if (!begin_pause()) return false;
  while (!wait_drained(std::chrono::hours(1))) {
    if (is_shut()) return false;
  }
  return true;
}

bool WriteGate::resume() {
  std::lock_guard lk(mu_);
  if (pauses_ == 0) return false;
  if (--pauses_ == 0) {
    state_.fetch_and(~kPaused, std::memory_order_relaxed);
    resumed_.notify_all();
  }
  return true;
}

void WriteGate::shut() {
  std::lock_guard lk(mu_);
  state_.fetch_or(kShut, std::memory_order_relaxed);
  resumed_.notify_all();
  drained_.notify_all();
}

unsigned WriteGate::pauses() {
  std::lock_guard lk(mu_);
  return pauses_;
}

}  // namespace strata::control
