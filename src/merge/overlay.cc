// SPDX-License-Identifier: Apache-2.0
// Overlay: setup, layer fds, locating nodes, File.
#include "strata/merge/overlay.h"

#include <unistd.h>

#include <set>

#include "strata/base/log.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/identity.h"
#include "strata/sys/process.h"
#include "strata/sys/socket_io.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

File::File(Overlay* ov, NodeRef node, UniqueFd fd, bool upper, int flags)
    : ov_(ov), node_(std::move(node)), first_(std::move(fd)), cur_(first_.get()), upper_open_(upper),
      flags_(flags) {
  node_->open_files.fetch_add(1, std::memory_order_relaxed);
}

File::~File() { node_->open_files.fetch_sub(1, std::memory_order_relaxed); }

int File::fd() {
  if (upper_open_.load(std::memory_order_acquire) || node_->top() != 0) return cur_.load();
  // The node was copied up after this read-only open: switch to the upper copy, as overlayfs does. The old fd
  // stays open until release, so a read already using it is not disturbed.
  std::lock_guard lk(mu_);
  if (!upper_open_.load()) {
    upper_open_ = true;  // one attempt: on failure keep reading the lower copy, which is still intact
    auto loc = ov_->locate(node_.get());
    if (loc) {
      auto fd = sys::open_at(loc->dir->get(), loc->name.c_str(), O_RDONLY | (flags_ & O_NONBLOCK));
      if (fd) {
        upper_ = std::move(*fd);
        cur_ = upper_.get();
      }
    }
  }
  return cur_.load();
}

