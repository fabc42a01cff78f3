// SPDX-License-Identifier: Apache-2.0
// fuse/walk_affinity.h: when a worker pins itself to a walker's CPU, follows it, and lets go.
#include "walk_affinity.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>

#include <map>

namespace {

using strata::fuse::WalkAffinity;
using Action = WalkAffinity::Action;

struct Fixture : ::testing::Test {
  std::map<pid_t, int> cpu{{100, 1}, {200, 0}};
  int lookups = 0;
  WalkAffinity w{[this](pid_t t) {
    ++lookups;
    auto it = cpu.find(t);
    return it == cpu.end() ? -1 : it->second;
  }};
  Action act(uint32_t op, uint32_t pid, int* to = nullptr) {
    auto d = w.on_request(op, pid);
    if (to) *to = d.cpu;
    return d.action;
  }
};

TEST_F(Fixture, PinsOnTheSecondDirectoryReadOfOneThread) {
  EXPECT_EQ(act(FUSE_READDIRPLUS, 100), Action::kNone);  // one read is not a walk
  int to = -1;
  EXPECT_EQ(act(FUSE_READDIR, 100, &to), Action::kPin);
  EXPECT_EQ(to, 1);
  EXPECT_EQ(w.pinned(), 1);
  EXPECT_EQ(lookups, 1);
  // Then it stays, looking the walker up only every kRecheckEvery directory reads.
  for (unsigned i = 1; i < WalkAffinity::kRecheckEvery; ++i) EXPECT_EQ(act(FUSE_READDIRPLUS, 100), Action::kNone);
  EXPECT_EQ(lookups, 1);
  cpu[100] = 0;  // the walker moved
  EXPECT_EQ(act(FUSE_READDIRPLUS, 100, &to), Action::kPin);
  EXPECT_EQ(to, 0);
  EXPECT_EQ(lookups, 2);
}

TEST_F(Fixture, OtherRequestsAndOtherThreadsUnpin) {
  act(FUSE_READDIRPLUS, 100);
  ASSERT_EQ(act(FUSE_READDIR, 100), Action::kPin);
  EXPECT_EQ(act(FUSE_CREATE, 100), Action::kUnpin);  // a walk that creates: the scheduler places it
  EXPECT_EQ(w.pinned(), -1);
  EXPECT_EQ(act(FUSE_CREATE, 100), Action::kNone);
  act(FUSE_READDIRPLUS, 100);
  ASSERT_EQ(act(FUSE_READDIRPLUS, 100), Action::kPin);
  EXPECT_EQ(act(FUSE_READDIRPLUS, 200), Action::kUnpin);  // two walkers alternating: neither is followed
  EXPECT_EQ(act(FUSE_READDIRPLUS, 100), Action::kNone);
  EXPECT_EQ(act(FUSE_READDIRPLUS, 200), Action::kNone);
  EXPECT_EQ(w.pinned(), -1);
}

TEST_F(Fixture, RequestsNoOneWaitsForChangeNothing) {
  act(FUSE_READDIRPLUS, 100);
  ASSERT_EQ(act(FUSE_READDIR, 100), Action::kPin);
  EXPECT_EQ(act(FUSE_FORGET, 0), Action::kNone);
  EXPECT_EQ(act(FUSE_BATCH_FORGET, 100), Action::kNone);
  EXPECT_EQ(act(FUSE_RELEASEDIR, 100), Action::kNone);
  EXPECT_EQ(act(FUSE_INTERRUPT, 100), Action::kNone);
  EXPECT_EQ(act(FUSE_GETATTR, 0), Action::kNone);  // the kernel's own request (no thread)
  EXPECT_EQ(w.pinned(), 1);
}

TEST_F(Fixture, UnknownCpuAndFailedPinsStayUnpinned) {
  act(FUSE_READDIRPLUS, 300);
  EXPECT_EQ(act(FUSE_READDIRPLUS, 300), Action::kNone);  // no CPU known for 300
  EXPECT_EQ(w.pinned(), -1);
  act(FUSE_READDIRPLUS, 100);
  ASSERT_EQ(act(FUSE_READDIRPLUS, 100), Action::kPin);
  w.failed();
  EXPECT_EQ(w.pinned(), -1);
  EXPECT_EQ(act(FUSE_GETATTR, 100), Action::kNone);  // nothing to undo
}

}  // namespace
