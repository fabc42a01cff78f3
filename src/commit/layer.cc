// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/layer.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "copy_writer.h"
#include "strata/archive/layer_writer.h"
#include "strata/base/aligned_buffer.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/store_io.h"
#include "tar_writer.h"

namespace strata::commit {
namespace {

constexpr size_t kChunk = 1u << 20;
// Files at least this big go to the layers/ copy with direct I/O (sys/store_io.h): one read of the
// upper feeds both the tar and the copy, and the copy skips the page cache. Smaller ones are not
// worth a synchronous disk write each.
constexpr off_t kDirectMin = 256 * 1024;
// Up to this many files and directories, each is fsynced as it is finished (files on the copy
// thread, overlapping the next file) and the store need not syncfs, which would also write out
// every other dirty file of the filesystem, the container's just-written upper included (0.16 s of
// a 200 MB commit here). Beyond, one syncfs is cheaper than the fsyncs.
constexpr size_t kSyncEachMax = 256;

// Each entry into the tar and, from the same buffer, into the layer directory.
// Why not copy_file_range or a reflink from the upper file for the copy: the kernel would read the
// upper a second time, and a container writing without --pause could change the file in between,
// so that layers/ and the tar disagree. (A reflink taken first and then read for the tar would be
// one snapshot, but ext4, the usual store, has none; copy_file_range there fills the same
// page-cache pages pwrite does.)
class TeeSink : public EntrySink {
 public:
  // `copier`: the layers/ copy's writer thread (with `layer`).
  TeeSink(detail::TarWriter* tar, archive::LayerWriter* layer, detail::CopyWriter* copier)
      : tar_(tar), layer_(layer), copier_(copier), buf_(AlignedBuffer::make(kChunk, 64)) {}
  bool ready() const { return buf_.valid(); }
  // Whether every file and directory of the copy was fsynced here (none too many).
  bool synced_each() const { return layer_ && synced_each_; }
  const std::vector<std::string>& dirs() const { return dirs_; }

  Status entry(const archive::Entry& e, int data_fd) override {
    STRATA_TRY(tar_->begin(e));
    UniqueFd out;
    if (layer_) {
      STRATA_ASSIGN_OR_RETURN(fd, layer_->begin(e));
      out = std::move(fd);
      if (e.type == archive::EntryType::kDirectory) note_synced(e.name, true);
      if (out.valid()) note_synced(e.name, false);
    }
    // out's writes are in flight on the copier until wait(): whatever way this returns, they must
    // be over before out is closed (its number could be reused for another file).
    struct Settle {
      detail::CopyWriter* c;
      ~Settle() {
        if (c) (void)c->wait();  // an error there is the one already returned, or returned next
      }
    } settle{out.valid() ? copier_ : nullptr};
    // A filesystem without direct I/O refuses it (EINVAL): the page cache it is.
    bool direct = out.valid() && data_fd >= 0 && e.size >= kDirectMin &&
                  sys::set_direct_io(out.get(), true).has_value();
    off_t done = 0;
    if (data_fd >= 0) {
      while (done < e.size) {
        char* buf = buf_.data();
        size_t size = buf_.size();
        if (out.valid()) {
          STRATA_ASSIGN_OR_RETURN(b, copier_->acquire());
          buf = b;
          size = detail::CopyWriter::kChunk;
        }
        size_t want = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(size), e.size - done));
        auto n = sys::read_some(data_fd, buf, want);
        Status s;
        if (!n)
          s = make_error(n.error().err, "commit", archive::quote_name(e.name) + ": reading data");
        else if (*n > 0)
          s = tar_->data(buf, *n);
        if (!s || !n || *n == 0) {
          if (out.valid()) copier_->release(buf);
          if (!s) return s;
          break;  // shrank since stat: the tar pads with zeros, so does the layer
        }
        if (out.valid()) STRATA_TRY(copier_->submit(out.get(), buf, *n, done, direct, e.name));
        done += static_cast<off_t>(*n);
      }
    }
    STRATA_TRY(tar_->end());
    if (out.valid()) {
      STRATA_TRY(copier_->wait());
      STRATA_TRY(layer_->finish_file(out.get(), e, done));
      if (synced_each_) STRATA_TRY(copier_->sync_close(std::move(out), e.name));
    }
    return {};
  }

 private:
  void note_synced(const std::string& name, bool dir) {
    if (!synced_each_) return;
    if (++synced_ > kSyncEachMax) {
      synced_each_ = false;
      dirs_.clear();
      return;
    }
    if (dir) {
      std::string d = name;
      while (!d.empty() && d.back() == '/') d.pop_back();
      if (!d.empty() && d != ".") dirs_.push_back(std::move(d));
    }
  }

