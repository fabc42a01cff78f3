// SPDX-License-Identifier: Apache-2.0
// unlink and rmdir: an upper object is removed; whatever a lower layer has under the name is then hidden by a
// whiteout, put in place atomically (a rename from the work dir) when the upper object was there.
#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

namespace wo = strata::whiteout;

Status Overlay::clear_whiteouts(int dirfd) {
  auto ents = sys::read_dir(dirfd);
  if (!ents) return ents.take_error();
  for (auto& e : *ents) STRATA_TRY(sys::unlink_at(dirfd, e.name.c_str(), 0));
  return {};
}

void Overlay::adjust_nlink(Node* n, int by) {
  std::lock_guard lk(n->mu);
  int d = n->nlink_delta.fetch_add(by) + by;
  if (n->index_name.empty()) return;
  // Best effort: a lost update only skews the link count reported after the next mount.
  (void)sys::set_xattr(index_->get(), n->index_name.c_str(), nlink_xattr_, std::to_string(d), 0);
}

Status Overlay::materialize(Node* n, int upperfd, const std::string& name) {
  std::string idx;
  {
    std::lock_guard lk(n->mu);
    idx = n->index_name;
  }
  if (idx.empty()) return {};
  auto us = upper_state(upperfd, name);
  if (!us) return us.take_error();
  if (us->kind == UpperState::kEntry) return {};
  STRATA_TRY(sys::link_at(index_->get(), idx.c_str(), upperfd, name.c_str()));
  adjust_nlink(n, -1);  // one more link of the same names
  return {};
}

Status Overlay::unlink(Node* parent, const std::string& name) {
  if (!has_upper_) return make_error(EROFS, "unlink", name);
  if (wo::is_reserved_name(name)) return make_error(ENOENT, "unlink", name);
  auto e = find_or_probe(parent, name);
  if (!e) return e.take_error();
  Node* n = e->node.get();
  if (n->is_dir()) return make_error(EISDIR, "unlink", name);
  settle(n);  // a copy-up still being made durable is recorded under this path (copyup/unsynced.h)
  // A lower hard link is copied up first (into the index) so its other names keep an exact link count, as
  // overlayfs with index=on does.
  if (n->top() != 0 && e->st.st_nlink > 1) STRATA_TRY(ensure_upper(n));
  auto lower = lower_has(parent, name);
  if (!lower) return lower.take_error();
  bool indexed;
  {
    std::lock_guard lk(n->mu);
    indexed = !n->index_name.empty();
  }
  if (!indexed) pin(n);
  bool in_upper = false;
  if (parent->top() == 0) {
    auto ufd_r = upper_dir_fd(parent);
    if (!ufd_r) return ufd_r.take_error();
    auto us = upper_state((*ufd_r)->get(), name);
    if (!us) return us.take_error();
    in_upper = us->kind == UpperState::kEntry;
  }
  if (in_upper) {
    auto ufd_r = upper_dir_fd(parent);
    if (!ufd_r) return ufd_r.take_error();
    int ufd = (*ufd_r)->get();
    if (*lower && can_mknod_whiteout_) {
      std::string tmp = tmp_name();
      STRATA_TRY(link_whiteout(work_.get(), tmp.c_str()));
      auto r = sys::rename_at(work_.get(), tmp.c_str(), ufd, name.c_str(), 0);
      if (!r) {
        (void)sys::unlink_at(work_.get(), tmp.c_str(), 0);  // cleaned at next mount otherwise
        return r;
      }
    } else {
      STRATA_TRY(sys::unlink_at(ufd, name.c_str(), 0));
      if (*lower) STRATA_TRY(make_whiteout(ufd, name));
    }
  } else {
    STRATA_TRY(ensure_upper(parent));
    auto ufd_r = upper_dir_fd(parent);
    if (!ufd_r) return ufd_r.take_error();
    STRATA_TRY(make_whiteout((*ufd_r)->get(), name));
    if (indexed) adjust_nlink(n, -1);  // a name went, no link of the copy did
  }
  parent->dir_gen.fetch_add(1, std::memory_order_release);
  table_.detach_child(parent, name).reset();
  return {};
}

Status Overlay::rmdir(Node* parent, const std::string& name) {
  if (!has_upper_) return make_error(EROFS, "rmdir", name);
  if (wo::is_reserved_name(name)) return make_error(ENOENT, "rmdir", name);
  auto e = find_or_probe(parent, name);
  if (!e) return e.take_error();
  Node* n = e->node.get();
  if (!n->is_dir()) return make_error(ENOTDIR, "rmdir", name);
  auto first = merged_entries(n, true);
  if (!first) return first.take_error();
  if (!first->empty()) return make_error(ENOTEMPTY, "rmdir", name);
  auto lower = lower_has(parent, name);
  if (!lower) return lower.take_error();
  if (n->top() == 0) {
    auto ufd_r = upper_dir_fd(parent);
    if (!ufd_r) return ufd_r.take_error();
    int ufd = (*ufd_r)->get();
    int wfd = work_.get();
    std::string tmp = tmp_name();
    if (*lower && can_mknod_whiteout_) {
      // Swap the directory with a fresh whiteout, then delete the directory (only whiteouts left in it).
      STRATA_TRY(link_whiteout(wfd, tmp.c_str()));
      auto r = sys::rename_at(wfd, tmp.c_str(), ufd, name.c_str(), RENAME_EXCHANGE);
      if (!r) {
        (void)sys::unlink_at(wfd, tmp.c_str(), 0);  // cleaned at next mount otherwise
        return r;
      }
    } else {
      auto r = sys::unlink_at(ufd, name.c_str(), AT_REMOVEDIR);
      if (!r) {
        if (r.error().err != ENOTEMPTY && r.error().err != EEXIST) return r;
        STRATA_TRY(sys::rename_at(ufd, name.c_str(), wfd, tmp.c_str(), 0));
      } else {
        tmp.clear();
      }
      if (*lower) STRATA_TRY(make_whiteout(ufd, name));
    }
    if (!tmp.empty()) STRATA_TRY(remove_tree_in_work(tmp));
  } else {
    STRATA_TRY(ensure_upper(parent));
    auto ufd_r = upper_dir_fd(parent);
    if (!ufd_r) return ufd_r.take_error();
    STRATA_TRY(make_whiteout((*ufd_r)->get(), name));
  }
  parent->dir_gen.fetch_add(1, std::memory_order_release);
  table_.detach_child(parent, name).reset();
  return {};
}

}  // namespace strata::merge
