// SPDX-License-Identifier: Apache-2.0
// stratafs command line: what fuse-overlayfs accepts (and what podman, buildah and mount.fuse3
// pass) must parse.
#include "options.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

using strata::tools::Config;
using strata::tools::parse_args;
using strata::tools::split_lowerdir;
using strata::tools::split_options;
using strata::tools::unescape;
using Strings = std::vector<std::string>;

bool has(const Strings& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Parses and fails the test (with the error) when parsing fails.
Config parse_ok(const Strings& args, bool privileged = false) {
  auto r = parse_args(args, privileged);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return r ? *r : Config{};
}

strata::Error parse_err(const Strings& args, bool privileged = false) {
  auto r = parse_args(args, privileged);
  EXPECT_FALSE(r.has_value()) << "parsed although it should not";
  return r ? strata::Error{} : r.error();
}

TEST(SplitOptions, PlainAndEscapedCommas) {
  EXPECT_EQ(split_options("a,b=c,d"), (Strings{"a", "b=c", "d"}));
  EXPECT_EQ(split_options("a\\,b,c"),
            (Strings{"a\\,b", "c"}));  // escapes are kept for the next stage
  EXPECT_EQ(split_options("lowerdir=x\\:y"), (Strings{"lowerdir=x\\:y"}));
}

TEST(SplitOptions, EmptyPieces) {
  EXPECT_EQ(split_options(""), (Strings{""}));
  EXPECT_EQ(split_options(",,volatile"), (Strings{"", "", "volatile"}));
  EXPECT_EQ(split_options("a,"), (Strings{"a", ""}));
}

TEST(SplitLowerdir, ColonsAndEscapes) {
  EXPECT_EQ(split_lowerdir("/a:/b:/c"), (Strings{"/a", "/b", "/c"}));
  EXPECT_EQ(split_lowerdir("/a\\:b:/c"), (Strings{"/a:b", "/c"}));
  EXPECT_EQ(split_lowerdir("/a\\,b"), (Strings{"/a,b"}));
  EXPECT_EQ(split_lowerdir("/a\\\\:/b"),
            (Strings{"/a\\", "/b"}));  // an escaped backslash, then a separator
  EXPECT_EQ(split_lowerdir("/only"), (Strings{"/only"}));
}

TEST(Unescape, DropsOneBackslash) {
  EXPECT_EQ(unescape("/a\\,b"), "/a,b");
  EXPECT_EQ(unescape("/a\\:b"), "/a:b");
  EXPECT_EQ(unescape("/a\\\\b"), "/a\\b");
  EXPECT_EQ(unescape("plain"), "plain");
  EXPECT_EQ(unescape("trailing\\"), "trailing\\");  // a lone trailing backslash escapes nothing
}

TEST(ParseArgs, FuseOverlayfsStyle) {
  Config c = parse_ok({"-o", "lowerdir=/l1:/l2,upperdir=/u,workdir=/w", "/mnt"});
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l1", "/l2"}));
  EXPECT_EQ(c.overlay.upperdir, "/u");
  EXPECT_EQ(c.overlay.workdir, "/w");
  EXPECT_EQ(c.session.mountpoint, "/mnt");
  EXPECT_TRUE(c.overlay.fsync);
  EXPECT_FALSE(c.session.foreground);
  EXPECT_FALSE(c.session.debug);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_FALSE(c.help);
  EXPECT_FALSE(c.version);
}

TEST(ParseArgs, AttachedDashO) {
  Config c = parse_ok({"-olowerdir=/l", "/mnt"});
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l"}));
}

TEST(ParseArgs, SeveralDashOAccumulate) {
  Config c = parse_ok({"-o", "lowerdir=/l", "-o", "upperdir=/u", "-o", "workdir=/w", "/mnt"});
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l"}));
  EXPECT_EQ(c.overlay.upperdir, "/u");
  EXPECT_EQ(c.overlay.workdir, "/w");
}

TEST(ParseArgs, EscapedColonAndCommaInPaths) {
  Config c = parse_ok({"-o", "lowerdir=/a\\:b:/c\\,d,upperdir=/u\\,x,workdir=/w\\:y", "/mnt"});
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/a:b", "/c,d"}));
  EXPECT_EQ(c.overlay.upperdir, "/u,x");
  EXPECT_EQ(c.overlay.workdir, "/w:y");
}

TEST(ParseArgs, EmptyOptionsAndVolatile) {
  // What podman passes.
  Config c = parse_ok({"-o", ",,volatile,lowerdir=/l,upperdir=/u,workdir=/w,,", "/mnt"});
  EXPECT_FALSE(c.overlay.fsync);
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l"}));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(ParseArgs, FsyncOption) {
  EXPECT_FALSE(parse_ok({"-o", "lowerdir=/l,fsync=0", "/m"}).overlay.fsync);
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l,fsync=1", "/m"}).overlay.fsync);
  strata::Error e = parse_err({"-o", "lowerdir=/l,fsync=maybe", "/m"});
  EXPECT_EQ(e.err, EINVAL);
}

TEST(ParseArgs, ContextIsIgnoredSilently) {
  Config c =
      parse_ok({"-o", "lowerdir=/l,context=\"system_u:object_r:container_file_t:s0:c1,c2\"", "/m"});
  // `c2"` is a separate piece after splitting on the comma; only the context= part is known to be
  // harmless.
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l"}));
  Config d =
      parse_ok({"-o", "lowerdir=/l,context=\"system_u:object_r:container_file_t:s0\"", "/m"});
  EXPECT_TRUE(d.warnings.empty());
  EXPECT_EQ(d.session.mount_options, (Strings{"default_permissions"}));  // the unprivileged default only
}

TEST(ParseArgs, UnknownOptionWarnsButSucceeds) {
  Config c = parse_ok({"-o", "lowerdir=/l,frobnicate,colour=blue", "/m"});
  ASSERT_EQ(c.warnings.size(), 2u);
  EXPECT_NE(c.warnings[0].find("frobnicate"), std::string::npos);
  EXPECT_NE(c.warnings[1].find("colour=blue"), std::string::npos);
  EXPECT_FALSE(has(c.session.mount_options, "frobnicate"));
}

TEST(ParseArgs, IdMappingOptions) {
  // What containers/storage passes for a rootless container: uidmapping=CONTAINER:HOST:SIZE[:...].
  Config c = parse_ok({"-o", "lowerdir=/l,uidmapping=0:1000:1:1:100000:65536,gidmapping=0:2000:5", "/m"});
  using strata::merge::IdRange;
  EXPECT_EQ(c.overlay.ids.uids, (std::vector<IdRange>{{0, 1000, 1}, {1, 100000, 65536}}));
  EXPECT_EQ(c.overlay.ids.gids, (std::vector<IdRange>{{0, 2000, 5}}));
  EXPECT_FALSE(c.overlay.ids.squash_uid);
  EXPECT_EQ(c.overlay.xattr_permissions, 0);
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l", "/m"}).overlay.ids.identity());
}

TEST(ParseArgs, SquashOptions) {
  Config r = parse_ok({"-o", "lowerdir=/l,squash_to_root", "/m"});
  EXPECT_EQ(r.overlay.ids.squash_uid, 0u);
  EXPECT_EQ(r.overlay.ids.squash_gid, 0u);
  // squash_to_uid/gid win over squash_to_root, each for its own id, in any order.
  Config u = parse_ok({"-o", "lowerdir=/l,squash_to_uid=5,squash_to_root", "/m"});
  EXPECT_EQ(u.overlay.ids.squash_uid, 5u);
  EXPECT_EQ(u.overlay.ids.squash_gid, 0u);
  Config g = parse_ok({"-o", "lowerdir=/l,squash_to_gid=7", "/m"});
  EXPECT_FALSE(g.overlay.ids.squash_uid);
  EXPECT_EQ(g.overlay.ids.squash_gid, 7u);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,squash_to_uid=", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,squash_to_uid=-1", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,squash_to_gid=4294967296", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,squash_to_root=1", "/m"}).err, EINVAL);
}

