// SPDX-License-Identifier: Apache-2.0
// Shared by the archive_*_test.cc files: tar builders (libarchive's writer, raw header bytes) and the fixture
// that unpacks into a temp dir next to a sentinel directory that must stay empty.
#pragma once
#include <archive.h>
#include <archive_entry.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "strata/archive/entry_path.h"
#include "strata/archive/unpack.h"
#include "strata/base/unique_fd.h"
#include "strata/sys/fs_extra.h"
#include "tree.h"

namespace {

using strata::Result;
using strata::UniqueFd;
using strata::archive::DevicePolicy;
using strata::archive::parse_entry_path;
using strata::archive::Privilege;
using strata::archive::ReadFn;
using strata::archive::unpack_layer;
using strata::archive::UnpackOptions;
using strata::archive::UnpackStats;
using strata::testing::dump;
using strata::testing::DumpOptions;
using strata::testing::exists;
using strata::testing::is_whiteout;
using strata::testing::ls;
using strata::testing::lstat_or_throw;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::xattr_of;

constexpr time_t kTime = 1700000000;

// -------------------------------------------------------------------------------------------------
// Well-formed tars: libarchive's writer.

enum class Format { kPax, kGnu, kUstar };
enum class Compression { kNone, kGzip, kZstd };

class TarBuilder {
 public:
  using Edit = std::function<void(struct archive_entry*)>;

  explicit TarBuilder(Format format = Format::kPax, Compression comp = Compression::kNone) {
    a_ = archive_write_new();
    if (!a_) throw std::runtime_error("archive_write_new");
    check(format == Format::kPax   ? archive_write_set_format_pax(a_)
          : format == Format::kGnu ? archive_write_set_format_gnutar(a_)
                                   : archive_write_set_format_ustar(a_),
          "format");
    check(comp == Compression::kGzip   ? archive_write_add_filter_gzip(a_)
          : comp == Compression::kZstd ? archive_write_add_filter_zstd(a_)
                                       : archive_write_add_filter_none(a_),
          "filter");
    // Compressed output unpadded, as registries serve it (zstd refuses zeros after the last frame).
    if (comp != Compression::kNone)
      check(archive_write_set_bytes_in_last_block(a_, 1), "last block");
    check(archive_write_open(a_, &out_, nullptr, write_cb, nullptr), "open");
  }
  ~TarBuilder() {
    if (a_) archive_write_free(a_);
  }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  TarBuilder& add(const std::string& name, mode_t type, mode_t perm, const std::string& data = "",
                  const Edit& edit = nullptr) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, perm);
    archive_entry_set_size(e, type == AE_IFREG ? static_cast<la_int64_t>(data.size()) : 0);
    archive_entry_set_mtime(e, kTime, 0);
    if (edit) edit(e);
    int r = archive_write_header(a_, e);
    archive_entry_free(e);
    check(r, "header " + name);
    if (!data.empty()) {
      la_ssize_t n = archive_write_data(a_, data.data(), data.size());
      if (n < 0) check(static_cast<int>(n), "data " + name);
    }
    return *this;
  }
  TarBuilder& file(const std::string& name, const std::string& data = "", mode_t perm = 0644,
                   const Edit& edit = nullptr) {
    return add(name, AE_IFREG, perm, data, edit);
  }
  TarBuilder& dir(const std::string& name, mode_t perm = 0755, const Edit& edit = nullptr) {
    return add(name, AE_IFDIR, perm, "", edit);
  }
  TarBuilder& symlink(const std::string& name, const std::string& target) {
    return add(name, AE_IFLNK, 0777, "",
               [&](struct archive_entry* e) { archive_entry_set_symlink(e, target.c_str()); });
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target) {
    return add(name, AE_IFREG, 0644, "",
               [&](struct archive_entry* e) { archive_entry_set_hardlink(e, target.c_str()); });
  }
  // As umoci writes them: an empty regular file with mode 0.
  TarBuilder& whiteout(const std::string& name) { return file(name, "", 0); }
  TarBuilder& device(const std::string& name, mode_t type, unsigned maj, unsigned min) {
    return add(name, type, 0600, "", [=](struct archive_entry* e) {
      archive_entry_set_rdevmajor(e, maj);
      archive_entry_set_rdevminor(e, min);
    });
  }

  std::string done() {
    check(archive_write_close(a_), "close");
    return out_;
  }

 private:
  static la_ssize_t write_cb(struct archive*, void* data, const void* buf, size_t n) {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  void check(int r, const std::string& what) {
    if (r < ARCHIVE_WARN) {
      const char* m = archive_error_string(a_);
      throw std::runtime_error("tar writer " + what + ": " + (m ? m : "?"));
    }
  }

  struct archive* a_ = nullptr;
  std::string out_;
};

// -------------------------------------------------------------------------------------------------
// Crafted tars: header bytes written by hand, so that anything a hostile writer could put there can
// be.

