// SPDX-License-Identifier: Apache-2.0
// Copy-up orchestration: parents first, one node at a time under its own lock.
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

}  // namespace strata::merge