TEST(ParseArgs, XattrPermissions) {
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,xattr_permissions=1", "/m"}).overlay.xattr_permissions, 1);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,xattr_permissions=2", "/m"}).overlay.xattr_permissions, 2);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,xattr_permissions=0", "/m"}).overlay.xattr_permissions, 0);
  for (std::string v : {"3", "", "user", "-1"}) {
    strata::Error e = parse_err({"-o", "lowerdir=/l,xattr_permissions=" + v, "/m"});
    EXPECT_EQ(e.err, EINVAL);
    EXPECT_NE(e.message().find("xattr_permissions"), std::string::npos) << e.message();
  }
}

TEST(ParseArgs, BadMappingsNameTheOption) {
  for (std::string o : {"uidmapping=0:1000", "uidmapping=a:1:1", "gidmapping=0:1:0", "gidmapping=",
                        "uidmapping=0:1:10:5:100:1", "uidmapping=4294967295:0:2"}) {
    strata::Error e = parse_err({"-o", "lowerdir=/l," + o, "/m"});
    EXPECT_EQ(e.err, EINVAL) << o;
    EXPECT_NE(e.message().find(o.substr(0, o.find('='))), std::string::npos) << e.message();
  }
}

TEST(ParseArgs, MissingLowerdir) {
  strata::Error e = parse_err({"-o", "upperdir=/u,workdir=/w", "/m"});
  EXPECT_EQ(e.err, EINVAL);
  EXPECT_NE(e.message().find("lowerdir"), std::string::npos) << e.message();
}