class Raw {
 public:
  explicit Raw(std::string name) : name_(std::move(name)) {}
  Raw& type(char t) {
    type_ = t;
    return *this;
  }
  Raw& mode(std::string m) {
    mode_ = std::move(m);
    return *this;
  }  // the octal text, type bits and all
  Raw& data(std::string d) {
    data_ = std::move(d);
    return *this;
  }
  Raw& link(std::string l) {
    link_ = std::move(l);
    return *this;
  }
  Raw& mtime(int64_t t) {
    mtime_ = t;
    return *this;
  }

  std::string name_;
  char type_ = '0';
  std::string mode_ = "0000644";
  std::string data_;
  std::string link_;
  uint64_t uid_ = 0;
  uint64_t gid_ = 0;
  int64_t mtime_ = kTime;
};

void put_octal(char* field, size_t len, uint64_t v) {
  snprintf(field, len, "%0*llo", static_cast<int>(len - 1), static_cast<unsigned long long>(v));
}

std::string raw_header(const Raw& r) {
  char h[512] = {};
  memcpy(h, r.name_.data(), std::min<size_t>(r.name_.size(), 100));
  memcpy(h + 100, r.mode_.data(), std::min<size_t>(r.mode_.size(), 7));
  put_octal(h + 108, 8, r.uid_);
  put_octal(h + 116, 8, r.gid_);
  put_octal(h + 124, 12, r.data_.size());
  put_octal(h + 136, 12, static_cast<uint64_t>(r.mtime_));
  h[156] = r.type_;
  memcpy(h + 157, r.link_.data(), std::min<size_t>(r.link_.size(), 100));
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return std::string(h, 512);
}

std::string pad512(std::string s) {
  s.append((512 - s.size() % 512) % 512, '\0');
  return s;
}

std::string raw_entry(const Raw& r) {
  return raw_header(r) + pad512(r.data_);
}

// A PAX extended header ('x') holding `records`, to be followed by the entry it describes.
std::string pax(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [k, v] : records) {
    std::string rest = " " + k + "=" + v + "\n";
    size_t n = rest.size() + 1;
    while (std::to_string(n).size() + rest.size() != n) ++n;
    body += std::to_string(n) + rest;
  }
  return raw_entry(Raw("PaxHeaders/x").type('x').data(body));
}

const std::string kEnd(1024, '\0');

// -------------------------------------------------------------------------------------------------

struct Unpacked {
  Result<UnpackStats> result;
  size_t consumed;
};

std::string errmsg(const Result<UnpackStats>& r) {
  return r ? std::string("(succeeded)") : r.error().message();
}

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A victim file outside the destination: no hard link may ever reach it.
    victim_ = tmp.sub("victim");
    std::string p = victim_ + "/secret";
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "s", 1), 1);
    ::close(fd);
  }
  void TearDown() override {
    // Whatever a test did, nothing may have escaped.
    EXPECT_TRUE(ls(outside).empty()) << "something was written outside the destination";
    EXPECT_EQ(ls(victim_), std::vector<std::string>{"secret"});
    struct stat st = lstat_or_throw(victim_ + "/secret");
    EXPECT_EQ(st.st_nlink, 1u) << "the victim file was hard-linked";
    EXPECT_EQ(read_file(victim_ + "/secret"), "s");
  }

  Result<UnpackStats> unpack(const std::string& tar, const UnpackOptions& o = {}) {
    UniqueFd d(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!d) throw std::runtime_error("open dest");
    size_t pos = 0;
    ReadFn read = [&](void* buf, size_t n) -> ssize_t {
      size_t k = std::min(n, tar.size() - pos);
      memcpy(buf, tar.data() + pos, k);
      pos += k;
      return static_cast<ssize_t>(k);
    };
    auto r = unpack_layer(read, d.get(), o);
    if (r) {
      EXPECT_EQ(pos, tar.size()) << "the source was not read to its end";
    }
    return r;
  }

  // Expect failure with errno `err` and a message containing each of `parts`.
  void expect_fail(const std::string& tar, int err, const std::vector<std::string>& parts,
                   const UnpackOptions& o = {}) {
    auto r = unpack(tar, o);
    ASSERT_FALSE(r) << "unpack succeeded; tree:\n" << dump(dest);
    EXPECT_EQ(r.error().err, err) << r.error().message();
    for (const auto& p : parts)
      EXPECT_NE(r.error().message().find(p), std::string::npos)
          << "'" << p << "' not in: " << r.error().message();
  }

  std::string path(const std::string& rel) const { return dest + "/" + rel; }

  TempDir tmp;
  std::string dest = tmp.sub("dest");
  std::string outside = tmp.sub("outside");
  std::string victim_;
};

// Evaluates `expr` once; more context may be streamed after it.
#define ASSERT_UNPACKS(expr) \
  if (const auto& unpacked_ = (expr); !unpacked_.has_value()) FAIL() << errmsg(unpacked_)

inline std::string cap_net_bind_service() {
  // struct vfs_cap_data, revision 2, effective: permitted = CAP_NET_BIND_SERVICE (10).
  const uint32_t v[5] = {0x02000001u, 1u << 10, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

}  // namespace
