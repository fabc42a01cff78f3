// SPDX-License-Identifier: Apache-2.0
// whiteout: the names, xattr values and device numbers that make up overlayfs's on-disk vocabulary.
#include "strata/whiteout/whiteout.h"
#include "strata/whiteout/override_stat.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <optional>
#include <string>

namespace wo = strata::whiteout;
using namespace std::string_literals;

namespace {

TEST(WhiteoutName, RecognizesPrefixedNames) {
  EXPECT_TRUE(wo::is_whiteout_name(".wh.a"));
  EXPECT_TRUE(wo::is_whiteout_name(".wh.foo.txt"));
  EXPECT_TRUE(wo::is_whiteout_name(".wh..hidden"));
  EXPECT_TRUE(
      wo::is_whiteout_name(".wh..wh.x"));  // a whiteout of a reserved-looking name is still one
}

TEST(WhiteoutName, RejectsOpaqueMarkerBarePrefixAndOthers) {
  EXPECT_FALSE(wo::is_whiteout_name(".wh..wh..opq"));
  EXPECT_FALSE(wo::is_whiteout_name(".wh."));
  EXPECT_FALSE(wo::is_whiteout_name(""));
  EXPECT_FALSE(wo::is_whiteout_name("a"));
  EXPECT_FALSE(wo::is_whiteout_name(".wh"));
  EXPECT_FALSE(wo::is_whiteout_name("wh.a"));
  EXPECT_FALSE(wo::is_whiteout_name("x.wh.a"));
  EXPECT_FALSE(wo::is_whiteout_name(".WH.a"));  // case matters
}

TEST(WhiteoutName, WhitedOutStripsThePrefix) {
  EXPECT_EQ(wo::whited_out(".wh.a"), "a");
  EXPECT_EQ(wo::whited_out(".wh.foo.txt"), "foo.txt");
  EXPECT_EQ(wo::whited_out(".wh..hidden"), ".hidden");
}

TEST(WhiteoutName, WhiteoutNameAddsThePrefix) {
  EXPECT_EQ(wo::whiteout_name("a"), ".wh.a");
  EXPECT_EQ(wo::whiteout_name(".x"), ".wh..x");
  EXPECT_EQ(wo::whiteout_name(""), ".wh.");
}

TEST(WhiteoutName, RoundTrips) {
  for (std::string n : {"a", "file.txt", ".dot", "with space", "\xc3\xa9t\xc3\xa9", "..."}) {
    std::string w = wo::whiteout_name(n);
    EXPECT_TRUE(wo::is_whiteout_name(w)) << n;
    EXPECT_EQ(wo::whited_out(w), n);
  }
}

TEST(WhiteoutName, ConstantsMatchOverlayfs) {
  EXPECT_EQ(wo::kPrefix, ".wh.");
  EXPECT_EQ(wo::kOpaqueMarker, ".wh..wh..opq");
  EXPECT_STREQ(wo::kTrustedOpaque, "trusted.overlay.opaque");
  EXPECT_STREQ(wo::kUserOpaque, "user.overlay.opaque");
  EXPECT_STREQ(wo::kFuseOverlayfsOpaque, "user.fuseoverlayfs.opaque");
  EXPECT_STREQ(wo::kTrustedWhiteout, "trusted.overlay.whiteout");
  EXPECT_STREQ(wo::kUserWhiteout, "user.overlay.whiteout");
}

TEST(ParseOpaque, Values) {
  EXPECT_EQ(wo::parse_opaque("y"), wo::OpaqueValue::kOpaque);
  EXPECT_EQ(wo::parse_opaque("x"), wo::OpaqueValue::kHasXattrWhiteouts);
  EXPECT_EQ(wo::parse_opaque(""), wo::OpaqueValue::kNone);
  EXPECT_EQ(wo::parse_opaque("n"), wo::OpaqueValue::kNone);
  EXPECT_EQ(wo::parse_opaque("Y"), wo::OpaqueValue::kNone);
  EXPECT_EQ(wo::parse_opaque("yes"), wo::OpaqueValue::kNone);
  EXPECT_EQ(wo::parse_opaque("y\n"), wo::OpaqueValue::kNone);
  EXPECT_EQ(wo::parse_opaque("y\0"s), wo::OpaqueValue::kNone);
}

TEST(ReservedName, EverythingStartingWithThePrefix) {
  EXPECT_TRUE(wo::is_reserved_name(".wh."));
  EXPECT_TRUE(wo::is_reserved_name(".wh.a"));
  EXPECT_TRUE(wo::is_reserved_name(".wh..wh..opq"));
  EXPECT_FALSE(wo::is_reserved_name(".wh"));
  EXPECT_FALSE(wo::is_reserved_name(""));
  EXPECT_FALSE(wo::is_reserved_name("a.wh.b"));
  EXPECT_FALSE(wo::is_reserved_name(".whx"));
}

TEST(InvalidComponent, Rejects) {
  EXPECT_TRUE(wo::is_invalid_component(""));
  EXPECT_TRUE(wo::is_invalid_component("."));
  EXPECT_TRUE(wo::is_invalid_component(".."));
  EXPECT_TRUE(wo::is_invalid_component("a/b"));
  EXPECT_TRUE(wo::is_invalid_component("/"));
  EXPECT_TRUE(wo::is_invalid_component("a/"));
  EXPECT_TRUE(wo::is_invalid_component("a\0b"s));
  EXPECT_TRUE(wo::is_invalid_component(std::string(256, 'x')));
}

TEST(InvalidComponent, Accepts) {
  EXPECT_FALSE(wo::is_invalid_component("a"));
  EXPECT_FALSE(wo::is_invalid_component("..."));
  EXPECT_FALSE(wo::is_invalid_component(".a"));
  EXPECT_FALSE(wo::is_invalid_component("a b"));
  EXPECT_FALSE(wo::is_invalid_component("a\\b"));
  EXPECT_FALSE(wo::is_invalid_component(std::string(255, 'x')));  // NAME_MAX itself is fine
}

TEST(PrivateXattr, PrivilegedMode) {
  EXPECT_TRUE(wo::is_private_xattr("trusted.overlay.opaque", false));
  EXPECT_TRUE(wo::is_private_xattr("trusted.overlay.whiteout", false));
  EXPECT_TRUE(wo::is_private_xattr("trusted.overlay.origin", false));
  EXPECT_TRUE(wo::is_private_xattr("trusted.strata.x", false));
  EXPECT_TRUE(wo::is_private_xattr("user.strata.x", false));
  // user.overlay.* belongs to a rootless overlay: a privileged mount shows it like any user xattr.
  EXPECT_FALSE(wo::is_private_xattr("user.overlay.opaque", false));
  EXPECT_FALSE(wo::is_private_xattr("user.foo", false));
  EXPECT_FALSE(wo::is_private_xattr("trusted.foo", false));
  EXPECT_FALSE(wo::is_private_xattr("security.capability", false));
  EXPECT_FALSE(wo::is_private_xattr("trusted.overlayx", false));
  EXPECT_FALSE(wo::is_private_xattr("trusted.strat", false));
}

TEST(PrivateXattr, UserxattrMode) {
  EXPECT_TRUE(wo::is_private_xattr("user.overlay.opaque", true));
  EXPECT_TRUE(wo::is_private_xattr("user.overlay.whiteout", true));
  EXPECT_TRUE(wo::is_private_xattr("trusted.strata.x", true));
  EXPECT_TRUE(wo::is_private_xattr("user.strata.x", true));
  EXPECT_FALSE(wo::is_private_xattr("trusted.overlay.opaque", true));
  EXPECT_FALSE(wo::is_private_xattr("user.foo", true));
  EXPECT_FALSE(wo::is_private_xattr("user.overlay", true));
}

TEST(EscapeXattr, PrivilegedMode) {
  EXPECT_EQ(wo::escape_xattr("user.foo", false), "user.foo");
  EXPECT_EQ(wo::escape_xattr("security.capability", false), "security.capability");
  EXPECT_EQ(wo::escape_xattr("trusted.overlay.opaque", false), "trusted.overlay.overlay.opaque");
  EXPECT_EQ(wo::escape_xattr("trusted.overlay.overlay.x", false),
            "trusted.overlay.overlay.overlay.x");
  EXPECT_EQ(wo::escape_xattr("user.overlay.opaque", false),
            "user.overlay.opaque");  // not ours in this mode
  EXPECT_EQ(wo::escape_xattr("trusted.strata.x", false), std::nullopt);
  EXPECT_EQ(wo::escape_xattr("user.strata.x", false), std::nullopt);
}

TEST(EscapeXattr, UserxattrMode) {
  EXPECT_EQ(wo::escape_xattr("user.overlay.opaque", true), "user.overlay.overlay.opaque");
  EXPECT_EQ(wo::escape_xattr("trusted.overlay.opaque", true), "trusted.overlay.opaque");
  EXPECT_EQ(wo::escape_xattr("user.foo", true), "user.foo");
  EXPECT_EQ(wo::escape_xattr("user.strata.x", true), std::nullopt);
}

TEST(UnescapeXattr, PrivilegedMode) {
  EXPECT_EQ(wo::unescape_xattr("user.foo", false), "user.foo");
  EXPECT_EQ(wo::unescape_xattr("trusted.overlay.overlay.opaque", false), "trusted.overlay.opaque");
  EXPECT_EQ(wo::unescape_xattr("trusted.overlay.opaque", false),
            std::nullopt);  // the overlay's own
  EXPECT_EQ(wo::unescape_xattr("trusted.overlay.origin", false), std::nullopt);
  EXPECT_EQ(wo::unescape_xattr("trusted.overlay.overlay", false),
            std::nullopt);  // no dot: not escaped
  EXPECT_EQ(wo::unescape_xattr("trusted.strata.x", false), std::nullopt);
  EXPECT_EQ(wo::unescape_xattr("user.overlay.opaque", false), "user.overlay.opaque");
}

TEST(UnescapeXattr, UserxattrMode) {
  EXPECT_EQ(wo::unescape_xattr("user.overlay.overlay.opaque", true), "user.overlay.opaque");
  EXPECT_EQ(wo::unescape_xattr("user.overlay.opaque", true), std::nullopt);
  EXPECT_EQ(wo::unescape_xattr("trusted.overlay.opaque", true), "trusted.overlay.opaque");
}

TEST(EscapeXattr, RoundTrips) {
  for (bool userxattr : {false, true}) {
    for (std::string n :
         {"user.a", "trusted.b", "trusted.overlay.opaque", "trusted.overlay.overlay.x",
          "user.overlay.whiteout", "user.overlay.overlay.overlay.y", "security.selinux"}) {
      auto real = wo::escape_xattr(n, userxattr);
      ASSERT_TRUE(real.has_value()) << n;
      EXPECT_EQ(wo::unescape_xattr(*real, userxattr), n) << n << " userxattr=" << userxattr;
    }
  }
}

struct stat with_mode(mode_t mode, dev_t rdev) {
  struct stat st {};
  st.st_mode = mode;
  st.st_rdev = rdev;
  return st;
}

TEST(WhiteoutDevice, OnlyCharacterDeviceZeroZero) {
  EXPECT_TRUE(wo::is_whiteout_device(with_mode(S_IFCHR | 0000, makedev(0, 0))));
  EXPECT_TRUE(
      wo::is_whiteout_device(with_mode(S_IFCHR | 0644, makedev(0, 0))));  // mode bits do not matter
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFCHR | 0666, makedev(1, 3))));  // /dev/null
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFCHR, makedev(0, 1))));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFCHR, makedev(1, 0))));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFBLK, makedev(0, 0))));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFREG | 0644, 0)));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFDIR | 0755, 0)));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFIFO | 0644, 0)));
  EXPECT_FALSE(wo::is_whiteout_device(with_mode(S_IFLNK | 0777, 0)));
}

