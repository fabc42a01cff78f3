// SPDX-License-Identifier: Apache-2.0
// Test helpers: build directory trees in a temporary directory and dump a tree as canonical text.
//
//   TempDir tmp;                              // removed (recursively) at scope exit
//   Tree lower(tmp.sub("lower"));             // creates the directory
//   lower.file("a", "x", 0644).dir("d").whiteout("d/b").opaque_dir("c").symlink("l", "a");
//   EXPECT_EQ(dump(lower.root()), "...");
//
// dump() prints one line per entry, sorted by path (byte order), the root first as ".":
//   PATH TYPE mode=0644 uid=0 gid=0 [size=N content=ESCAPED | size=N fnv=HEX] [target=T]
//   [rdev=MAJ:MIN]
//        [xattr NAME=VALUE ...]
// TYPE is file dir symlink fifo socket chr blk whiteout; a whiteout (char device 0/0) is the bare
// "PATH whiteout". Contents up to 64 bytes are printed (escaped), longer ones hashed (FNV-1a 64).
// Times, inode numbers, link counts and directory sizes are never printed: they differ between
// equivalent trees. Also: reading back (read_file, xattr_of, ls, is_whiteout) and strata::Result
// assertions (EXPECT_OK, ASSERT_OK, EXPECT_ERRNO). Helpers throw std::runtime_error when the setup
// itself fails; GoogleTest reports that as a test failure. whiteout() needs CAP_MKNOD and
// opaque_dir()'s trusted.* xattr needs CAP_SYS_ADMIN: tests using them skip when not root (see
// STRATA_REQUIRE_ROOT).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace strata::testing {

#define STRATA_REQUIRE_ROOT()                                                     \
  do {                                                                            \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mknod, trusted.* xattrs)"; \
  } while (0)

// strata::Result as assertions: EXPECT_OK(ov->unlink(...)), EXPECT_ERRNO(ov->unlink(...), EROFS).
// The failure message carries the Error (op, detail, errno).
template <typename R>
::testing::AssertionResult ok(const R& r) {
  if (r.has_value()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().message();
}
template <typename R>
::testing::AssertionResult fails_with(const R& r, int e) {
  if (r.has_value()) return ::testing::AssertionFailure() << "succeeded";
  if (r.error().err == e) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << r.error().message() << " (errno " << r.error().err << ")";
}
#define EXPECT_OK(expr) EXPECT_TRUE(::strata::testing::ok(expr))
#define ASSERT_OK(expr) ASSERT_TRUE(::strata::testing::ok(expr))
#define EXPECT_ERRNO(expr, e) EXPECT_TRUE(::strata::testing::fails_with(expr, e))

[[noreturn]] inline void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + strerror(errno));
}

// A fresh directory under $TMPDIR (default /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/strata-test.XXXXXX";
    if (!mkdtemp(tmpl.data())) fail("mkdtemp", tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    // Depth-first, physical: symlinks are removed, never followed.
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int flag, struct FTW*) {
          // Best effort: a leftover in /tmp must not fail the test.
          if (flag == FTW_DP)
            (void)rmdir(p);
          else
            (void)unlink(p);
          return 0;
        },
        64, FTW_DEPTH | FTW_PHYS);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Creates `name` (mode 0755) inside and returns its path.
  std::string sub(const std::string& name) const {
    std::string p = path_ + "/" + name;
    if (mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) fail("mkdir", p);
    return p;
  }

 private:
  std::string path_;
};

// Builder of a tree rooted at an existing or new directory. Paths are relative, '/'-separated;
// missing parent directories are created with mode 0755. Modes are applied with chmod, so the umask
// does not interfere.
class Tree {
 public:
  explicit Tree(std::string root) : root_(std::move(root)) {
    if (mkdir(root_.c_str(), 0755) < 0 && errno != EEXIST) fail("mkdir", root_);
  }
  const std::string& root() const { return root_; }
  std::string path(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  Tree& file(const std::string& rel, const std::string& content = "", mode_t mode = 0644) {
    parents(rel);
    std::string p = path(rel);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) fail("open", p);
    for (size_t done = 0; done < content.size();) {
      ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0) {
        ::close(fd);
        fail("write", p);
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return chmod_(p, mode);
  }
  Tree& dir(const std::string& rel, mode_t mode = 0755) {
    parents(rel);
    std::string p = path(rel);
    if (mkdir(p.c_str(), 0700) < 0 && errno != EEXIST) fail("mkdir", p);
    return chmod_(p, mode);
  }
  Tree& symlink(const std::string& rel, const std::string& target) {
    parents(rel);
    std::string p = path(rel);
    if (::symlink(target.c_str(), p.c_str()) < 0) fail("symlink", p);
    return *this;
  }
  // A whiteout as the kernel writes it: a character device 0/0.
  Tree& whiteout(const std::string& rel) {
    parents(rel);
    std::string p = path(rel);
    if (mknod(p.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) fail("mknod", p);
    return *this;
  }
  // A directory marked opaque (trusted.overlay.opaque=y) unless another xattr/value is given.
  Tree& opaque_dir(const std::string& rel, const std::string& attr = "trusted.overlay.opaque",
                   const std::string& value = "y") {
    dir(rel);
    return xattr(rel, attr, value);
  }
  Tree& xattr(const std::string& rel, const std::string& name, const std::string& value) {
    std::string p = path(rel);
    if (lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) < 0)
      fail("setxattr " + name, p);
    return *this;
  }
  Tree& chown(const std::string& rel, uid_t uid, gid_t gid) {
    std::string p = path(rel);
    if (lchown(p.c_str(), uid, gid) < 0) fail("lchown", p);
    return *this;
  }
  Tree& chmod(const std::string& rel, mode_t mode) { return chmod_(path(rel), mode); }
  Tree& mtime(const std::string& rel, time_t sec, long nsec = 0) {
    std::string p = path(rel);
    struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    if (utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW) < 0) fail("utimensat", p);
    return *this;
  }

