// SPDX-License-Identifier: Apache-2.0
// control::WriteGate: pause waits for the operations inside, holds new ones until resume, counts
// pausers, and lets blocked operations go (with an empty guard) once shut or given up.
//
// "Still blocked" checks sleep a little and expect nothing to have happened: they can fail (if the
// gate lets an operation through) but never flake the other way. Waits for something that must
// happen are bounded generously.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "strata/control/write_gate.h"

namespace {

using strata::control::WriteGate;
using namespace std::chrono_literals;

// Wait (bounded) until `pred` holds; false if it never did.
template <typename P>
bool eventually(P pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(WriteGate, FastPathCountsInFlight) {
  WriteGate g;
  EXPECT_EQ(g.in_flight(), 0u);
  {
    auto a = g.enter();
    auto b = g.enter();
    EXPECT_TRUE(a);
    EXPECT_TRUE(b);
    EXPECT_EQ(g.in_flight(), 2u);
    auto c = std::move(a);
    EXPECT_FALSE(a);  // NOLINT: moved-from is empty by contract
    EXPECT_EQ(g.in_flight(), 2u);
  }
  EXPECT_EQ(g.in_flight(), 0u);
  EXPECT_FALSE(g.paused());
}

TEST(WriteGate, PauseWaitsForInFlight) {
  WriteGate g;
  auto inside = std::make_unique<WriteGate::Guard>(g.enter());
  std::atomic<bool> paused{false};
  std::thread t([&] {
    EXPECT_TRUE(g.pause());
    paused = true;
  });
  ASSERT_TRUE(eventually([&] { return g.paused(); }));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(paused.load()) << "pause returned while an operation was in flight";
  inside.reset();
  t.join();
  EXPECT_TRUE(paused.load());
  EXPECT_EQ(g.in_flight(), 0u);
  EXPECT_TRUE(g.resume());
}

TEST(WriteGate, NewEntriesBlockUntilResume) {
  WriteGate g;
  ASSERT_TRUE(g.pause());
  std::atomic<bool> entered{false};
  std::thread t([&] {
    auto e = g.enter();
    EXPECT_TRUE(e);
    entered = true;
  });
  ASSERT_TRUE(eventually([&] { return g.blocked() == 1; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(entered.load()) << "an operation entered a paused gate";
  EXPECT_EQ(g.in_flight(), 0u);
  EXPECT_TRUE(g.resume());
  t.join();
  EXPECT_TRUE(entered.load());
  EXPECT_EQ(g.blocked(), 0u);
  EXPECT_FALSE(g.paused());
}

TEST(WriteGate, PausedByTwoResumesWhenBothRelease) {
  WriteGate g;
  ASSERT_TRUE(g.pause());
  ASSERT_TRUE(g.pause());
  EXPECT_EQ(g.pauses(), 2u);
  std::atomic<bool> entered{false};
  std::thread t([&] {
    auto e = g.enter();
    entered = true;
  });
  ASSERT_TRUE(eventually([&] { return g.blocked() == 1; }));
  EXPECT_TRUE(g.resume());
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(entered.load()) << "one of two pauses released the gate";
  EXPECT_TRUE(g.paused());
  EXPECT_TRUE(g.resume());
  t.join();
  EXPECT_TRUE(entered.load());
  EXPECT_FALSE(g.resume()) << "a resume without a pause must say so";
  EXPECT_EQ(g.pauses(), 0u);
}

TEST(WriteGate, WaitDrainedTimesOut) {
  WriteGate g;
  auto inside = g.enter();
  ASSERT_TRUE(g.begin_pause());
  EXPECT_FALSE(g.wait_drained(20ms));
  { auto gone = std::move(inside); }
  EXPECT_TRUE(g.wait_drained(10s));
  EXPECT_TRUE(g.resume());
}

TEST(WriteGate, ShutReleasesBlockedWithEmptyGuards) {
  WriteGate g;
  ASSERT_TRUE(g.pause());
  std::atomic<int> empty{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      if (!g.enter()) ++empty;
    });
  ASSERT_TRUE(eventually([&] { return g.blocked() == 4; }));
  g.shut();
  for (auto& t : ts) t.join();
  EXPECT_EQ(empty.load(), 4);
  EXPECT_FALSE(g.enter());
  EXPECT_FALSE(g.begin_pause());
}

TEST(WriteGate, GiveUpHookShutsTheGate) {
  std::atomic<bool> quit{false};
  WriteGate g([&] { return quit.load(); }, 5ms);
  ASSERT_TRUE(g.pause());
  std::atomic<int> result{-1};
  std::thread t([&] { result = g.enter() ? 1 : 0; });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(result.load(), -1) << "gave up although the hook said no";
  quit = true;
  t.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_TRUE(g.is_shut());
}

// Many operations against repeated pauses: whenever pause() has returned, nothing is inside.
TEST(WriteGate, NothingInsideWhilePausedUnderLoad) {
  WriteGate g;
  std::atomic<int> inside{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ops{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 6; ++i)
    workers.emplace_back([&] {
      while (!stop) {
        auto e = g.enter();
        ++inside;
        std::this_thread::yield();
        --inside;
        ++ops;
      }
    });
  int violations = 0;
  for (int round = 0; round < 200; ++round) {
    ASSERT_TRUE(g.pause());
    for (int k = 0; k < 20; ++k) {
      if (inside.load() != 0) ++violations;
      std::this_thread::yield();
    }
    EXPECT_TRUE(g.resume());
    std::this_thread::yield();
  }
  stop = true;
  for (auto& t : workers) t.join();
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(g.in_flight(), 0u);
  EXPECT_GT(ops.load(), 0u);
}

}  // namespace
