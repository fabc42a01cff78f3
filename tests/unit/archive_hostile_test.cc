// SPDX-License-Identifier: Apache-2.0
// archive: devices without privileges, hostile archives that must never escape, umoci as an oracle, and
// unpacking as an unprivileged user and as root of a user namespace.
#include "archive_fixture.h"

namespace {

// --- devices without privileges ---

TEST_F(ArchiveTest, DevicesUnprivileged) {
  std::string tar =
      TarBuilder().file("a", "1").device("null", AE_IFCHR, 1, 3).add("p", AE_IFIFO, 0600).done();
  UnpackOptions o;
  o.privilege = Privilege::kUnprivileged;
  expect_fail(tar, EPERM, {"'null'", "devices=skip"}, o);
  TempDir t;
  dest = t.sub("dest");
  o.devices = DevicePolicy::kSkip;
  auto r = unpack(tar, o);
  ASSERT_UNPACKS(r);
  EXPECT_EQ(ls(dest), (std::vector<std::string>{"a", "p"}));
  EXPECT_EQ(r->skipped, 1u);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("'null'"), std::string::npos);
}

// --- hostile archives: rejected or contained, never escaping ---

struct Hostile {
  const char* what;
  std::function<std::string(const std::string& outside, const std::string& victim)> tar;
  int err;  // 0: must succeed (contained)
  std::string in_message;
};

