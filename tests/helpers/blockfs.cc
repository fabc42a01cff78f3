// SPDX-License-Identifier: Apache-2.0
// blockfs: a FUSE file system for tests whose reads wait. The root holds one regular file, "f" (1 MiB);
// every READ of it blocks until the file RELEASE_PATH exists, then returns zeros. Used as a lower layer of
// stratafs to hold its workers in reads that wait for "the disk".
//
// Usage: blockfs MOUNTPOINT RELEASE_PATH   (stays in the foreground; ends on unmount or SIGTERM)
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char* release_path;
constexpr off_t kSize = 1 << 20;

int attr_of(fuse_ino_t ino, struct stat* st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else if (ino == 2) {
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_size = kSize;
  } else {
    return ENOENT;
  }
  return 0;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  e.ino = 2;
  attr_of(2, &e.attr);
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  (void)fi;
  struct stat st;
  int err = attr_of(ino, &st);
  if (err) fuse_reply_err(req, err);
  else fuse_reply_attr(req, &st, 0);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)fi;
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  char buf[512];
  size_t used = 0;
  const char* names[] = {".", "..", "f"};
  for (off_t i = off; i < 3; ++i) {
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = i == 2 ? 2 : FUSE_ROOT_ID;
    st.st_mode = i == 2 ? S_IFREG : S_IFDIR;
    size_t need = fuse_add_direntry(req, buf + used, sizeof buf - used, names[i], &st, i + 1);
    // (fuse_add_direntry writes nothing when the entry does not fit)
    if (used + need > size || used + need > sizeof buf) break;
    used += need;
  }
  fuse_reply_buf(req, buf, used);
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  if (ino != 2) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  fi->direct_io = 1;  // every read reaches op_read: nothing is served from a cache
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)ino;
  (void)fi;
  while (access(release_path, F_OK) != 0) usleep(10 * 1000);
  if (off >= kSize) {
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  if (static_cast<off_t>(size) > kSize - off) size = static_cast<size_t>(kSize - off);
  std::vector<char> zeros(size);
  fuse_reply_buf(req, zeros.data(), size);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: blockfs MOUNTPOINT RELEASE_PATH\n");
    return 2;
  }
  release_path = argv[2];
  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.open = op_open;
  ops.read = op_read;
  std::string a0 = argv[0], o = "-o", opts = "fsname=blockfs,allow_other";
  char* args_v[] = {a0.data(), o.data(), opts.data(), nullptr};
  struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
  struct fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (!se) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, argv[1]) == 0) {
      struct fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, 64);
      fuse_loop_cfg_set_idle_threads(cfg, 64);
      rc = fuse_session_loop_mt(se, cfg) != 0;
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return rc;
}
