// SPDX-License-Identifier: Apache-2.0
#include "strata/copyup/unsynced.h"

#include <fcntl.h>

#include <cstdlib>
#include <optional>

#include "strata/sys/fs.h"

namespace strata::copyup {
namespace {

// The original of `path`: the first lower layer (top first) holding it, if that is a regular file.
Result<UniqueFd> find_original(const std::vector<int>& lower_roots, const std::string& path) {
  for (int root : lower_roots) {
    auto fd = sys::open_beneath(root, path, O_RDONLY | O_NONBLOCK);
    if (!fd) {
      if (fd.error().err == ENOENT || fd.error().err == ENOTDIR) continue;
      return fd.take_error();
    }
    auto st = sys::stat_at(fd->get(), "");
    if (!st) return st.take_error();
    if (!S_ISREG(st->st_mode)) break;
    return std::move(*fd);
  }
  return make_error(ENOENT, "no lower layer holds", path);
}

struct Record {
  std::string boot;
  ino_t ino = 0;
  std::string path;
};

std::optional<Record> parse(const std::string& target) {
  auto a = target.find('/');
  if (a == std::string::npos) return std::nullopt;
  auto b = target.find('/', a + 1);
  if (b == std::string::npos || b == a + 1 || b + 1 >= target.size()) return std::nullopt;
  Record r;
  r.boot = target.substr(0, a);
  char* end = nullptr;
  std::string ino = target.substr(a + 1, b - a - 1);
  r.ino = static_cast<ino_t>(std::strtoull(ino.c_str(), &end, 10));
  if (!end || *end) return std::nullopt;
  r.path = target.substr(b + 1);
  return r;
}

// Copy the original over the copy (`obj`, an O_PATH fd), keeping its file capabilities (writing drops them).
Status restore(int orig, int obj) {
  auto st = sys::stat_at(orig, "");
  if (!st) return st.take_error();
  auto caps = sys::get_xattr(obj, "", "security.capability");
  auto out = sys::reopen(obj, O_WRONLY | O_TRUNC);
  if (!out) return out.take_error();
  STRATA_TRY(sys::copy_data(orig, out->get(), st->st_size, true));
  if (caps) (void)sys::set_xattr(obj, "", "security.capability", *caps, 0);
  return sys::fsync_fd(out->get(), false);
}

}  // namespace

Status record_unsynced(int log_dir, const std::string& name, const std::string& boot_id, ino_t ino,
                       const std::string& upper_path) {
  std::string target = boot_id + "/" + std::to_string(static_cast<unsigned long long>(ino)) + "/" + upper_path;
  return sys::symlink_at(target.c_str(), log_dir, name.c_str());
}

Status clear_unsynced(int log_dir, const std::string& name) {
  auto r = sys::unlink_at(log_dir, name.c_str(), 0);
  if (!r && r.error().err != ENOENT) return r;
  return {};
}

Result<Recovery> recover_unsynced(int log_dir, int upper_root, const std::vector<int>& lower_roots,
                                  const std::string& boot_id) {
  auto ents = sys::read_dir(log_dir);
  if (!ents) return ents.take_error();
  Recovery rec;
  for (const auto& e : *ents) {
    auto target = sys::readlink_at(log_dir, e.name.c_str());
    auto r = target ? parse(*target) : std::nullopt;
    // Only what the record names, and only while it is still that inode: a record whose copy-up never got
    // renamed into place (or whose object went since) has nothing to repair.
    UniqueFd obj;
    if (r) {
      auto fd = sys::open_beneath(upper_root, r->path, O_PATH);
      if (fd) {
        auto st = sys::stat_at(fd->get(), "");
        if (st && S_ISREG(st->st_mode) && st->st_ino == r->ino) obj = std::move(*fd);
      }
    }
    if (obj && r->boot == boot_id && !boot_id.empty()) {
      auto fd = sys::reopen(obj.get(), O_RDONLY | O_NONBLOCK);
      if (!fd) return fd.take_error();
      STRATA_TRY(sys::fsync_fd(fd->get(), false));
      ++rec.synced;
    } else if (obj) {
      auto orig = find_original(lower_roots, r->path);
      if (!orig) {
        ++rec.lost;
        rec.messages.push_back("copy-up of /" + r->path + " may have lost data in a crash and cannot be " +
                               "restored: " + orig.error().message());
      } else {
        STRATA_TRY(restore(orig->get(), obj.get()));  // the inode checked above, not the path again
        ++rec.restored;
        rec.messages.push_back("copy-up of /" + r->path + " was cut short by a crash: its content is the " +
                               "lower layer's again");
      }
    }
    STRATA_TRY(clear_unsynced(log_dir, e.name));
  }
  return rec;
}

}  // namespace strata::copyup