TEST(ParseArgs, MissingMountpoint) {
  strata::Error e = parse_err({"-o", "lowerdir=/l"});
  EXPECT_NE(e.message().find("MOUNTPOINT"), std::string::npos) << e.message();
}

TEST(ParseArgs, UpperdirWithoutWorkdir) {
  strata::Error e = parse_err({"-o", "lowerdir=/l,upperdir=/u", "/m"});
  EXPECT_NE(e.message().find("workdir"), std::string::npos) << e.message();
}

TEST(ParseArgs, WorkdirWithoutUpperdirWarns) {
  Config c = parse_ok({"-o", "lowerdir=/l,workdir=/w", "/m"});
  EXPECT_TRUE(c.overlay.upperdir.empty());
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("workdir"), std::string::npos);
}

TEST(ParseArgs, EmptyLowerdirElementIsAnError) {
  EXPECT_EQ(parse_err({"-o", "lowerdir=/a::/b", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=", "/m"}).err, EINVAL);
}

TEST(ParseArgs, SourceAndMountpointLikeMountFuse3) {
  Config c = parse_ok({"fuse-overlayfs", "/mnt", "-o", "rw,lowerdir=/l"});
  EXPECT_EQ(c.session.mountpoint, "/mnt");
  EXPECT_EQ(c.overlay.lowerdirs, (Strings{"/l"}));
  EXPECT_EQ(parse_err({"a", "b", "c", "-o", "lowerdir=/l"}).err, EINVAL);
}

TEST(ParseArgs, ForegroundAndDebug) {
  Config f = parse_ok({"-f", "-o", "lowerdir=/l", "/m"});
  EXPECT_TRUE(f.session.foreground);
  EXPECT_FALSE(f.session.debug);
  Config d = parse_ok({"-d", "-o", "lowerdir=/l", "/m"});
  EXPECT_TRUE(d.session.debug);
  EXPECT_TRUE(d.session.foreground);
  Config o = parse_ok({"-o", "lowerdir=/l,debug", "/m"});
  EXPECT_TRUE(o.session.debug);
}

TEST(ParseArgs, HelpAndVersionNeedNothingElse) {
  for (std::string a : {"-h", "--help"}) {
    Config c = parse_ok({a});
    EXPECT_TRUE(c.help) << a;
  }
  for (std::string a : {"-V", "--version"}) {
    Config c = parse_ok({a});
    EXPECT_TRUE(c.version) << a;
  }
  EXPECT_NE(std::string(strata::tools::kUsage).find("lowerdir="), std::string::npos);
}

TEST(ParseArgs, UnknownDashArgumentIsAnError) {
  EXPECT_EQ(parse_err({"--frob", "-o", "lowerdir=/l", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o"}).err, EINVAL);  // -o without its value
}

TEST(ParseArgs, PrivilegedDefaults) {
  Config c = parse_ok({"-o", "lowerdir=/l", "/m"}, /*privileged=*/true);
  for (std::string o : {"allow_other", "default_permissions", "suid", "dev"})
    EXPECT_TRUE(has(c.session.mount_options, o)) << o;
  // Unprivileged, as fuse-overlayfs: default_permissions only (allow_other needs user_allow_other).
  Config u = parse_ok({"-o", "lowerdir=/l", "/m"}, /*privileged=*/false);
  EXPECT_EQ(u.session.mount_options, (Strings{"default_permissions"}));
}

TEST(ParseArgs, FusePassthroughOptions) {
  Config c =
      parse_ok({"-o", "lowerdir=/l,ro,noatime,nodev,max_read=131072,fsname=myfs,subtype=x", "/m"});
  EXPECT_TRUE(has(c.session.mount_options, "ro"));
  EXPECT_TRUE(has(c.session.mount_options, "noatime"));
  EXPECT_TRUE(has(c.session.mount_options, "nodev"));
  EXPECT_TRUE(has(c.session.mount_options, "max_read=131072"));
  EXPECT_EQ(c.session.fsname, "myfs");
  EXPECT_FALSE(has(c.session.mount_options, "subtype=x"));
  EXPECT_FALSE(has(c.session.mount_options, "lowerdir=/l"));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(ParseArgs, Timeout) {
  EXPECT_DOUBLE_EQ(parse_ok({"-o", "lowerdir=/l", "/m"}).session.timeout, 86400.0);
  EXPECT_DOUBLE_EQ(parse_ok({"-o", "lowerdir=/l,timeout=2.5", "/m"}).session.timeout, 2.5);
  EXPECT_DOUBLE_EQ(parse_ok({"-o", "lowerdir=/l,timeout=0", "/m"}).session.timeout, 0.0);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,timeout=abc", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,timeout=-1", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,timeout=", "/m"}).err, EINVAL);
}

TEST(ParseArgs, Threads) {
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l", "/m"}).session.max_threads, 16u);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,threads=4", "/m"}).session.max_threads, 4u);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,max_threads=8", "/m"}).session.max_threads, 8u);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,threaded", "/m"}).session.max_threads, 16u);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,threads=0", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,threads=5000", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,threads=x", "/m"}).err, EINVAL);
  // Waiting workers (fuse/loop.h): 0 means one per CPU, decided at mount.
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l", "/m"}).session.readers, 0u);
  auto r = parse_ok({"-o", "lowerdir=/l,readers=3,idle_threads=2", "/m"}).session;
  EXPECT_EQ(r.readers, 3u);
  EXPECT_EQ(r.idle_threads, 2u);
  EXPECT_EQ(r.max_threads, 16u);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,readers=0", "/m"}).err, EINVAL);
}

TEST(ParseArgs, Prefetch) {
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l", "/m"}).session.prefetch);
  EXPECT_FALSE(parse_ok({"-o", "lowerdir=/l,prefetch=0", "/m"}).session.prefetch);
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l,prefetch=1", "/m"}).session.prefetch);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,prefetch", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,prefetch=2", "/m"}).err, EINVAL);
}

TEST(ParseArgs, ControlSocket) {
  // Default: in the workdir, beside work/ and strata-index/ (which the mount empties or owns).
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,upperdir=/u,workdir=/w", "/m"}).session.control_socket,
            "/w/strata-control.sock");
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,upperdir=/u,workdir=/w\\,x", "/m"}).session.control_socket,
            "/w,x/strata-control.sock");
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,upperdir=/u,workdir=/w,control=/run/c.sock", "/m"}).session.control_socket,
            "/run/c.sock");
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,upperdir=/u,workdir=/w,control=none", "/m"}).session.control_socket, "");
  // Read-only: none unless asked for.
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l", "/m"}).session.control_socket, "");
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,control=/run/ro.sock", "/m"}).session.control_socket, "/run/ro.sock");
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,control=", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,control", "/m"}).err, EINVAL);
}