TEST_F(ArchiveTest, HostileArchivesNeverEscape) {
  std::vector<Hostile> cases = {
      {"dot-dot", [](auto&, auto&) { return raw_entry(Raw("../x").data("evil")) + kEnd; }, EINVAL,
       "'../x'"},
      {"dot-dot inside",
       [](auto&, auto&) { return raw_entry(Raw("a/../../outside/x").data("evil")) + kEnd; }, EINVAL,
       "'a/../../outside/x'"},
      {"absolute", [](auto& o, auto&) { return raw_entry(Raw(o + "/x").data("evil")) + kEnd; },
       EINVAL, "absolute"},
      {"absolute below the root", [](auto&, auto&) { return raw_entry(Raw("/./..").type('5')) + kEnd; },
       EINVAL, "absolute"},
      {"pax path",
       [](auto&, auto&) {
         return pax({{"path", "../../x"}}) + raw_entry(Raw("ok")) + kEnd;
       },
       EINVAL, "'../../x'"},
      {"gnu long name",
       [](auto&, auto&) {
         std::string n = "../" + std::string(120, 'x');
         return raw_entry(Raw("././@LongLink").type('L').data(n + '\0')) +
                raw_entry(Raw("short").data("evil")) + kEnd;
       },
       EINVAL, "'../xxx"},
      {"symlink absolute then write through",
       [](auto& o, auto&) {
         return raw_entry(Raw("a").type('2').link(o)) + raw_entry(Raw("a/passwd").data("e")) + kEnd;
       },
       ENOTDIR, "'a/passwd'"},
      {"symlink relative then write through",
       [](auto&, auto&) {
         return raw_entry(Raw("a").type('2').link("../outside")) + raw_entry(Raw("a/x").data("e")) +
                kEnd;
       },
       ENOTDIR, "symlink"},
      {"symlink then directory through it",
       [](auto& o, auto&) {
         return raw_entry(Raw("a").type('2').link(o)) + raw_entry(Raw("a/sub/").type('5')) + kEnd;
       },
       ENOTDIR, "'a/sub/'"},
      {"symlink deep then write through",
       [](auto&, auto&) {
         return raw_entry(Raw("d/").type('5')) +
                raw_entry(Raw("d/up").type('2').link("../../outside")) +
                raw_entry(Raw("d/up/x").data("e")) + kEnd;
       },
       ENOTDIR, "'d/up/x'"},
      {"directory replaced by symlink, then written into",
       [](auto& o, auto&) {
         return raw_entry(Raw("d/").type('5')) + raw_entry(Raw("d/f").data("1")) +
                raw_entry(Raw("d").type('2').link(o)) + raw_entry(Raw("d/g").data("e")) + kEnd;
       },
       ENOTDIR, "'d/g'"},
      {"symlink then hard link through it",
       [](auto&, auto& v) {
         return raw_entry(Raw("v").type('2').link(v)) +
                raw_entry(Raw("h").type('1').link("v/secret")) + kEnd;
       },
       ENOENT, "'v/secret'"},
      {"hard link dot-dot",
       [](auto&, auto&) { return raw_entry(Raw("h").type('1').link("../victim/secret")) + kEnd; },
       EINVAL, "'../victim/secret'"},
      {"hard link absolute",
       [](auto&, auto& v) { return raw_entry(Raw("h").type('1').link(v + "/secret")) + kEnd; },
       EINVAL, "absolute"},
      {"pax linkpath",
       [](auto&, auto&) {
         return pax({{"linkpath", "../../../../../../etc/passwd"}}) +
                raw_entry(Raw("h").type('1').link("x")) + kEnd;
       },
       EINVAL, "'h'"},
      {"whiteout dot-dot", [](auto&, auto&) { return raw_entry(Raw("../.wh.outside")) + kEnd; },
       EINVAL, "'../.wh.outside'"},
      {"opaque through symlink (skipped, contained)",
       [](auto& o, auto&) {
         return raw_entry(Raw("a").type('2').link(o)) + raw_entry(Raw("a/.wh..wh..opq")) +
                raw_entry(Raw("a/.wh.x")) + kEnd;
       },
       0, ""},
      {"symlink replaced by directory (contained)",
       [](auto& o, auto&) {
         return raw_entry(Raw("a").type('2').link(o)) + raw_entry(Raw("a/").type('5')) +
                raw_entry(Raw("a/x").data("inside")) + kEnd;
       },
       0, ""},
      {"hard link to a symlink pointing out (contained)",
       [](auto&, auto& v) {
         return raw_entry(Raw("s").type('2').link(v + "/secret")) +
                raw_entry(Raw("h").type('1').link("s")) + kEnd;
       },
       0, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TempDir t;
    dest = t.sub("dest");
    std::string tar = c.tar(outside, victim_);
    if (c.err == 0) {
      auto r = unpack(tar);
      EXPECT_TRUE(r) << errmsg(r);
    } else {
      expect_fail(tar, c.err, {c.in_message});
    }
    EXPECT_TRUE(ls(outside).empty()) << c.what << " wrote outside";
    EXPECT_EQ(lstat_or_throw(victim_ + "/secret").st_nlink, 1u) << c.what;
  }
  // The contained cases, checked once more by hand.
  TempDir t;
  dest = t.sub("dest");
  ASSERT_UNPACKS(unpack(raw_entry(Raw("a").type('2').link(outside)) +
                        raw_entry(Raw("a/").type('5').mode("0000755")) +
                        raw_entry(Raw("a/x").data("inside"))));
  EXPECT_EQ(read_file(path("a/x")), "inside");
}

// --- umoci as an oracle ---

// mtimes of every entry below `root` (path relative, "." for the root), one per line, sorted.
std::string mtimes(const std::string& root) {
  std::vector<std::string> lines;
  std::function<void(const std::string&, const std::string&)> walk = [&](const std::string& abs,
                                                                         const std::string& rel) {
    struct stat st = lstat_or_throw(abs);
    lines.push_back(rel + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec));
    if (S_ISDIR(st.st_mode))
      for (const auto& n : ls(abs)) walk(abs + "/" + n, rel == "." ? n : rel + "/" + n);
  };
  walk(root, ".");
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

// A layer without whiteouts is a plain tree in both formats: `umoci unpack` of it must match ours.
TEST_F(ArchiveTest, MatchesUmoci) {
  STRATA_REQUIRE_ROOT();
  if (std::system("umoci --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "umoci not installed";
  auto when = [](time_t s, long ns) {
    return [=](struct archive_entry* e) { archive_entry_set_mtime(e, s, ns); };
  };
  std::string cap = cap_net_bind_service();
  std::string tar =
      TarBuilder()
          .dir(".", 0755, when(1000, 0))
          .dir("etc", 0750, when(2000, 123))
          .file("etc/passwd", "root:x:0:0", 0644, when(3000, 456))
          .file("etc/shadow", "secret", 0400,
                [](struct archive_entry* e) {
                  archive_entry_set_gid(e, 42);
                  archive_entry_set_mtime(e, 3001, 0);
                })
          .file("usr/bin/tool", "#!/bin/sh\n", 04755,
                [&](struct archive_entry* e) {
                  archive_entry_set_uid(e, 3000000);
                  archive_entry_xattr_add_entry(e, "user.note", "n", 1);
                  archive_entry_xattr_add_entry(e, "security.capability", cap.data(), cap.size());
                })
          .hardlink("usr/bin/alias", "usr/bin/tool")
          .symlink("usr/bin/sh", "tool")
          .dir("usr/bin", 0755, when(4000, 789))
          .dir("usr", 0755, when(5000, 0))
          .add("run/fifo", AE_IFIFO, 0600)
          .device("dev/null", AE_IFCHR, 1, 3)
          .file(std::string(150, 'L') + "/" + std::string(120, 'n'), "long")
          .dir("run", 0755, when(6000, 6))
          .dir("dev", 0755, when(7000, 7))
          .dir(std::string(150, 'L'), 0700, when(8000, 8))
          .done();
  std::string work = tmp.sub("umoci");
  std::string tarfile = work + "/layer.tar";
  {
    int fd = ::open(tarfile.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, tar.data(), tar.size()), static_cast<ssize_t>(tar.size()));
    ::close(fd);
  }
  std::string cmd = "cd " + work +
                    " && umoci init --layout img && umoci new --image img:t"
                    " && umoci raw add-layer --image img:t layer.tar"
                    " && umoci unpack --image img:t bundle >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ASSERT_UNPACKS(unpack(tar));
  std::string theirs = work + "/bundle/rootfs";
  EXPECT_EQ(dump(dest), dump(theirs));
  // umoci leaves the root's mtime at the time of unpacking; we apply the "." entry's.
  auto without_root = [](std::string m) { return m.substr(m.find('\n') + 1); };
  EXPECT_EQ(without_root(mtimes(dest)), without_root(mtimes(theirs)));
  EXPECT_EQ(lstat_or_throw(dest).st_mtim.tv_sec, 1000);
  EXPECT_EQ(lstat_or_throw(path("usr/bin/alias")).st_ino,
            lstat_or_throw(path("usr/bin/tool")).st_ino);
}

// --- without privileges, for real ---

// Run `body` in a forked child; returns its exit status (0 = body returned true).
int in_child(const std::function<bool()>& body) {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string unprivileged_tar() {
  return TarBuilder()
      .dir("ro", 0555)
      .file("ro/f", "data", 0644, [](struct archive_entry* e) { archive_entry_set_uid(e, 1234); })
      .whiteout("ro/.wh.gone")
      .whiteout("ro/.wh..wh..opq")
      .device("null", AE_IFCHR, 1, 3)
      .add("fifo", AE_IFIFO, 0640)
      .file("cap", "x", 0755,
            [](struct archive_entry* e) {
              std::string cap = cap_net_bind_service();
              archive_entry_xattr_add_entry(e, "security.capability", cap.data(), cap.size());
            })
      .done();
}

bool unpack_in_child(int dest_fd, const std::string& tar, const char* report,
                     Privilege privilege = Privilege::kAuto) {
  UnpackOptions o;
  o.privilege = privilege;
  o.devices = DevicePolicy::kSkip;
  o.record_owner = true;
  size_t pos = 0;
  auto r = unpack_layer(
      [&](void* buf, size_t n) -> ssize_t {
        size_t k = std::min(n, tar.size() - pos);
        memcpy(buf, tar.data() + pos, k);
        pos += k;
        return static_cast<ssize_t>(k);
      },
      dest_fd, o);
  if (!r) fprintf(stderr, "%s: %s\n", report, r.error().message().c_str());
  for (const auto& w : r ? r->warnings : std::vector<std::string>{})
    fprintf(stderr, "%s: warning %s\n", report, w.c_str());
  return r.has_value();
}

TEST_F(ArchiveTest, AsAnUnprivilegedUser) {
  STRATA_REQUIRE_ROOT();
  std::string tar = unprivileged_tar();
  ASSERT_EQ(::chown(dest.c_str(), 65534, 65534), 0);
  // Opened before dropping privileges: the temporary directory above it is root's, mode 0700.
  UniqueFd d(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  int rc = in_child([&] {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0)
      return false;
    // Changing uid made us undumpable, which hides /proc/self/fd from ourselves; a real user is
    // dumpable.
    ::prctl(PR_SET_DUMPABLE, 1);
    return unpack_in_child(d.get(), tar, "as nobody");
  });
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(
      dump(dest, DumpOptions{true, true}),
      // fuse-overlayfs's records (UID:GID:MODE); the root marks the layer as carrying them; "ro"
      // (0555 in the tar) stays writable by its real owner.
      ". dir mode=0755 uid=65534 gid=65534 xattr user.fuseoverlayfs.override_stat=65534:65534:755\n"
      "cap file mode=0755 uid=65534 gid=65534 size=1 content=x xattr "
      "user.fuseoverlayfs.override_stat=0:0:755\n"
      "fifo fifo mode=0640 uid=65534 gid=65534\n"
      "ro dir mode=0755 uid=65534 gid=65534 xattr user.fuseoverlayfs.override_stat=0:0:555 "
      "user.overlay.opaque=y\n"
      "ro/f file mode=0644 uid=65534 gid=65534 size=4 content=data xattr "
      "user.fuseoverlayfs.override_stat=1234:0:644\n"
      "ro/gone whiteout\n");
}

TEST_F(ArchiveTest, AsRootOfAUserNamespace) {
  STRATA_REQUIRE_ROOT();
  std::string tar = unprivileged_tar();
  auto in_userns = [&](const std::string& dir, Privilege privilege) {
    UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    return in_child([&] {
      if (::unshare(CLONE_NEWUSER) != 0) return false;
      auto put = [](const char* file, const char* text) {
        int fd = ::open(file, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return false;
        bool ok = ::write(fd, text, strlen(text)) == static_cast<ssize_t>(strlen(text));
        ::close(fd);
        return ok;
      };
      if (!put("/proc/self/setgroups", "deny") || !put("/proc/self/uid_map", "0 0 1") ||
          !put("/proc/self/gid_map", "0 0 1"))
        return false;
      return unpack_in_child(d.get(), tar, "in a user namespace", privilege);
    });
  };
  int rc = in_userns(dest, Privilege::kAuto);
  if (rc != 0 && ::access("/proc/sys/user/max_user_namespaces", F_OK) != 0)
    GTEST_SKIP() << "no user namespaces";
  ASSERT_EQ(rc, 0);
  // kPrivileged turns the first refusal (chown to an unmapped id, EINVAL) into an error.
  TempDir t;
  EXPECT_NE(in_userns(t.sub("strict"), Privilege::kPrivileged), 0);
  // uid 0 is mapped, so chown works for it; 1234 is not (EINVAL): recorded. trusted.* is refused:
  // user.*. security.capability is allowed (the kernel stores it for the namespace's root, which is
  // real root here).
  EXPECT_EQ(dump(dest, DumpOptions{true, true}),
            ". dir mode=0755 uid=0 gid=0 xattr user.fuseoverlayfs.override_stat=0:0:755\n"
            "cap file mode=0755 uid=0 gid=0 size=1 content=x xattr "
            "security.capability=\\x01\\x00\\x00\\x02"
            "\\x00\\x04\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\n"
            "fifo fifo mode=0640 uid=0 gid=0\n"
            "ro dir mode=0555 uid=0 gid=0 xattr user.overlay.opaque=y\n"
            "ro/f file mode=0644 uid=0 gid=0 size=4 content=data xattr "
            "user.fuseoverlayfs.override_stat=1234:0:644\n"
            "ro/gone whiteout\n");
}

}  // namespace