Result<std::unique_ptr<Overlay>> Overlay::open(const OverlayOptions& opts) {
  if (opts.lowerdirs.empty()) return make_error(EINVAL, "mount", "lowerdir is required");
  if (!opts.upperdir.empty() && opts.workdir.empty())
    return make_error(EINVAL, "mount", "workdir is required with upperdir");
  std::vector<Layer> layers;
  auto add = [&](const std::string& path) -> Status {
    auto fd = sys::open_path(path.c_str(), O_PATH | O_DIRECTORY);
    if (!fd) return make_error(fd.error().err, "open layer", path);
    auto st = sys::stat_at(fd->get(), "");
    if (!st) return make_error(st.error().err, "stat layer", path);
    Layer l;
    l.dev = st->st_dev;
    l.path = path;
    l.root_shared = std::make_shared<const UniqueFd>(std::move(*fd));
    layers.push_back(std::move(l));
    return {};
  };
  if (!opts.upperdir.empty()) STRATA_TRY(add(opts.upperdir));
  for (const auto& l : opts.lowerdirs) STRATA_TRY(add(l));

  UniqueFd work;
  SharedFd index, unsynced;
  if (!opts.upperdir.empty()) {
    auto wfd = sys::open_path(opts.workdir.c_str(), O_PATH | O_DIRECTORY);
    if (!wfd) return make_error(wfd.error().err, "open workdir", opts.workdir);
    auto wst = sys::stat_at(wfd->get(), "");
    if (!wst) return make_error(wst.error().err, "stat workdir", opts.workdir);
    if (wst->st_dev != layers[0].dev)
      return make_error(EXDEV, "mount", "workdir " + opts.workdir + " is not on the filesystem of upperdir");
    auto m = sys::mkdir_at(wfd->get(), "work", 0700);
    if (!m && m.error().err != EEXIST) return make_error(m.error().err, "create", opts.workdir + "/work");
    auto w = sys::open_at(wfd->get(), "work", O_PATH | O_DIRECTORY);
    if (!w) return make_error(w.error().err, "open", opts.workdir + "/work");
    work = std::move(*w);
    auto mi = sys::mkdir_at(wfd->get(), "strata-index", 0700);
    if (!mi && mi.error().err != EEXIST) return make_error(mi.error().err, "create", opts.workdir + "/strata-index");
    auto ix = sys::open_at(wfd->get(), "strata-index", O_PATH | O_DIRECTORY);
    if (!ix) return make_error(ix.error().err, "open", opts.workdir + "/strata-index");
    index = std::make_shared<const UniqueFd>(std::move(*ix));
    auto mu = sys::mkdir_at(wfd->get(), copyup::kUnsyncedDir, 0700);
    if (!mu && mu.error().err != EEXIST)
      return make_error(mu.error().err, "create", opts.workdir + "/" + copyup::kUnsyncedDir);
    auto un = sys::open_at(wfd->get(), copyup::kUnsyncedDir, O_PATH | O_DIRECTORY);
    if (!un) return make_error(un.error().err, "open", opts.workdir + "/" + copyup::kUnsyncedDir);
    unsynced = std::make_shared<const UniqueFd>(std::move(*un));
  }

  auto rst = sys::stat_at(layers[0].root_shared->get(), "");
  if (!rst) return rst.take_error();
  auto root = std::make_unique<Node>(nullptr, "", S_IFDIR, rst->st_ino, 0);
  for (size_t i = 0; i < layers.size(); ++i) {
    root->layers.push_back(static_cast<int>(i));
    root->layer_flags.push_back(0);
    root->fds.push_back(layers[i].root_shared);
  }
  // A layer root marked overlay.opaque=x may hold xattr whiteouts (opacity itself means nothing at the root).
  for (size_t i = 0; i < layers.size(); ++i) {
    for (const char* x : {whiteout::kTrustedOpaque, whiteout::kUserOpaque}) {
      auto v = sys::get_xattr(layers[i].root_shared->get(), "", x);
      if (v && whiteout::parse_opaque(*v) == whiteout::OpaqueValue::kHasXattrWhiteouts)
        root->layer_flags[i] = kXattrWhiteouts;
    }
  }
  std::unique_ptr<Overlay> ov(new Overlay(std::move(root), opts.fd_cache_fds));
  ov->layers_ = std::move(layers);
  ov->has_upper_ = !opts.upperdir.empty();
  ov->fsync_ = opts.fsync;
  ov->work_ = std::move(work);
  ov->index_ = std::move(index);
  std::vector<dev_t> devs;
  for (auto& l : ov->layers_) {
    size_t i = 0;
    while (i < devs.size() && devs[i] != l.dev) ++i;
    if (i == devs.size()) devs.push_back(l.dev);
    ov->dev_index_.push_back(static_cast<int>(i));
  }
  ov->single_dev_ = devs.size() == 1;
  if (ov->has_upper_) {
    // Leftovers of a crash are copy-up temporaries and removed directories: never part of the view.
    auto ents = sys::read_dir(ov->work_.get());
    if (ents)
      for (auto& e : *ents) STRATA_TRY(ov->remove_tree_in_work(e.name));
    // Copy-ups a crash may have left without their data (copyup/unsynced.h).
    ov->unsynced_ = std::move(unsynced);
    // The crash record must reach the disk before the rename it covers (copyup/unsynced.h).
    ov->background_fsync_ = opts.background_fsync.value_or(sys::orders_metadata(ov->layers_[0].root_shared->get()));
    if (ov->background_fsync_) {
      // Many copy-ups at once (chmod -R of a lower tree): one syncfs for the batch (copy_up_queue.h).
      auto fd = sys::reopen(ov->layers_[0].root_shared->get(), O_RDONLY | O_DIRECTORY);
      if (fd) {
        auto shared = std::make_shared<const UniqueFd>(std::move(*fd));
        ov->copy_up_queue_.set_batch_sync(kSyncfsBatch, [shared] { return sys::sync_fs(shared->get()).has_value(); });
      }
    }
    ov->boot_id_ = sys::boot_id();
    std::vector<int> lowers;
    for (size_t i = 1; i < ov->layers_.size(); ++i) lowers.push_back(ov->layers_[i].root_shared->get());
    auto rec = copyup::recover_unsynced(ov->unsynced_->get(), ov->layers_[0].root_shared->get(), lowers,
                                        ov->boot_id_);
    if (!rec)
      return make_error(rec.error().err, "repair copy-ups cut short by a crash",
                        opts.workdir + "/" + copyup::kUnsyncedDir + ": " + rec.error().message());
    for (const auto& m : rec->messages) log::warning("%s", m.c_str());
    ov->recovery_ = std::move(*rec);
    // Whiteouts are 0/0 devices where mknod is allowed (as the kernel writes them), else `.wh.` files. Like the
    // kernel, link them all to one shared device inode: allocating an inode per whiteout dominated `rm -rf`
    // of a lower tree (ext4's inode allocator, measured with perf).
    // Since Linux 5.8 mknod of a 0/0 device needs no privilege, so unprivileged daemons and user namespaces
    // write the kernel's form too; `.wh.` files remain for filesystems (and older kernels) that refuse it.
    ov->can_mknod_whiteout_ = false;
    if (opts.device_whiteouts) {
      auto mk = sys::mknod_at(ov->work_.get(), kSharedWhiteout, S_IFCHR | 0, 0);
      ov->can_mknod_whiteout_ = mk.has_value();
    }
    // trusted.* needs CAP_SYS_ADMIN in the initial user namespace: root inside `unshare -Ur` is refused like
    // any user. Ask the upper's filesystem rather than guess from the euid.
    if (!sys::set_xattr(ov->work_.get(), "", "trusted.strata.probe", "1", 0)) {
      ov->opaque_xattr_ = whiteout::kUserOpaque;
      ov->userxattr_ = true;
      ov->nlink_xattr_ = "user.strata.nlink";
    } else {
      (void)sys::remove_xattr(ov->work_.get(), "", "trusted.strata.probe");  // harmless if left: hidden, private
    }
  } else if (geteuid() != 0 || !sys::in_initial_userns()) {
    ov->opaque_xattr_ = whiteout::kUserOpaque;  // read-only: decides which overlay.* names the view hides
    ov->userxattr_ = true;
  }
  ov->ids_ = opts.ids;
  if (opts.xattr_permissions == 1) ov->override_xattr_ = kOverrideStatPrivileged;
  if (opts.xattr_permissions == 2) ov->override_xattr_ = kOverrideStatUser;
  if (ov->override_xattr_ && ov->has_upper_) STRATA_TRY(ov->set_override_marker());
  return ov;
}

