// SPDX-License-Identifier: Apache-2.0
// Copy-up orchestration: parents first, one node at a time under its own lock.
#include "strata/base/log.h"
#include "strata/copyup/copy_up.h"
#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"

namespace strata::merge {

Status Overlay::ensure_upper(Node* n, bool with_data) {
  if (!has_upper_) return make_error(EROFS, "copy-up");
  if (n->top() == 0) return {};
  // Collect the chain of ancestors not yet in the upper, then copy top-down: parents always exist first.
  std::vector<NodeRef> chain;
  chain.push_back(table_.ref(n));
  while (true) {
    auto place = table_.place(chain.back().get());
    if (!place.parent) {
      if (chain.back().get() == root()) break;
      return make_error(ENOENT, "copy-up", "object was removed");
    }
    if (place.parent->top() == 0) break;
    chain.push_back(std::move(place.parent));
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it)
    STRATA_TRY(copy_up_one(it->get(), with_data || it->get() != n));
  return {};
}

Status Overlay::copy_up_one(Node* n, bool with_data) {
  std::lock_guard lk(n->copy_mu);
  if (n->top() == 0) return {};
  auto place = table_.place(n);
  if (!place.parent) return make_error(ENOENT, "copy-up", "object was removed");
  Node* parent = place.parent.get();
  int layer = n->top();
  auto src = dir_fd_layer(parent, layer);
  if (!src) return src.take_error();
  auto dst = upper_dir_fd(parent);
  if (!dst) return dst.take_error();
  auto st = sys::stat_at((*src)->get(), place.name.c_str());
  if (!st) return st.take_error();
  copyup::Options o;
  o.fsync = fsync_;
  o.with_data = with_data;
  o.userxattr = userxattr();
  if (override_xattr_ && !S_ISLNK(st->st_mode)) {
    // The copy belongs to the daemon: keep the owner and mode the view showed in the override xattr.
    auto eff = effective_owner((*src)->get(), place.name.c_str(), *st);
    if (!eff) return eff.take_error();
    o.override_xattr = override_xattr_;
    o.override_value = format_stat_override(*eff->uid, *eff->gid, eff->mode);
  }
  // A lower hard link goes through the index: the inode's other names find the copy there.
  bool index = !n->is_dir() && st->st_nlink > 1 && index_;
  if (index) {
    o.index_dir = index_->get();
    o.index_name = index_name_for(*st);
    o.nlink_xattr = nlink_xattr_;
    // Names now: all the lower links; links of the copy: the index entry and this name.
    o.nlink_value = std::to_string(static_cast<long>(st->st_nlink) - 2);
    (void)sys::unlink_at(o.index_dir, o.index_name.c_str(), 0);  // a stale entry from a failed copy-up
  }
  if (fsync_ && background_fsync_ && S_ISREG(st->st_mode) && !index)
    STRATA_TRY(copy_up_deferred(n, place.name, *st, (*src)->get(), (*dst)->get(), o));
  else
    STRATA_TRY(copyup::copy_up((*src)->get(), place.name, *st, (*dst)->get(), place.name, work_.get(), tmp_name(),
                               o));
  if (index) {
    auto ust = sys::stat_at((*dst)->get(), place.name.c_str());
    std::lock_guard il(n->mu);
    n->index_name = o.index_name;
    n->nlink_delta = static_cast<int>(st->st_nlink) - 2;
    if (ust) table_.add_key(n, LinkKey{0, ust->st_dev, ust->st_ino});
  }
  // The name now lives in another layer: listings of the parent taken before are stale.
  parent->dir_gen.fetch_add(1, std::memory_order_release);
  if (n->is_dir()) {
    auto fd = sys::open_at((*dst)->get(), place.name.c_str(), O_PATH | O_DIRECTORY);
    std::lock_guard dl(n->mu);
    n->layers.insert(n->layers.begin(), 0);
    n->layer_flags.insert(n->layer_flags.begin(), 0);
    n->fds.insert(n->fds.begin(), fd ? std::make_shared<const UniqueFd>(std::move(*fd)) : SharedFd());
  }
  n->set_top(0);
  copy_ups_.fetch_add(1, std::memory_order_relaxed);
  return {};
}

std::optional<std::string> Overlay::union_path(Node* n) {
  std::string path;
  NodeRef cur = table_.ref(n);
  while (cur.get() != root()) {
    auto place = table_.place(cur.get());
    if (!place.parent) return std::nullopt;  // removed meanwhile
    path = path.empty() ? place.name : place.name + "/" + path;
    cur = std::move(place.parent);
  }
  return path;
}

Status Overlay::copy_up_deferred(Node* n, const std::string& name, const struct stat& st, int src, int dst,
                                 const copyup::Options& o) {
  auto path = union_path(n);
  if (!path) return make_error(ENOENT, "copy-up", "object was removed");
  std::string tmp = tmp_name();
  copyup::Options built = o;
  built.fsync = false;  // no writeback pushed during the copy: the queue starts it
  auto data = copyup::build_copy(src, name, st, work_.get(), tmp, built);
  if (!data) return data.take_error();
  auto dst_st = sys::stat_at(data->get(), "");
  if (!dst_st) {
    (void)sys::unlink_at(work_.get(), tmp.c_str(), 0);
    return dst_st.take_error();
  }
  // Recorded before it becomes visible: a crash from here on finds the record (copyup/unsynced.h).
  auto rec = copyup::record_unsynced(unsynced_->get(), tmp, boot_id_, dst_st->st_ino, *path);
  if (!rec) {
    // No record (a path too long for a symlink's target, say): durable now, as kernel overlayfs does it.
    return copyup::publish_copy(std::move(*data), false, work_.get(), tmp, dst, name, o);
  }
  auto pub = copyup::publish_copy(UniqueFd(), false, work_.get(), tmp, dst, name, built);
  if (!pub) {
    (void)copyup::clear_unsynced(unsynced_->get(), tmp);
    return pub;
  }
  auto fd = std::make_shared<UniqueFd>(std::move(*data));
  CopyUpQueue::Job job;
  job.start = [fd] { sys::start_writeback(fd->get()); };
  job.finish = [this, fd, tmp, name](bool synced) {
    auto r = synced ? Status{} : sys::fsync_fd(fd->get(), false);
    fd->reset();
    if (!r) {
      // The record stays: the next mount repairs the copy as after a crash.
      log::error("copy-up of %s: fsync failed: %s", name.c_str(), r.error().message().c_str());
      return;
    }
    auto c = copyup::clear_unsynced(unsynced_->get(), tmp);
    if (!c) log::warning("copy-up of %s: record not removed: %s", name.c_str(), c.error().message().c_str());
  };
  n->unsynced_job.store(copy_up_queue_.push(std::move(job)), std::memory_order_release);
  return {};
}

}  // namespace strata::merge