TEST(ParseArgs, Writeback) {
  EXPECT_FALSE(parse_ok({"-o", "lowerdir=/l", "/m"}).session.writeback);
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l,writeback", "/m"}).session.writeback);
  EXPECT_FALSE(parse_ok({"-o", "lowerdir=/l,writeback=0", "/m"}).session.writeback);
}

TEST(ParseArgs, IoUring) {
  auto plain = parse_ok({"-o", "lowerdir=/l", "/m"}).session;
  EXPECT_FALSE(plain.io_uring);
  EXPECT_EQ(plain.io_uring_threads, 2u);
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l,io_uring", "/m"}).session.io_uring);
  EXPECT_TRUE(parse_ok({"-o", "lowerdir=/l,io_uring=1", "/m"}).session.io_uring);
  EXPECT_FALSE(parse_ok({"-o", "lowerdir=/l,io_uring=0", "/m"}).session.io_uring);
  EXPECT_EQ(parse_ok({"-o", "lowerdir=/l,io_uring,io_uring_threads=4", "/m"}).session.io_uring_threads, 4u);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,io_uring=maybe", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,io_uring_threads=0", "/m"}).err, EINVAL);
  EXPECT_EQ(parse_err({"-o", "lowerdir=/l,io_uring_threads", "/m"}).err, EINVAL);
}

}  // namespace
