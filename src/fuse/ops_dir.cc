// SPDX-License-Identifier: Apache-2.0
// Directory handles: the merged listing is snapshotted at opendir, so offsets are stable for the handle.
#include <dirent.h>
#include <sys/stat.h>

#include <vector>

#include "daemon.h"

namespace strata::fuse {
namespace {

merge::DirList* dir_of(fuse_file_info* fi) { return reinterpret_cast<merge::DirList*>(fi->fh); }

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guarded(req, "opendir", [&] {
    auto d = daemon_of(req)->ov->opendir(node_of(req, ino));
    if (!d) return reply_error(req, d.error());
    fi->fh = reinterpret_cast<uint64_t>(d->get());
    // Let the kernel cache the listing: it drops the cache itself when entries change through the mount.
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    merge::DirList* raw = d->release();
    if (fuse_reply_open(req, fi) != 0) delete raw;
  });
}

// Offsets: 1 is ".", 2 is "..", 3 + i is entries[i].
void do_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  guarded(req, plus ? "readdirplus" : "readdir", [&] {
    Daemon* d = daemon_of(req);
    merge::DirList* dl = dir_of(fi);
    merge::Node* dir = dl->node.get();
    // Offset 0 is a first read or a rewind: (re)take the listing.
    if (off == 0 || !dl->loaded) {
      auto r = d->ov->refresh(dl);
      if (!r) return reply_error(req, r.error());
    }
    std::vector<char> buf(size);
    size_t used = 0;
    // Lookup counts taken for entries that made it into the buffer; returned if the reply fails.
    std::vector<merge::NodeRef> taken;
    for (off_t i = off; i < static_cast<off_t>(dl->entries.size()) + 2; ++i) {
      struct stat st {};
      const char* name;
      merge::Entry e;
      if (i < 2) {
        name = i == 0 ? "." : "..";
        st.st_ino = dir->ino;
        st.st_mode = S_IFDIR;
      } else {
        const auto& de = dl->entries[static_cast<size_t>(i - 2)];
        name = de.name.c_str();
        st.st_ino = de.ino;
        st.st_mode = static_cast<mode_t>(DTTOIF(de.type));
        if (plus) {
          auto r = d->ov->lookup_listed(dl, static_cast<size_t>(i - 2));
          if (r) e = std::move(*r);  // gone since opendir: list it without attributes
        }
      }
      size_t rem = size - used;
      size_t need;
      if (plus) {
        fuse_entry_param p{};
        if (e.node) {
          fill_entry(d, e, &p);
        } else {
          p.attr = st;
        }
        need = fuse_add_direntry_plus(req, buf.data() + used, rem, name, &p, i + 1);
        if (need > rem) break;
        if (e.node) {
          d->ov->table().add_lookup(e.node.get());
          taken.push_back(std::move(e.node));
        }
      } else {
        need = fuse_add_direntry(req, buf.data() + used, rem, name, &st, i + 1);
        if (need > rem) break;
      }
      used += need;
    }
    if (fuse_reply_buf(req, buf.data(), used) != 0)
      for (auto& n : taken) d->ov->table().forget(n.get(), 1);
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, 0, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  do_readdir(req, 0, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  try {
    delete dir_of(fi);
  } catch (...) {
    log::error("releasedir: unexpected exception");
  }
  fuse_reply_err(req, 0);
}

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