Overlay::~Overlay() = default;

std::string Overlay::tmp_name() {
  return "#strata." + std::to_string(getpid()) + "." + std::to_string(tmp_seq_.fetch_add(1));
}

ino_t Overlay::map_ino(int layer, const struct stat& st) const {
  if (single_dev_) return st.st_ino;
  // Layers on several filesystems: keep numbers apart the way overlayfs's xino does, with the high bits.
  return st.st_ino ^ (static_cast<ino_t>(dev_index_[static_cast<size_t>(layer)]) << 56);
}

struct stat Overlay::fix_stat(Node* n, struct stat st) {
  st.st_ino = n->ino;
  if (override_xattr_ || !ids_.identity()) view_owner(n, &st);
  if (!n->is_dir()) {
    int d = n->nlink_delta.load(std::memory_order_relaxed);
    if (d != 0 && static_cast<long>(st.st_nlink) + d >= 0) st.st_nlink = static_cast<nlink_t>(st.st_nlink + d);
  } else {
    std::lock_guard lk(n->mu);
    // Counting subdirectories across layers is not worth it; overlayfs reports 1 and find copes.
    if (n->layers.size() > 1) st.st_nlink = 1;
  }
  return st;
}

void Overlay::snapshot_layers(Node* dir, std::vector<int>* layers, std::vector<uint8_t>* flags) {
  std::lock_guard lk(dir->mu);
  *layers = dir->layers;
  if (flags) *flags = dir->layer_flags;
}

Result<SharedFd> Overlay::dir_fd_layer(Node* dir, int layer) {
  {
    std::lock_guard lk(dir->mu);
    for (size_t i = 0; i < dir->layers.size(); ++i) {
      if (dir->layers[i] != layer) continue;
      if (dir->fds[i]) {
        FdCache::touch(dir);
        return dir->fds[i];
      }
      break;
    }
  }
  if (dir == root()) return layers_[static_cast<size_t>(layer)].root_shared;
  auto place = table_.place(dir);
  if (!place.parent) return make_error(ENOENT, "directory removed");
  auto pfd = dir_fd_layer(place.parent.get(), layer);
  if (!pfd) return pfd.take_error();
  auto fd = sys::open_at((*pfd)->get(), place.name.c_str(), O_PATH | O_DIRECTORY);
  if (!fd) return fd.take_error();
  auto shared = std::make_shared<const UniqueFd>(std::move(*fd));
  bool stored = false;
  {
    std::lock_guard lk(dir->mu);
    for (size_t i = 0; i < dir->layers.size(); ++i) {
      if (dir->layers[i] != layer) continue;
      if (!dir->fds[i]) {
        dir->fds[i] = shared;
        stored = true;
      } else {
        shared = dir->fds[i];
      }
      break;
    }
  }
  if (stored) fd_cache_.add(dir);
  return shared;
}

Result<SharedFd> Overlay::upper_dir_fd(Node* dir) {
  if (!has_upper_) return make_error(EROFS, "no upper layer");
  return dir_fd_layer(dir, 0);
}

