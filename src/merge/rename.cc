// SPDX-License-Identifier: Apache-2.0
// rename: the rules of overlayfs's ovl_rename with redirect_dir=off. Directories that have lower parts cannot be
// moved (EXDEV: tools fall back to copy + delete); everything else is copied up and renamed in the upper, with
// a whiteout left where a lower entry would otherwise show through.
#include <fcntl.h>

#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

namespace wo = strata::whiteout;

namespace {

bool movable(Node* n) {
  if (!n->is_dir()) return true;
  std::lock_guard lk(n->mu);
  return n->top() == 0 && n->layers.size() == 1;  // exists only in the upper (possibly opaque)
}

bool merged_dir(Node* d) {
  std::lock_guard lk(d->mu);
  return d->layers.size() > 1 && d->layers[0] == 0;
}

bool opaque(Node* d) {
  std::lock_guard lk(d->mu);
  return d->opaque_upper;
}

}  // namespace

Status Overlay::rename(Node* p1, const std::string& n1, Node* p2, const std::string& n2, unsigned flags) {
  if (!has_upper_) return make_error(EROFS, "rename", n1);
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return make_error(EINVAL, "rename", n1);
  if (wo::is_reserved_name(n1)) return make_error(ENOENT, "rename", n1);
  if (wo::is_reserved_name(n2)) return make_error(EINVAL, "rename", n2 + ": reserved for whiteouts");
  if (n2.size() > 255) return make_error(ENAMETOOLONG, "rename", n2);
  bool exchange = flags & RENAME_EXCHANGE;

  auto src_r = find_or_probe(p1, n1);
  if (!src_r) return src_r.take_error();
  Node* src = src_r->node.get();
  auto tgt_r = find_or_probe(p2, n2);
  if (!tgt_r && tgt_r.error().err != ENOENT) return tgt_r.take_error();
  Node* tgt = tgt_r ? tgt_r->node.get() : nullptr;

  if (exchange && !tgt) return make_error(ENOENT, "rename", n2);
  if ((flags & RENAME_NOREPLACE) && tgt) return make_error(EEXIST, "rename", n2);
  if (tgt == src) return {};
  // A copy-up still being made durable is recorded under its path (copyup/unsynced.h): let it finish first.
  settle(src);
  if (tgt) settle(tgt);
  // overlayfs refuses to move a directory with lower parts before it looks at the target.
  if (!movable(src) || (exchange && !movable(tgt))) return make_error(EXDEV, "rename", n1);
  if (tgt && !exchange) {
    if (src->is_dir() && !tgt->is_dir()) return make_error(ENOTDIR, "rename", n2);
    if (!src->is_dir() && tgt->is_dir()) return make_error(EISDIR, "rename", n2);
    // Two names of one inode: rename(2) does nothing and succeeds.
    if (!src->is_dir() && src_r->st.st_ino == tgt_r->st.st_ino && src_r->st.st_dev == tgt_r->st.st_dev &&
        src_r->st.st_nlink > 1)
      return {};
    if (tgt->is_dir()) {
      auto first = merged_entries(tgt, true);
      if (!first) return first.take_error();
      if (!first->empty()) return make_error(ENOTEMPTY, "rename", n2);
    }
  }
  STRATA_TRY(ensure_upper(src));
  STRATA_TRY(ensure_upper(p1));
  STRATA_TRY(ensure_upper(p2));
  // A hard link about to lose a name is copied up (into the index) first, for exact link counts.
  if (tgt && (exchange || (!tgt->is_dir() && tgt_r->st.st_nlink > 1))) STRATA_TRY(ensure_upper(tgt));
  auto u1 = upper_dir_fd(p1);
  if (!u1) return u1.take_error();
  auto u2 = upper_dir_fd(p2);
  if (!u2) return u2.take_error();
  int ufd1 = (*u1)->get(), ufd2 = (*u2)->get();
  // A copied-up hard link's other names may exist in a lower layer only: give the name to move a real link.
  if (!src->is_dir()) STRATA_TRY(materialize(src, ufd1, n1));
  if (exchange && !tgt->is_dir()) STRATA_TRY(materialize(tgt, ufd2, n2));

  // A directory moving into a directory with lower parts must not merge with whatever lies below its new name.
  auto mark_opaque = [&](Node* dir, int dfd, const std::string& nm, Node* new_parent) -> Status {
    if (!dir || !dir->is_dir() || opaque(dir) || !merged_dir(new_parent)) return {};
    STRATA_TRY(sys::set_xattr(dfd, nm.c_str(), opaque_xattr_, "y", 0));
    std::lock_guard lk(dir->mu);
    dir->opaque_upper = true;
    return {};
  };

  if (exchange) {
    STRATA_TRY(mark_opaque(src, ufd1, n1, p2));
    STRATA_TRY(mark_opaque(tgt, ufd2, n2, p1));
    STRATA_TRY(sys::rename_at(ufd1, n1.c_str(), ufd2, n2.c_str(), RENAME_EXCHANGE));
    p1->dir_gen.fetch_add(1, std::memory_order_release);
    p2->dir_gen.fetch_add(1, std::memory_order_release);
    table_.exchange_children(p1, n1, p2, n2);
    return {};
  }

  auto src_lower = lower_has(p1, n1);
  if (!src_lower) return src_lower.take_error();
  auto us = upper_state(ufd2, n2);
  if (!us) return us.take_error();

  if (tgt && tgt->is_dir() && tgt->top() == 0) {
    // The target is empty in the merged view: its upper directory holds only whiteouts. Clear them so the
    // real rename can replace it.
    auto fd = sys::open_at(ufd2, n2.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.take_error();
    STRATA_TRY(clear_whiteouts(fd->get()));
  }
  STRATA_TRY(mark_opaque(src, ufd1, n1, p2));
  if (tgt && !tgt->is_dir()) pin(tgt);

  bool whiteout_at_target = us->kind == UpperState::kWhiteout;
  unsigned rflags = 0;
  bool cleanup_whiteout = false;
  bool need_manual_whiteout = false;
  if (*src_lower) {
    if (whiteout_at_target && can_mknod_whiteout_)
      rflags = RENAME_EXCHANGE;  // the whiteout moves to the source name: exactly what is needed there
    else if (can_mknod_whiteout_)
      rflags = RENAME_WHITEOUT;
    else
      need_manual_whiteout = true;
  } else if (src->is_dir() && whiteout_at_target) {
    rflags = RENAME_EXCHANGE;  // a directory cannot replace a device node
    cleanup_whiteout = true;
  } else if (us->kind == UpperState::kNone) {
    rflags = RENAME_NOREPLACE;
  }
  auto r = sys::rename_at(ufd1, n1.c_str(), ufd2, n2.c_str(), rflags);
  if (!r && rflags == RENAME_WHITEOUT && (r.error().err == EINVAL || r.error().err == EPERM)) {
    r = sys::rename_at(ufd1, n1.c_str(), ufd2, n2.c_str(), 0);
    need_manual_whiteout = true;
  }
  if (!r) return r;
  if (tgt && !tgt->is_dir() && us->kind != UpperState::kEntry) {
    // The target lost a name that was not a link of its upper copy (a lower-only alias).
    bool indexed;
    {
      std::lock_guard lk(tgt->mu);
      indexed = !tgt->index_name.empty();
    }
    if (indexed) adjust_nlink(tgt, -1);
  }
  if (cleanup_whiteout) (void)sys::unlink_at(ufd1, n1.c_str(), 0);  // a stray whiteout hides nothing
  if (need_manual_whiteout) STRATA_TRY(make_whiteout(ufd1, n1));
  if (us->kind == UpperState::kWhiteoutFile) STRATA_TRY(sys::unlink_at(ufd2, wo::whiteout_name(n2).c_str(), 0));
  p1->dir_gen.fetch_add(1, std::memory_order_release);
  p2->dir_gen.fetch_add(1, std::memory_order_release);
  table_.move_child(p1, n1, p2, n2).reset();
  return {};
}

}  // namespace strata::merge