TEST(WhiteoutDevice, RealStatOfDevNull) {
  struct stat st;
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_FALSE(wo::is_whiteout_device(st));
}

TEST(OverrideStat, NamesOfOwnerRecords) {
  EXPECT_TRUE(wo::is_override_stat_xattr("user.fuseoverlayfs.override_stat"));
  EXPECT_TRUE(wo::is_override_stat_xattr("security.fuseoverlayfs.override_stat"));
  EXPECT_TRUE(wo::is_override_stat_xattr("trusted.fuseoverlayfs.override_stat"));
  EXPECT_TRUE(wo::is_override_stat_xattr("user.containers.override_stat"));
  EXPECT_FALSE(wo::is_override_stat_xattr("user.fuseoverlayfs.opaque"));
  EXPECT_FALSE(wo::is_override_stat_xattr("user.x.fuseoverlayfs.override_stat"));
  EXPECT_FALSE(wo::is_override_stat_xattr(".fuseoverlayfs.override_stat"));
  EXPECT_FALSE(wo::is_override_stat_xattr("user.override_stat"));
}

TEST(OverrideStat, TrailingFieldsAndShortValues) {
  auto o = wo::parse_stat_override("5:6:4755:file");
  ASSERT_TRUE(o);
  EXPECT_EQ(*o->uid, 5u);
  EXPECT_EQ(o->mode, 04755u);
  EXPECT_FALSE(wo::parse_stat_override("5:6"));
  EXPECT_FALSE(wo::parse_stat_override("5:6:"));
  EXPECT_FALSE(wo::parse_stat_override("5:6:9"));  // not octal
}

}  // namespace