  detail::TarWriter* tar_;
  archive::LayerWriter* layer_;
  detail::CopyWriter* copier_;
  AlignedBuffer buf_;  // without a layers/ copy
  bool synced_each_ = true;
  size_t synced_ = 0;
  std::vector<std::string> dirs_;
};

// fsync every directory of the copy (their entries, and on journalling filesystems the inodes
// created in them: symlinks, whiteouts, devices cannot be fsynced themselves). False when one
// cannot be opened (a mode an unprivileged writer cannot read): then syncfs does it.
Result<bool> sync_dirs(int root, const std::vector<std::string>& dirs) {
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    auto fd = sys::open_beneath(root, *it, O_RDONLY | O_DIRECTORY);
    if (!fd) return false;
    if (auto s = sys::fsync_fd(fd->get(), false); !s)
      return make_error(s.error().err, "commit",
                        archive::quote_name(*it) + ": syncing the layer copy");
  }
  return true;
}

}  // namespace

Result<BuiltLayer> build_layer(const store::Store& store, int root_fd,
                               const LayerOptions& options) {
  BuiltLayer out;
  out.compression = options.compression;
  if (options.walk.mode == WalkMode::kUpper) {
    auto ents = sys::read_dir(root_fd);
    if (!ents) return make_error(ents.error().err, "commit", "reading the upper directory");
    if (ents->empty()) {
      out.empty = true;
      return out;
    }
  }
  STRATA_ASSIGN_OR_RETURN(blob, store::BlobWriter::begin(store));
  out.blob.emplace(std::move(blob));
  store::BlobWriter* bw = &*out.blob;
  STRATA_ASSIGN_OR_RETURN(
      comp, Compressor::make(options.compression, options.level,
                             [bw](const void* d, size_t n) { return bw->write(d, n); }));
  store::Sha256 diff;
  STRATA_ASSIGN_OR_RETURN(tar, detail::TarWriter::create([&](const void* d, size_t n) -> Status {
                            diff.update(d, n);
                            return comp.feed(d, n);
                          }));
  std::optional<archive::LayerWriter> writer;
  if (options.unpack) {
    STRATA_ASSIGN_OR_RETURN(tmp, store.begin_layer());
    out.layer.emplace(std::move(tmp));
    writer.emplace(out.layer->diff_fd(), archive::store_unpack_options(), &out.unpack);
  }
  std::unique_ptr<detail::CopyWriter> copier;
  if (writer) {
    STRATA_ASSIGN_OR_RETURN(c, detail::CopyWriter::start());
    copier = std::move(c);
  }
  TeeSink sink(tar.get(), writer ? &*writer : nullptr, copier.get());
  if (!sink.ready()) return make_error(ENOMEM, "commit", "a read buffer");
  STRATA_ASSIGN_OR_RETURN(stats, walk_tree(root_fd, options.walk, &sink));
  out.walk = std::move(stats);
  STRATA_TRY(tar->close());
  STRATA_TRY(comp.finish());
  if (writer) {
    STRATA_TRY(writer->finish());  // directory modes and times
    STRATA_TRY(copier->wait());    // the files' fsyncs
    if (sink.synced_each()) {
      STRATA_ASSIGN_OR_RETURN(synced, sync_dirs(out.layer->diff_fd(), sink.dirs()));
      if (synced) out.layer->set_contents_synced();
    }
  }
  out.size = tar->bytes();
  STRATA_ASSIGN_OR_RETURN(id, diff.finish());
  out.diff_id = std::move(id);
  STRATA_ASSIGN_OR_RETURN(bd, bw->finish());
  out.blob_digest = std::move(bd);
  out.blob_size = bw->size();
  return out;
}

Status publish_layer(const store::Store& store, const store::StoreLock& lock, BuiltLayer* layer) {
  if (!lock.held()) return make_error(EINVAL, "publish layer", "the store lock is not held");
  if (layer->empty) return {};
  if (layer->blob) STRATA_TRY(layer->blob->publish());
  if (layer->layer) {
    store::LayerMeta meta;
    meta.diff_id = layer->diff_id;
    meta.size = layer->size;
    meta.blob_digest = layer->blob_digest;
    STRATA_TRY(store.commit_layer(std::move(*layer->layer), meta));
    layer->layer.reset();
  }
  return {};
}

}  // namespace strata::commit
