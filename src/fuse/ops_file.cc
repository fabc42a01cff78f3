// SPDX-License-Identifier: Apache-2.0
// Regular-file requests: open/create, the data path, and release.
#include <fcntl.h>

#include "daemon.h"
#include "loop.h"
#include "uring.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::fuse {
namespace {

merge::File* file_of(fuse_file_info* fi) { return reinterpret_cast<merge::File*>(fi->fh); }

void set_open_flags(Daemon* d, merge::File* f, fuse_file_info* fi) {
  fi->fh = reinterpret_cast<uint64_t>(f);
  // The page cache may be kept across opens: every change goes through this mount. Names sharing one inode
  // are separate nodes (separate kernel inodes), so for those the cache is dropped at each open.
  // Names of one inode share a node, so the page cache stays coherent across them.
  fi->keep_cache = 1;
  fi->noflush = 1;  // close(2) needs no round trip: flush has nothing to do here
  (void)d;
}

int open_flags(Daemon* d, int flags) {
  if (!d->writeback) return flags;
  // Writeback caching: the kernel may read to fill partial pages and handles O_APPEND itself.
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags & ~O_APPEND;
}

void do_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Daemon* d = daemon_of(req);
  auto f = d->ov->open(node_of(req, ino), open_flags(d, fi->flags));
  if (!f) return reply_error(req, f.error());
  set_open_flags(d, f->get(), fi);
  merge::File* raw = f->release();
  if (fuse_reply_open(req, fi) != 0) delete raw;  // interrupted: the kernel will not release it
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // An open for writing or truncating copies the file up: it is a change, and waits out a pause.
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
    gated(req, "open", [&] { do_open(req, ino, fi); });
  else
    guarded(req, "open", [&] { do_open(req, ino, fi); });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  gated(req, "create", [&] {
    Daemon* d = daemon_of(req);
    const fuse_ctx* c = fuse_req_ctx(req);
    auto r = d->ov->create(node_of(req, parent), name, mode, open_flags(d, fi->flags),
                           merge::Caller{c->uid, c->gid});
    if (!r) return reply_error(req, r.error());
    auto& [entry, file] = *r;
    fuse_entry_param p;
    fill_entry(d, entry, &p);
    fi->fh = reinterpret_cast<uint64_t>(file.get());
    fi->keep_cache = 1;
    fi->noflush = 1;
    d->ov->table().add_lookup(entry.node.get());
    merge::File* raw = file.release();
    if (fuse_reply_create(req, &p, fi) != 0) {
      d->ov->table().forget(entry.node.get(), 1);
      delete raw;
    }
  });
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  guarded(req, "read", [&] {
    if (char* p = uring_reply_buffer(size)) {  // read straight into the ring entry: one copy, as a splice
      size_t got = 0;
      while (got < size) {  // a short reply means end of file to the kernel
        auto n = sys::pread_some(file_of(fi)->fd(), p + got, size - got, off + static_cast<off_t>(got));
        if (!n) return reply_error(req, n.error());
        if (*n == 0) break;
        got += *n;
      }
      fuse_reply_buf(req, p, got);
      return;
    }
    // No worker is left waiting on the device and the stand-in waits for this READ to take long: if the
    // range's last byte is not in the page cache, the splice will wait for the disk, so start it now.
    const off_t last = off + static_cast<off_t>(size) - 1;
    if (stand_in_deferred() && size > 0 && !sys::byte_cached(file_of(fi)->fd(), last)) about_to_block();
    fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    buf.buf[0].fd = file_of(fi)->fd();
    buf.buf[0].pos = off;
    // Spliced, not moved: moving would steal the lower file's page-cache pages (shared by every container
    // on the layer), and on a journaled ext4 each steal frees the page's journal buffers (3x slower reads).
    fuse_reply_data(req, &buf, static_cast<fuse_buf_copy_flags>(0));
  });
}

void op_write_buf(fuse_req_t req, fuse_ino_t, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  gated(req, "write", [&] {
    fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
    out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
    out.buf[0].fd = file_of(fi)->fd();
    out.buf[0].pos = off;
    ssize_t n = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
    if (n < 0) return (void)fuse_reply_err(req, static_cast<int>(-n));
    fuse_reply_write(req, static_cast<size_t>(n));
  });
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  try {
    delete file_of(fi);
  } catch (...) {
    log::error("release: unexpected exception");
  }
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  guarded(req, "fsync", [&] {
    // A copy-up still being fsynced in the background is made durable first, and its crash record dropped.
    daemon_of(req)->ov->settle(file_of(fi)->node());
    auto r = sys::fsync_fd(file_of(fi)->fd(), datasync != 0);
    reply_status(req, r);
  });
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len, fuse_file_info* fi) {
  gated(req, "fallocate", [&] {
    auto r = sys::fallocate_fd(file_of(fi)->fd(), mode, off, len);
    reply_status(req, r);
  });
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  gated(req, "copy_file_range", [&] {
    auto r = sys::copy_range(file_of(fi_in)->fd(), off_in, file_of(fi_out)->fd(), off_out, len,
                             static_cast<unsigned>(flags));
    if (!r) return reply_error(req, r.error());
    fuse_reply_write(req, *r);
  });
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) {
  guarded(req, "lseek", [&] {
    auto r = sys::seek(file_of(fi)->fd(), off, whence);
    if (!r) return reply_error(req, r.error());
    fuse_reply_lseek(req, *r);
  });
}

}  // namespace

void add_file_ops(fuse_lowlevel_ops* ops) {
  ops->open = op_open;
  ops->create = op_create;
  ops->read = op_read;
  ops->write_buf = op_write_buf;
  ops->flush = op_flush;
  ops->release = op_release;
  ops->fsync = op_fsync;
  ops->fallocate = op_fallocate;
  ops->copy_file_range = op_copy_file_range;
  ops->lseek = op_lseek;
}

}  // namespace strata::fuse
