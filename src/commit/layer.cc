// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/layer.h"

#include <algorithm>
#include <vector>

#include "strata/archive/layer_writer.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "tar_writer.h"

namespace strata::commit {
namespace {

constexpr size_t kChunk = 1u << 20;

// Each entry into the tar and, from the same buffer, into the layer directory.
class TeeSink : public EntrySink {
 public:
  TeeSink(detail::TarWriter* tar, archive::LayerWriter* layer)
      : tar_(tar), layer_(layer), buf_(kChunk) {}

  Status entry(const archive::Entry& e, int data_fd) override {
    STRATA_TRY(tar_->begin(e));
    UniqueFd out;
    if (layer_) {
      STRATA_ASSIGN_OR_RETURN(fd, layer_->begin(e));
      out = std::move(fd);
    }
    off_t done = 0;
    if (data_fd >= 0) {
      while (done < e.size) {
        size_t want =
            static_cast<size_t>(std::min<off_t>(static_cast<off_t>(buf_.size()), e.size - done));
        auto n = sys::read_some(data_fd, buf_.data(), want);
        if (!n)
          return make_error(n.error().err, "commit",
                            archive::quote_name(e.name) + ": reading data");
        if (*n == 0) break;  // shrank since stat: the tar pads with zeros, so does the layer
        STRATA_TRY(tar_->data(buf_.data(), *n));
        if (out.valid()) {
          auto w = sys::pwrite_all(out.get(), buf_.data(), *n, done);
          if (!w)
            return make_error(w.error().err, "commit",
                              archive::quote_name(e.name) + ": writing the layer copy");
        }
        done += static_cast<off_t>(*n);
      }
    }
    STRATA_TRY(tar_->end());
    if (out.valid()) STRATA_TRY(layer_->finish_file(out.get(), e, done));
    return {};
  }

 private:
  detail::TarWriter* tar_;
  archive::LayerWriter* layer_;
  std::vector<char> buf_;
};

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
  TeeSink sink(tar.get(), writer ? &*writer : nullptr);
  STRATA_ASSIGN_OR_RETURN(stats, walk_tree(root_fd, options.walk, &sink));
  out.walk = std::move(stats);
  STRATA_TRY(tar->close());
  STRATA_TRY(comp.finish());
  if (writer) STRATA_TRY(writer->finish());
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
