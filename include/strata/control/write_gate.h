// SPDX-License-Identifier: Apache-2.0
// WriteGate: lets modifying operations through, or holds them while the mount is paused.
//
// Every operation that may change the upper layer holds a Guard from enter() for its whole length
// (until its reply is sent). pause() closes the gate to new entries and returns once every
// operation that got in has left; resume() opens it again. Reads never touch the gate. This is how
// `strata commit --pause` gets an upper that does not change under it (control/server.h).
//
// Pauses are counted: each begin_pause() needs its own resume(); the gate opens when the count
// returns to 0. shut() opens the gate for good (the daemon is going away): blocked and later
// entries get an empty Guard (the caller fails the operation) and pausing is refused from then on.
//
// Hot path: enter() and the Guard's release are one compare-and-swap and one fetch_sub on an atomic
// word (in-flight count + paused bit) when not paused; the mutex is taken only by blocked entries,
// by pausers, and by the last operation leaving a paused gate (to wake the pauser).
//
// Lock order: WriteGate::mu_ is a leaf — nothing else is locked while it is held, and no callback
// runs under it. enter() must be called before any engine lock is taken (Node::mu, NodeTable,
// FdCache): a writer blocked in the gate while holding an engine lock could stall an in-flight
// operation, and the pause would never drain.
//
// Blocking: a blocked entry sleeps on a condition variable, waking every `poll` interval to ask
// `give_up` (when given); if it answers true the gate is shut. The FUSE session uses this to let
// its workers go when the session exits while paused (libfuse joins its workers at exit; a worker
// held here forever would hang it). Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace strata::control {

class WriteGate {
 public:
  // Proof of entry; leaving happens when it is destroyed. Empty (false) when the gate was shut.
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& o) noexcept : gate_(o.gate_) { o.gate_ = nullptr; }
    Guard& operator=(Guard&& o) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() {
      if (gate_) gate_->leave();
    }
    explicit operator bool() const { return gate_ != nullptr; }

   private:
    friend class WriteGate;
    explicit Guard(WriteGate* g) : gate_(g) {}
    WriteGate* gate_ = nullptr;
  };

  explicit WriteGate(std::function<bool()> give_up = {},
                     std::chrono::milliseconds poll = std::chrono::milliseconds(200));
  WriteGate(const WriteGate&) = delete;
  WriteGate& operator=(const WriteGate&) = delete;

  // Enter as a modifying operation; blocks while paused.
  Guard enter() {
    uint64_t s = state_.load(std::memory_order_relaxed);
    while (!(s & (kPaused | kShut))) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        return Guard(this);
    }
    return enter_slow();
  }

  // Count one pause and close the gate to new entries (in-flight ones continue). False when shut.
  bool begin_pause();
  // While paused: wait up to `timeout` for the in-flight operations to leave. True once none is in
  // flight.
  bool wait_drained(std::chrono::milliseconds timeout);
  // begin_pause() then wait until drained. False when shut.
  bool pause();
  // Give back one pause; at zero, blocked entries proceed. False if no pause was held.
  bool resume();
  // Open for good: blocked and later entries get an empty Guard; begin_pause() fails.
  void shut();

  bool paused() const { return state_.load(std::memory_order_relaxed) & kPaused; }
  bool is_shut() const { return state_.load(std::memory_order_relaxed) & kShut; }
  uint64_t in_flight() const { return state_.load(std::memory_order_relaxed) & kCount; }
  uint64_t blocked() const { return blocked_.load(std::memory_order_relaxed); }
  unsigned pauses();

 private:
  static constexpr uint64_t kPaused = uint64_t{1} << 63;
  static constexpr uint64_t kShut = uint64_t{1} << 62;
  static constexpr uint64_t kCount = kShut - 1;

  Guard enter_slow();
  void leave();

  // in-flight count | kPaused | kShut. kPaused and kShut change only under mu_; the count changes
  // anywhere.
  std::atomic<uint64_t> state_{0};
  std::atomic<uint64_t> blocked_{0};  // entries waiting (for stats)
  std::mutex mu_;
  std::condition_variable resumed_;  // blocked entries wait here
  std::condition_variable drained_;  // pausers wait here
  unsigned pauses_ = 0;              // under mu_
  std::function<bool()> give_up_;
  std::chrono::milliseconds poll_;
};

}  // namespace strata::control
