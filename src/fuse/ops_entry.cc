// SPDX-License-Identifier: Apache-2.0
// Namespace requests: lookup, forget, attributes, and everything that adds or removes a name.
#include <sys/stat.h>

#include "daemon.h"
#include "strata/sys/fs.h"

namespace strata::fuse {

void fill_entry(Daemon* d, const merge::Entry& e, fuse_entry_param* out) {
  *out = {};
  out->ino = nodeid(d, e.node.get());
  out->attr = e.st;
  out->entry_timeout = d->timeout;
  out->attr_timeout = d->timeout;
}

void reply_entry(fuse_req_t req, merge::Entry& e) {
  Daemon* d = daemon_of(req);
  fuse_entry_param p;
  fill_entry(d, e, &p);
  d->ov->table().add_lookup(e.node.get());
  if (fuse_reply_entry(req, &p) != 0) d->ov->table().forget(e.node.get(), 1);
}

namespace {

void reply_attr(fuse_req_t req, const struct stat& st) {
  fuse_reply_attr(req, &st, daemon_of(req)->timeout);
}

merge::Caller caller(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return merge::Caller{c->uid, c->gid};
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, "lookup", [&] {
    Daemon* d = daemon_of(req);
    merge::Node* dir = node_of(req, parent);
    auto e = d->ov->lookup(dir, name);
    if (e) {
      if (!e->node->is_dir() && dir->lean_listed.load(std::memory_order_relaxed)) d->plus.missed();
      return reply_entry(req, *e);
    }
    if (e.error().err == ENOENT) {
      // Negative entry, cached by the kernel: the engine sees every creation, so it can be trusted.
      fuse_entry_param p{};
      p.entry_timeout = d->timeout;
      fuse_reply_entry(req, &p);
      return;
    }
    reply_error(req, e.error());
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  try {
    daemon_of(req)->ov->table().forget(node_of(req, ino), nlookup);
  } catch (...) {
    log::error("forget: unexpected exception");
  }
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  try {
    auto& t = daemon_of(req)->ov->table();
    for (size_t i = 0; i < count; ++i) t.forget(node_of(req, forgets[i].ino), forgets[i].nlookup);
  } catch (...) {
    log::error("forget: unexpected exception");
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guarded(req, "getattr", [&] {
    Daemon* d = daemon_of(req);
    merge::Node* n = node_of(req, ino);
    Result<struct stat> st = make_error(EBADF, "getattr");
    if (fi && !n->is_dir()) {
      auto* f = reinterpret_cast<merge::File*>(fi->fh);
      auto s = sys::stat_fd(f->fd());
      if (s) {
        st = d->ov->fix_stat(n, *s);
      } else {
        st = d->ov->getattr(n);
      }
    } else {
      st = d->ov->getattr(n);
    }
    if (!st) return reply_error(req, st.error());
    reply_attr(req, *st);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  gated(req, "setattr", [&] {
    merge::SetAttr a;
    if (to_set & FUSE_SET_ATTR_MODE) a.valid |= merge::SetAttr::kMode, a.mode = attr->st_mode;
    if (to_set & FUSE_SET_ATTR_UID) a.valid |= merge::SetAttr::kUid, a.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) a.valid |= merge::SetAttr::kGid, a.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) a.valid |= merge::SetAttr::kSize, a.size = attr->st_size;
    if (to_set & FUSE_SET_ATTR_ATIME) {
      a.valid |= merge::SetAttr::kAtime;
      a.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? timespec{0, UTIME_NOW} : attr->st_atim;
    }
    if (to_set & FUSE_SET_ATTR_MTIME) {
      a.valid |= merge::SetAttr::kMtime;
      a.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? timespec{0, UTIME_NOW} : attr->st_mtim;
    }
    if (fi && !node_of(req, ino)->is_dir()) a.file = reinterpret_cast<merge::File*>(fi->fh);
    if (a.valid == 0) {
      // ctime-only updates (e.g. KILL_SUID without a mode change) need no work: report current attributes.
      auto st = daemon_of(req)->ov->getattr(node_of(req, ino));
      if (!st) return reply_error(req, st.error());
      return reply_attr(req, *st);
    }
    auto st = daemon_of(req)->ov->setattr(node_of(req, ino), a);
    if (!st) return reply_error(req, st.error());
    reply_attr(req, *st);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guarded(req, "readlink", [&] {
    auto t = daemon_of(req)->ov->readlink(node_of(req, ino));
    if (!t) return reply_error(req, t.error());
    fuse_reply_readlink(req, t->c_str());
  });
}

template <typename F>
void create_like(fuse_req_t req, const char* op, F&& f) {
  gated(req, op, [&] {
    Result<merge::Entry> e = f(daemon_of(req)->ov);
    if (!e) return reply_error(req, e.error());
    reply_entry(req, *e);
  });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  create_like(req, "mknod", [&](merge::Overlay* ov) {
    return ov->mknod(node_of(req, parent), name, mode, rdev, caller(req));
  });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  create_like(req, "mkdir",
              [&](merge::Overlay* ov) { return ov->mkdir(node_of(req, parent), name, mode, caller(req)); });
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  create_like(req, "symlink",
              [&](merge::Overlay* ov) { return ov->symlink(node_of(req, parent), name, link, caller(req)); });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  create_like(req, "link", [&](merge::Overlay* ov) {
    return ov->link(node_of(req, ino), node_of(req, newparent), newname);
  });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  gated(req, "unlink", [&] {
    auto r = daemon_of(req)->ov->unlink(node_of(req, parent), name);
    reply_status(req, r);
  });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  gated(req, "rmdir", [&] {
    auto r = daemon_of(req)->ov->rmdir(node_of(req, parent), name);
    reply_status(req, r);
  });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  gated(req, "rename", [&] {
    auto r = daemon_of(req)->ov->rename(node_of(req, parent), name, node_of(req, newparent), newname, flags);
    reply_status(req, r);
  });
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  guarded(req, "statfs", [&] {
    auto s = daemon_of(req)->ov->statfs();
    if (!s) return reply_error(req, s.error());
    fuse_reply_statfs(req, &*s);
  });
}

}  // namespace

void add_entry_ops(fuse_lowlevel_ops* ops) {
  ops->lookup = op_lookup;
  ops->forget = op_forget;
  ops->forget_multi = op_forget_multi;
  ops->getattr = op_getattr;
  ops->setattr = op_setattr;
  ops->readlink = op_readlink;
  ops->mknod = op_mknod;
  ops->mkdir = op_mkdir;
  ops->symlink = op_symlink;
  ops->link = op_link;
  ops->unlink = op_unlink;
  ops->rmdir = op_rmdir;
  ops->rename = op_rename;
  ops->statfs = op_statfs;
}

}  // namespace strata::fuse
