// SPDX-License-Identifier: Apache-2.0
// Directory requests. Readdir needs no handle: offsets are the listing's cookies (overlay.h: Listing), so any
// listing of the directory answers "what comes after offset X". Where the kernel allows it (NO_OPENDIR_SUPPORT),
// opendir answers ENOSYS once and the kernel then sends neither OPENDIR nor RELEASEDIR and caches listings
// itself (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE): two round trips less per directory a walk enters.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "daemon.h"

namespace strata::fuse {
namespace {

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guarded(req, "opendir", [&] {
    Daemon* d = daemon_of(req);
    if (!node_of(req, ino)->is_dir()) return (void)fuse_reply_err(req, ENOTDIR);
    if (d->no_opendir) return (void)fuse_reply_err(req, ENOSYS);
    fi->fh = 0;
    // Let the kernel cache the listing: it drops the cache itself when entries change through the mount.
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
  });
}

// Offsets: 1 is ".", 2 is "..", an entry's is its cookie; a reply holds what comes after `off`.
void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  guarded(req, plus ? "readdirplus" : "readdir", [&] {
    Daemon* d = daemon_of(req);
    merge::Node* dir = node_of(req, ino);
    auto ls = d->ov->listing(dir);
    if (!ls) return reply_error(req, ls.error());
    const merge::Listing& l = **ls;
    if (off == 0) dir->read_gen.store(l.gen + 1, std::memory_order_relaxed);
    const auto& ents = l.entries;
    size_t first = 0;
    if (off >= 2) {
      first = static_cast<size_t>(
          std::upper_bound(ents.begin(), ents.end(), static_cast<uint64_t>(off),
                           [](uint64_t o, const merge::DirEntry& e) { return o < e.cookie; }) -
          ents.begin());
    }
    std::unique_ptr<char[]> buf(new char[size]);  // not zeroed: only `used` bytes go out
    size_t used = 0;
    // Lean replies leave out the attributes of non-directories (see plus_policy.h).
    const bool full = plus && d->plus.full_reply();
    bool left_out = false;
    // Lookup counts taken for entries that made it into the buffer; returned if the reply fails.
    std::vector<merge::NodeRef> taken;
    // A listing read from its start: its subdirectories are worth prefetching (prefetch.h).
    const bool prefetch = plus && off == 0 && d->prefetch && d->prefetch->wanted();
    std::vector<merge::NodeRef> subdirs;
    // Where the current run of equal cookies began: a reply never ends inside one (the next would skip the rest).
    size_t run_used = 0, run_taken = 0;
    auto emit = [&](const char* name, struct stat& st, merge::Entry* e, off_t next) -> size_t {
      size_t rem = size - used;
      if (!plus) return fuse_add_direntry(req, buf.get() + used, rem, name, &st, next);
      fuse_entry_param p{};
      if (e && e->node) {
        fill_entry(d, *e, &p);
      } else {
        p.attr = st;
        left_out = true;
      }
      return fuse_add_direntry_plus(req, buf.get() + used, rem, name, &p, next);
    };
    for (off_t dot = std::max<off_t>(off, 0); dot < 2; ++dot) {
      struct stat st {};
      st.st_ino = dir->ino;
      st.st_mode = S_IFDIR;
      size_t need = emit(dot == 0 ? "." : "..", st, nullptr, dot + 1);
      if (need > size - used) return (void)fuse_reply_buf(req, buf.get(), used);
      used += need;
    }
    size_t i = first;
    for (; i < ents.size(); ++i) {
      const auto& de = ents[i];
      if (i == first || de.cookie != ents[i - 1].cookie) run_used = used, run_taken = taken.size();
      struct stat st {};
      st.st_ino = de.ino;
      st.st_mode = static_cast<mode_t>(DTTOIF(de.type));
      merge::Entry e;
      if (plus && (full || de.type == DT_DIR)) {
        auto r = d->ov->lookup_listed(dir, l, i);
        if (r) e = std::move(*r);  // gone since the listing was taken: list it without attributes
      }
      size_t need = emit(de.name.c_str(), st, &e, static_cast<off_t>(de.cookie));
      if (need > size - used) {
        if (i != first && de.cookie == ents[i - 1].cookie && run_used > 0) {
          used = run_used;
          while (taken.size() > run_taken) {
            d->ov->table().forget(taken.back().get(), 1);
            taken.pop_back();
          }
        }
        break;
      }
      if (e.node) {
        d->ov->table().add_lookup(e.node.get());
        if (prefetch && de.type == DT_DIR) subdirs.push_back(d->ov->table().ref(e.node.get()));
        taken.push_back(std::move(e.node));
      }
      used += need;
    }
    if (plus) dir->lean_listed.store(left_out && !full, std::memory_order_relaxed);
    // An empty reply is the end: this reader is done with the listing (the kernel caches what it read).
    if (used == 0) d->ov->drop_listing(dir);
    const pid_t caller = fuse_req_ctx(req)->pid;  // the reply frees req
    if (fuse_reply_buf(req, buf.get(), used) != 0) {
      for (auto& n : taken) d->ov->table().forget(n.get(), 1);
    } else if (!subdirs.empty()) {
      d->prefetch->push(std::move(subdirs), caller);
    }
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  guarded(req, "fsyncdir", [&] {
    auto r = daemon_of(req)->ov->fsyncdir(node_of(req, ino), datasync != 0);
    reply_status(req, r);
  });
}

}  // namespace

void add_dir_ops(fuse_lowlevel_ops* ops) {
  ops->opendir = op_opendir;
  ops->readdir = op_readdir;
  ops->readdirplus = op_readdirplus;
  ops->releasedir = op_releasedir;
  ops->fsyncdir = op_fsyncdir;
}

}  // namespace strata::fuse