 private:
  Tree& chmod_(const std::string& p, mode_t mode) {
    if (::chmod(p.c_str(), mode) < 0) fail("chmod", p);
    return *this;
  }
  void parents(const std::string& rel) {
    for (size_t s = rel.find('/'); s != std::string::npos; s = rel.find('/', s + 1)) {
      std::string p = path(rel.substr(0, s));
      if (mkdir(p.c_str(), 0755) < 0 && errno != EEXIST) fail("mkdir", p);
    }
  }

  std::string root_;
};

// --- reading back ---

inline bool exists(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}

inline struct stat lstat_or_throw(const std::string& p) {
  struct stat st;
  if (lstat(p.c_str(), &st) < 0) fail("lstat", p);
  return st;
}

inline std::string read_file(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail("open", p);
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (n < 0) fail("read", p);
  return out;
}

// A character device 0/0: the kernel's whiteout.
inline bool is_whiteout(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// The names in directory `p` (without "." and ".."), sorted.
inline std::vector<std::string> ls(const std::string& p) {
  DIR* d = opendir(p.c_str());
  if (!d) fail("opendir", p);
  std::vector<std::string> out;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The value of an xattr, or "<absent>" when it is not set.
inline std::string xattr_of(const std::string& p, const std::string& name) {
  char buf[4096];
  ssize_t n = lgetxattr(p.c_str(), name.c_str(), buf, sizeof buf);
  if (n < 0) {
    if (errno == ENODATA) return "<absent>";
    fail("getxattr " + name, p);
  }
  return std::string(buf, static_cast<size_t>(n));
}

// Unambiguous printable form: backslash doubled, bytes outside 0x21..0x7e as \xHH.
inline std::string esc(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x21 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

inline std::string fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  char b[24];
  snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(h));
  return b;
}

struct DumpOptions {
  bool owner = true;   // uid=/gid=
  bool xattrs = true;  // xattr NAME=VALUE ... (all namespaces, sorted by name)
};

namespace detail {

inline void dump_entry(const std::string& abs, const std::string& rel, const DumpOptions& o,
                       std::vector<std::string>* lines) {
  struct stat st = lstat_or_throw(abs);
  std::string line = esc(rel);
  mode_t t = st.st_mode & S_IFMT;
  if (t == S_IFCHR && st.st_rdev == 0) {
    lines->push_back(line + " whiteout");
    return;
  }
  const char* tn = t == S_IFREG    ? "file"
                   : t == S_IFDIR  ? "dir"
                   : t == S_IFLNK  ? "symlink"
                   : t == S_IFIFO  ? "fifo"
                   : t == S_IFSOCK ? "socket"
                   : t == S_IFCHR  ? "chr"
                   : t == S_IFBLK  ? "blk"
                                   : "unknown";
  char b[64];
  snprintf(b, sizeof b, " %s mode=%04o", tn, static_cast<unsigned>(st.st_mode & 07777));
  line += b;
  if (o.owner) line += " uid=" + std::to_string(st.st_uid) + " gid=" + std::to_string(st.st_gid);
  if (t == S_IFREG) {
    std::string data = read_file(abs);
    line += " size=" + std::to_string(st.st_size);
    line += data.size() <= 64 ? " content=" + esc(data) : " fnv=" + fnv1a(data);
  } else if (t == S_IFLNK) {
    char tgt[4096];
    ssize_t n = readlink(abs.c_str(), tgt, sizeof tgt);
    if (n < 0) fail("readlink", abs);
    line += " target=" + esc(std::string(tgt, static_cast<size_t>(n)));
  } else if (t == S_IFCHR || t == S_IFBLK) {
    line += " rdev=" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
  }
  if (o.xattrs) {
    char names[65536];
    ssize_t n = llistxattr(abs.c_str(), names, sizeof names);
    if (n < 0 && errno != ENOTSUP) fail("listxattr", abs);
    std::vector<std::string> xs;
    for (ssize_t i = 0; i < n;) {
      std::string name(names + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      if (!name.empty()) xs.push_back(name);
    }
    std::sort(xs.begin(), xs.end());
    if (!xs.empty()) line += " xattr";
    for (const auto& x : xs) line += " " + esc(x) + "=" + esc(xattr_of(abs, x));
  }
  lines->push_back(line);
}

inline void walk(const std::string& abs, const std::string& rel, const DumpOptions& o,
                 std::vector<std::string>* lines) {
  dump_entry(abs, rel, o, lines);
  if (!S_ISDIR(lstat_or_throw(abs).st_mode)) return;
  std::vector<std::string> names;
  int fd = ::open(abs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) fail("open", abs);
  DIR* d = fdopendir(fd);
  if (!d) fail("fdopendir", abs);
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) walk(abs + "/" + n, rel == "." ? n : rel + "/" + n, o, lines);
}

}  // namespace detail

// Canonical text of the tree at `root` (see the top comment); each line ends in '\n'. Lines are
// sorted by path in byte order (children directly after their directory, as a sorted depth-first
// walk gives).
inline std::string dump(const std::string& root, const DumpOptions& o = {}) {
  std::vector<std::string> lines;
  detail::walk(root, ".", o, &lines);
  std::sort(lines.begin() + 1, lines.end(), [](const std::string& a, const std::string& b) {
    return a.substr(0, a.find(' ')) < b.substr(0, b.find(' '));
  });
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace strata::testing
