// SPDX-License-Identifier: Apache-2.0
#include "strata/store/layout.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <vector>

#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::store::detail {

Status check_digest(const Digest& d, const char* op) {
  if (d.algorithm != "sha256" || !Digest::valid_sha256_hex(d.hex))
    return make_error(EINVAL, op, "'" + d.to_string() + "': not a sha256 digest");
  return {};
}

std::string temp_name(std::string_view stem) {
  static std::atomic<unsigned long> counter{0};
  return std::string(kTempPrefix) + std::string(stem) + "-" + std::to_string(sys::current_pid()) +
         "-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
}

bool temp_owner(std::string_view name, pid_t* pid) {
  std::string_view pfx(kTempPrefix);
  if (name.substr(0, pfx.size()) != pfx) return false;
  size_t last = name.rfind('-');
  if (last == std::string_view::npos || last <= pfx.size()) return false;
  size_t prev = name.rfind('-', last - 1);
  if (prev == std::string_view::npos || prev < pfx.size()) return false;
  std::string_view pid_s = name.substr(prev + 1, last - prev - 1);
  std::string_view n_s = name.substr(last + 1);
  if (pid_s.empty() || n_s.empty()) return false;
  long p = 0;
  auto r = std::from_chars(pid_s.data(), pid_s.data() + pid_s.size(), p);
  if (r.ec != std::errc() || r.ptr != pid_s.data() + pid_s.size() || p <= 0) return false;
  for (char c : n_s) {
    if (c < '0' || c > '9') return false;
  }
  *pid = static_cast<pid_t>(p);
  return true;
}

namespace {

Status write_temp(int dirfd, const std::string& tmp, std::string_view data, mode_t mode) {
  auto fd = sys::open_at(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (!fd) return fd.take_error();
  Status s = sys::write_all(fd->get(), data.data(), data.size());
  if (s) s = sys::fsync_fd(fd->get(), false);
  if (!s) {
    (void)sys::unlink_at(dirfd, tmp.c_str(), 0);  // the write error is the one to report
    return s;
  }
  return {};
}

}  // namespace

Status write_file_atomic(int dirfd, const std::string& name, std::string_view data, mode_t mode) {
  std::string tmp = temp_name(name);
  STRATA_TRY(write_temp(dirfd, tmp, data, mode));
  if (auto r = sys::rename_at(dirfd, tmp.c_str(), dirfd, name.c_str(), 0); !r) {
    (void)sys::unlink_at(dirfd, tmp.c_str(), 0);  // the rename error is the one to report
    return r;
  }
  return fsync_dir(dirfd);
}

Status create_file_atomic(int dirfd, const std::string& name, std::string_view data, mode_t mode) {
  std::string tmp = temp_name(name);
  STRATA_TRY(write_temp(dirfd, tmp, data, mode));
  // link(2) never replaces: whoever links first wins, a concurrent creator sees EEXIST and is done.
  Status l = sys::link_at(dirfd, tmp.c_str(), dirfd, name.c_str());
  (void)sys::unlink_at(dirfd, tmp.c_str(), 0);  // a leftover temp is removed by cleanup_stale()
  if (!l && l.error().err != EEXIST) return l;
  return fsync_dir(dirfd);
}

Result<std::string> read_file_at(int dirfd, const char* name, size_t max_size) {
  auto fd = sys::open_at(dirfd, name, O_RDONLY);
  if (!fd) return fd.take_error();
  std::string out;
  char buf[65536];
  off_t off = 0;
  while (true) {
    auto n = sys::pread_some(fd->get(), buf, sizeof buf, off);
    if (!n) return n.take_error();
    if (*n == 0) break;
    if (out.size() + *n > max_size)
      return make_error(EFBIG, "read", std::string(name) + ": too large");
    out.append(buf, *n);
    off += static_cast<off_t>(*n);
  }
  return out;
}

Status fsync_dir(int dirfd) {
  return sys::fsync_fd(dirfd, false);
}

std::string now_rfc3339() {
  time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace strata::store::detail