Result<Overlay::Location> Overlay::locate(Node* n) {
  int top = n->top();
  if (n->is_dir()) {
    auto fd = dir_fd_layer(n, top);
    if (!fd) return fd.take_error();
    return Location{std::move(*fd), "", top};
  }
  {
    std::lock_guard lk(n->mu);
    if (!n->index_name.empty()) return Location{index_, n->index_name, 0};
  }
  auto place = table_.place(n);
  if (!place.parent) {
    std::lock_guard lk(n->mu);
    if (n->pinned) return Location{n->pinned, "", top};
    return make_error(ENOENT, "node removed");
  }
  auto fd = dir_fd_layer(place.parent.get(), top);
  if (!fd) return fd.take_error();
  return Location{std::move(*fd), std::move(place.name), top};
}

Result<struct stat> Overlay::getattr(Node* n) {
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  auto st = sys::stat_at(loc->dir->get(), loc->name.c_str());
  if (!st) return st.take_error();
  return fix_stat(n, *st);
}

Result<std::string> Overlay::readlink(Node* n) {
  auto loc = locate(n);
  if (!loc) return loc.take_error();
  return sys::readlink_at(loc->dir->get(), loc->name.c_str());
}

void Overlay::pin(Node* n) {
  // Only an open file can be used after its last name goes (fstat, fchmod, /proc/PID/fd): others need no pin.
  if (n->open_files.load(std::memory_order_relaxed) == 0) return;
  auto loc = locate(n);
  if (!loc || loc->name.empty()) return;
  auto fd = sys::open_at(loc->dir->get(), loc->name.c_str(), O_PATH);
  // Without the pin a removed-but-open file answers ENOENT to path-less getattr; the data path keeps working
  // through the open handle's own fd.
  if (!fd) return;
  std::lock_guard lk(n->mu);
  n->pinned = std::make_shared<const UniqueFd>(std::move(*fd));
}

Status Overlay::remove_tree_in_work(const std::string& name) {
  int wfd = work_.get();
  auto st = sys::stat_at(wfd, name.c_str());
  if (!st) return st.error().err == ENOENT ? Status{} : Status{st.take_error()};
  if (!S_ISDIR(st->st_mode)) return sys::unlink_at(wfd, name.c_str(), 0);
  // Depth-first with an explicit stack of (dir fd, child names) so deep trees cannot overflow ours.
  struct Frame {
    UniqueFd fd;
    std::vector<sys::Dirent> ents;
    size_t next = 0;
  };
  std::vector<Frame> stack;
  auto push = [&](int at, const char* nm) -> Status {
    auto fd = sys::open_at(at, nm, O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.take_error();
    auto ents = sys::read_dir(fd->get());
    if (!ents) return ents.take_error();
    stack.push_back(Frame{std::move(*fd), std::move(*ents), 0});
    return {};
  };
  STRATA_TRY(push(wfd, name.c_str()));
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next == f.ents.size()) {
      stack.pop_back();
      continue;
    }
    const auto& e = f.ents[f.next++];
    auto r = sys::unlink_at(f.fd.get(), e.name.c_str(), e.type == DT_DIR ? AT_REMOVEDIR : 0);
    if (r) continue;
    if (r.error().err == EISDIR || r.error().err == ENOTEMPTY || r.error().err == EEXIST) {
      --f.next;  // come back to remove the directory itself once it is empty
      STRATA_TRY(push(f.fd.get(), e.name.c_str()));
      // The frame below now revisits this entry with AT_REMOVEDIR.
      stack[stack.size() - 2].ents[stack[stack.size() - 2].next].type = DT_DIR;
      continue;
    }
    return r;
  }
  return sys::unlink_at(wfd, name.c_str(), AT_REMOVEDIR);
}

Result<struct statvfs> Overlay::statfs() {
  auto s = sys::statfs_fd(layers_[0].root_shared->get());
  if (!s) return s.take_error();
  struct statvfs v {};
  v.f_bsize = static_cast<unsigned long>(s->f_bsize);
  v.f_frsize = static_cast<unsigned long>(s->f_frsize ? s->f_frsize : s->f_bsize);
  v.f_blocks = s->f_blocks;
  v.f_bfree = s->f_bfree;
  v.f_bavail = s->f_bavail;
  v.f_files = s->f_files;
  v.f_ffree = s->f_ffree;
  v.f_favail = s->f_ffree;
  v.f_namemax = 255;
  return v;
}

Status Overlay::sync_upper() {
  if (!has_upper_) return {};
  settle_all();
  // syncfs refuses O_PATH fds (the layer roots are O_PATH).
  auto fd = sys::reopen(layers_[0].root_shared->get(), O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.take_error();
  auto s = sys::sync_fs(fd->get());
  if (!s) return make_error(s.error().err, "syncfs of the upper", layers_[0].path);
  return {};
}

}  // namespace strata::merge
