// SPDX-License-Identifier: Apache-2.0
// IdMap and the override_stat value: fuse-overlayfs's ownership options as a pure object.
#include "strata/merge/id_map.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using strata::merge::apply_stat_override;
using strata::merge::format_stat_override;
using strata::merge::IdMap;
using strata::merge::IdRange;
using strata::merge::parse_stat_override;

IdMap with_uids(const std::string& spec) {
  IdMap m;
  auto r = IdMap::parse_ranges("uidmapping", spec);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  if (r) m.uids = *r;
  return m;
}

TEST(IdMapParse, Triples) {
  auto r = IdMap::parse_ranges("uidmapping", "0:1000:1:1:100000:65536");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 65536}}));
  auto max = IdMap::parse_ranges("gidmapping", "4294967295:0:1");
  ASSERT_TRUE(max.has_value());
  EXPECT_EQ((*max)[0].disk, 4294967295u);
}

TEST(IdMapParse, ErrorsNameTheOptionAndTheField) {
  struct Case {
    const char* spec;
    const char* says;
  } cases[] = {
      {"", "empty"},
      {"0:1000", "2 fields"},
      {"0:1000:1:5", "4 fields"},
      {"0:x:1", "'x'"},
      {"0:-1:1", "'-1'"},
      {"0:1000:", "''"},
      {"0:1000:0", "0 ids"},
      {"4294967295:0:2", "past id"},
      {"0:0:4294967296", "'4294967296'"},
      {"0:100:10:5:200:1", "overlap"},    // disk side
      {"0:100:10:20:105:1", "overlap"},   // view side
  };
  for (const auto& c : cases) {
    auto r = IdMap::parse_ranges("gidmapping", c.spec);
    ASSERT_FALSE(r.has_value()) << c.spec;
    EXPECT_EQ(r.error().err, EINVAL);
    std::string msg = r.error().message();
    EXPECT_NE(msg.find("gidmapping"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << c.spec << " -> " << msg;
  }
}

TEST(IdMap, IdentityWithoutOptions) {
  IdMap m;
  EXPECT_TRUE(m.identity());
  EXPECT_EQ(m.uid_to_view(0), 0u);
  EXPECT_EQ(m.uid_to_view(123456), 123456u);
  EXPECT_EQ(m.gid_to_disk(77), 77u);
}

TEST(IdMap, ForwardAndBackRoundTrip) {
  // containers/storage's rootless layout: container root is the user, the rest the subordinate range.
  IdMap m = with_uids("0:1000:1:1:100000:65536");
  EXPECT_FALSE(m.identity());
  EXPECT_EQ(m.uid_to_view(0), 1000u);
  EXPECT_EQ(m.uid_to_view(1), 100000u);
  EXPECT_EQ(m.uid_to_view(65536), 165535u);
  for (uid_t disk : {0u, 1u, 2u, 500u, 65535u, 65536u}) EXPECT_EQ(m.uid_to_disk(m.uid_to_view(disk)), disk);
  for (uid_t view : {1000u, 100000u, 165535u}) EXPECT_EQ(m.uid_to_view(m.uid_to_disk(view)), view);
  // gids were not given: unchanged.
  EXPECT_EQ(m.gid_to_view(5), 5u);
}

TEST(IdMap, UnmappedIdsAreTheOverflowId) {
  IdMap m = with_uids("0:1000:10");
  EXPECT_EQ(m.uid_to_view(10), 65534u);  // one past the range
  EXPECT_EQ(m.uid_to_view(4294967295u), 65534u);
  EXPECT_EQ(m.uid_to_disk(999), 65534u);  // chown to an id outside the range: stored as overflow
  EXPECT_EQ(m.uid_to_disk(1010), 65534u);
  m.overflow_uid = 99;  // /proc/sys/kernel/overflowuid changed
  EXPECT_EQ(m.uid_to_view(10), 99u);
}

TEST(IdMap, SquashAppliesToReportsOnly) {
  IdMap m = with_uids("0:1000:10");
  m.squash_uid = 0;
  m.squash_gid = 7;
  EXPECT_TRUE(m.squashing());
  EXPECT_EQ(m.uid_to_view(3), 0u);
  EXPECT_EQ(m.uid_to_view(12345), 0u);  // even unmapped ids
  EXPECT_EQ(m.gid_to_view(3), 7u);
  EXPECT_EQ(m.uid_to_disk(1003), 3u);  // writes still go through the mapping
  IdMap s;
  s.squash_gid = 0;  // squash_to_gid alone leaves uids alone
  EXPECT_FALSE(s.identity());
  EXPECT_EQ(s.uid_to_view(42), 42u);
  EXPECT_EQ(s.gid_to_view(42), 0u);
}

TEST(StatOverride, FormatAndParse) {
  EXPECT_EQ(format_stat_override(0, 0, 0755), "0:0:755");
  EXPECT_EQ(format_stat_override(1000, 100, S_IFREG | 04755), "1000:100:4755");  // type bits never written
  auto o = parse_stat_override("1000:100:4755");
  ASSERT_TRUE(o);
  EXPECT_EQ(*o->uid, 1000u);
  EXPECT_EQ(*o->gid, 100u);
  EXPECT_EQ(o->mode, 04755u);
  auto again = parse_stat_override(format_stat_override(*o->uid, *o->gid, o->mode));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->mode, o->mode);
}

TEST(StatOverride, WhatFuseOverlayfsWrites) {
  // 1.10 writes st_mode with the type bits on copy-up and chmod, and -1 for an id chown left alone.
  auto o = parse_stat_override("0:0:100600");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->mode, 0600u);
  auto keep = parse_stat_override("9:-1:100644");
  ASSERT_TRUE(keep);
  EXPECT_EQ(*keep->uid, 9u);
  EXPECT_FALSE(keep->gid);
  // Newer versions append the file type; a NUL terminator may be part of the value.
  EXPECT_TRUE(parse_stat_override("1:2:644:file"));
  EXPECT_TRUE(parse_stat_override(std::string("1:2:644\0", 8)));
  for (const char* bad : {"", "1:2", "a:2:644", "1:2:9", "1:2:", "99999999999:0:644"})
    EXPECT_FALSE(parse_stat_override(bad)) << bad;
}

TEST(StatOverride, ApplyKeepsTheType) {
  uid_t uid = 1003;
  gid_t gid = 1003;
  mode_t mode = S_IFDIR | 0755;
  auto o = parse_stat_override("0:-1:1777");
  ASSERT_TRUE(o);
  apply_stat_override(*o, &uid, &gid, &mode);
  EXPECT_EQ(uid, 0u);
  EXPECT_EQ(gid, 1003u);
  EXPECT_EQ(mode, static_cast<mode_t>(S_IFDIR | 01777));
}

}  // namespace
