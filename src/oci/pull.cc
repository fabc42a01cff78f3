// SPDX-License-Identifier: Apache-2.0
#include "strata/oci/pull.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "strata/archive/unpack.h"
#include "strata/base/workers.h"
#include "strata/oci/decompress.h"
#include "strata/store/ingest.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxJson = store::Store::kMaxJsonBlob;


Status check_bytes(std::string_view body, const Descriptor& d, const char* what) {
  STRATA_ASSIGN_OR_RETURN(got, store::Sha256::of(body));
  if (d.size >= 0 && static_cast<int64_t>(body.size()) != d.size) {
    return make_error(EBADMSG, "verify", std::string(what) + " " + d.digest.to_string() + ": size " +
                                             std::to_string(body.size()) + ", expected " + std::to_string(d.size));
  }
  if (got != d.digest) {
    return make_error(EBADMSG, "verify", std::string(what) + " " + d.digest.to_string() +
                                             ": digest mismatch, content is " + got.to_string());
  }
  return {};
}

Result<std::string> read_blob_whole(Source& src, const Descriptor& d) {
  if (d.size > static_cast<int64_t>(kMaxJson)) return make_error(EFBIG, "read", d.digest.to_string());
  STRATA_ASSIGN_OR_RETURN(r, src.get_blob(d));
  std::string out;
  char buf[65536];
  while (true) {
    auto n = r->read(buf, sizeof buf);
    if (!n) return n.take_error();
    if (*n == 0) break;
    out.append(buf, *n);
    if (out.size() > kMaxJson) return make_error(EFBIG, "read", d.digest.to_string());
  }
  return out;
}

// A partial ingest's bytes, then the source's stream from where they end.
class ResumeReader : public BlobReader {
 public:
  ResumeReader(const store::Ingest& in, std::unique_ptr<BlobReader> rest)
      : in_(in), prefix_(in.offset()), rest_(std::move(rest)) {}
  Result<size_t> read(void* buf, size_t size) override {
    if (pos_ < prefix_) {
      auto n = in_.read_at(pos_, buf, size);
      if (!n) return n;
      if (*n == 0) return make_error(EIO, "ingest resume", in_.digest().to_string() + ": partial shrank");
      pos_ += *n;
      return n;
    }
    return rest_->read(buf, size);
  }

 private:
  const store::Ingest& in_;
  uint64_t prefix_;
  uint64_t pos_ = 0;
  std::unique_ptr<BlobReader> rest_;
};

// The Source's calls from several workers, one at a time (a Source is one-thread; the readers it
// returns are independent: their own curl handles or fds).
class SerialSource : public Source {
 public:
  explicit SerialSource(Source& inner) : inner_(inner) {}
  Result<FetchedManifest> get_manifest() override {
    std::lock_guard<std::mutex> g(mu_);
    return inner_.get_manifest();
  }
  Result<FetchedManifest> get_manifest(const Descriptor& d) override {
    std::lock_guard<std::mutex> g(mu_);
    return inner_.get_manifest(d);
  }
  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override {
    std::lock_guard<std::mutex> g(mu_);
    return inner_.get_blob(d);
  }
  Result<RangedBlob> get_blob_from(const Descriptor& d, uint64_t offset) override {
    std::lock_guard<std::mutex> g(mu_);
    return inner_.get_blob_from(d, offset);
  }

 private:
  Source& inner_;
  std::mutex mu_;
};

// One layer: blob -> (ingest, decompress -> hash + unpack). See the header for the rules.
class LayerPull {
 public:
  LayerPull(const store::Store& store, const Descriptor& blob, const store::Digest& diff_id,
            const std::atomic<bool>& cancel, std::function<void(uint64_t)> on_bytes)
      : store_(store), blob_(blob), diff_id_(diff_id), cancel_(cancel), on_bytes_(std::move(on_bytes)) {}

  Result<uint64_t> run(Source& src) {
    bool have_blob = store_.has_blob(blob_.digest);
    std::unique_ptr<BlobReader> reader;
    if (have_blob) {
      STRATA_ASSIGN_OR_RETURN(fd, store_.open_blob(blob_.digest));
      reader = fd_reader(std::move(fd));
    } else {
      STRATA_ASSIGN_OR_RETURN(in, store::Ingest::begin(store_, blob_.digest, static_cast<uint64_t>(blob_.size)));
      ingest_.emplace(std::move(in));
      if (ingest_->complete()) {
        // Committed by a concurrent pull while we waited for the partial's lock.
        ingest_.reset();
        STRATA_ASSIGN_OR_RETURN(fd, store_.open_blob(blob_.digest));
        reader = fd_reader(std::move(fd));
      } else if (ingest_->offset() > 0) {
        // Resume: the partial's bytes, then the rest from the source (an HTTP Range request). The
        // whole stream still passes through the hash and the unpacker below.
        STRATA_ASSIGN_OR_RETURN(r, src.get_blob_from(blob_, ingest_->offset()));
        if (r.start == ingest_->offset()) {
          reader = std::make_unique<ResumeReader>(*ingest_, std::move(r.reader));
        } else {
          STRATA_TRY(ingest_->reset());  // the source ignored the range: start over
          reader = std::move(r.reader);
        }
      } else {
        STRATA_ASSIGN_OR_RETURN(r, src.get_blob(blob_));
        reader = std::move(r);
      }
    }
    InputFn raw = [&](void* buf, size_t size) -> Result<size_t> {
      if (cancel_.load(std::memory_order_relaxed)) {
        cancelled_ = true;
        return make_error(ECANCELED, "pull", "another layer failed");
      }
      auto n = reader->read(buf, size);
      if (!n) return n;
      raw_hash_.update(buf, *n);
      uint64_t start = raw_bytes_;
      raw_bytes_ += *n;
      if (on_bytes_) on_bytes_(raw_bytes_);
      if (ingest_ && !ingest_->complete() && raw_bytes_ > ingest_->offset()) {
        // A resumed ingest already holds the first offset() bytes: append only what is past them.
        uint64_t skip = ingest_->offset() > start ? ingest_->offset() - start : 0;
        STRATA_TRY(ingest_->write(static_cast<const char*>(buf) + skip, *n - skip));
      }
      return n;
    };
    Decompressor dec(raw);
    std::optional<Error> read_error;
    // umoci insert writes layers that stop right after the last file's data, without its padding
    // or the end-of-archive blocks; umoci unpack accepts them. libarchive wants whole blocks, so after
    // the real end the unpacker is fed zeros up to the next block and two zero blocks more. The
    // padding is not part of the diff_id: it is never hashed.
    uint64_t padding_left = 0;
    bool at_end = false;
    archive::ReadFn fn = [&](void* buf, size_t size) -> ssize_t {
      if (at_end) {
        size_t n = std::min<uint64_t>(size, padding_left);
        std::memset(buf, 0, n);
        padding_left -= n;
        return static_cast<ssize_t>(n);
      }
      auto n = dec.read(buf, size);
      if (!n) {
        read_error = n.error();
        errno = n.error().err ? n.error().err : EIO;
        return -1;
      }
      if (*n == 0 && size > 0) {
        at_end = true;
        padding_left = (512 - diff_hash_.bytes() % 512) % 512 + 1024;
        size_t k = std::min<uint64_t>(size, padding_left);
        std::memset(buf, 0, k);
        padding_left -= k;
        return static_cast<ssize_t>(k);
      }
      diff_hash_.update(buf, *n);
      return static_cast<ssize_t>(*n);
    };
    STRATA_ASSIGN_OR_RETURN(tmp, store_.begin_layer(diff_id_));
    auto st = archive::unpack_layer(fn, tmp.diff_fd(), archive::store_unpack_options());
    if (st) {
      // unpack_layer reads to the end of the tar stream; drain what follows (padding, trailers).
      char sink[65536];
      while (true) {
        auto n = dec.read(sink, sizeof sink);
        if (!n) { read_error = n.error(); break; }
        if (*n == 0) break;
        diff_hash_.update(sink, *n);
      }
    }
    // Whatever went wrong, the blob's own digest is the first thing to report when it is wrong.
    STRATA_TRY(drain_and_verify_blob(raw));
    if (read_error) return named(*read_error);
    if (!st) return named(st.error());
    uint64_t size = diff_hash_.bytes();
    STRATA_ASSIGN_OR_RETURN(got, diff_hash_.finish());
    if (got != diff_id_) {
      if (ingest_) (void)ingest_->discard();  // the blob matched its digest but not the config: keep nothing
      return make_error(EBADMSG, "verify", "layer " + blob_.digest.to_string() + ": uncompressed content is " +
                                               got.to_string() + ", the config's diff_id is " + diff_id_.to_string());
    }
    if (ingest_) STRATA_TRY(ingest_->commit());
    store::LayerMeta meta;
    meta.diff_id = diff_id_;
    meta.size = size;
    meta.blob_digest = blob_.digest;
    STRATA_TRY(store_.commit_layer(std::move(tmp), meta));
    for (auto& w : st->warnings) warnings_.push_back("layer " + blob_.digest.to_string() + ": " + std::move(w));
    if (st->warnings_dropped > 0)
      warnings_.push_back("layer " + blob_.digest.to_string() + ": " + std::to_string(st->warnings_dropped) +
                          " more warnings");
    return raw_bytes_;
  }

  // The unpacker's notes, once run() succeeded.
  std::vector<std::string>& warnings() { return warnings_; }

 private:
  Error named(const Error& e) {
    // A layer whose content failed keeps no blob: nothing enters the store. One stopped because another
    // failed, or whose source failed, keeps its partial (the ingest records it when destroyed) for the next
    // run to resume.
    if (ingest_ && !cancelled_) (void)ingest_->discard();
    return make_error(e.err, "layer " + blob_.digest.to_string(), e.message());
  }

  Status drain_and_verify_blob(const InputFn& raw) {
    char buf[65536];
    while (true) {
      auto n = raw(buf, sizeof buf);
      if (!n) {
        // The source failed (the registry went away, the network broke): what arrived is kept in ingest/
        // (recorded when the ingest is destroyed) and the next pull resumes it with a Range request.
        const Error& e = n.error();
        return make_error(e.err, "layer " + blob_.digest.to_string(),
                          e.message() + " (the partial download is kept: pull again to resume)");
      }
      if (*n == 0) break;
    }
    if (cancelled_) return named(make_error(ECANCELED, "pull", "another layer failed"));
    if (static_cast<int64_t>(raw_bytes_) < blob_.size) {
      // The stream ended early (a connection cut mid-body can look like an end): not a content error, so
      // the partial stays for the next pull to resume.
      return make_error(EIO, "layer " + blob_.digest.to_string(),
                        "the source ended after " + std::to_string(raw_bytes_) + " of " +
                            std::to_string(blob_.size) + " bytes (the partial download is kept: pull again to resume)");
    }
    auto got = raw_hash_.finish();
    if (!got) return named(got.error());
    if (static_cast<int64_t>(raw_bytes_) != blob_.size || *got != blob_.digest) {
      if (ingest_) (void)ingest_->discard();
      std::string what = *got != blob_.digest ? "digest mismatch" : "size mismatch";
      return make_error(EBADMSG, "verify", "blob " + blob_.digest.to_string() + ": " + what + ": content is " +
                                               got->to_string() + " (" + std::to_string(raw_bytes_) +
                                               " bytes), the manifest says " + std::to_string(blob_.size) + " bytes");
    }
    return {};
  }

  const store::Store& store_;
  Descriptor blob_;
  store::Digest diff_id_;
  const std::atomic<bool>& cancel_;
  std::function<void(uint64_t)> on_bytes_;
  bool cancelled_ = false;
  std::optional<store::Ingest> ingest_;
  store::Sha256 raw_hash_, diff_hash_;
  uint64_t raw_bytes_ = 0;
  std::vector<std::string> warnings_;
};

Status copy_blob(const store::Store& store, Source& src, const Descriptor& d) {
  STRATA_ASSIGN_OR_RETURN(in, store::Ingest::begin(store, d.digest, static_cast<uint64_t>(d.size)));
  if (in.complete()) return {};
  // From where the ingest stopped when the source can seek; else re-read and skip its prefix.
  STRATA_ASSIGN_OR_RETURN(rb, src.get_blob_from(d, in.offset()));
  auto& r = rb.reader;
  uint64_t pos = rb.start;
  char buf[65536];
  while (true) {
    auto n = r->read(buf, sizeof buf);
    if (!n) return n.take_error();
    if (*n == 0) break;
    uint64_t start = pos;
    pos += *n;
    if (pos > in.offset()) {
      uint64_t skip = in.offset() > start ? in.offset() - start : 0;
      STRATA_TRY(in.write(buf + skip, *n - skip));
    }
  }
  return in.commit();
}

}  // namespace

Result<PullResult> pull(const store::Store& store, Source& source, const PullOptions& options) {
  if (options.names.empty()) return make_error(EINVAL, "pull", "no name for the image");
  STRATA_ASSIGN_OR_RETURN(top, source.get_manifest());
  if (top.descriptor) STRATA_TRY(check_bytes(top.body, *top.descriptor, "manifest"));
  STRATA_ASSIGN_OR_RETURN(kind, detect_manifest(top.body, top.media_type));
  std::optional<store::Digest> index_digest;
  if (kind.first == ManifestKind::kIndex) {
    STRATA_ASSIGN_OR_RETURN(d, store::Sha256::of(top.body));
    index_digest = d;
  }
  FetchedManifest chosen = std::move(top);
  if (kind.first == ManifestKind::kIndex) {
    STRATA_ASSIGN_OR_RETURN(ix, parse_index(chosen.body, kind.second));
    STRATA_ASSIGN_OR_RETURN(entry, select_platform(ix, options.platform));
    STRATA_ASSIGN_OR_RETURN(child, source.get_manifest(entry.descriptor));
    STRATA_TRY(check_bytes(child.body, entry.descriptor, "manifest"));
    chosen = std::move(child);
    chosen.descriptor = entry.descriptor;
    STRATA_ASSIGN_OR_RETURN(k2, detect_manifest(chosen.body, entry.descriptor.media_type));
    if (k2.first != ManifestKind::kManifest) return make_error(EBADMSG, "pull", "nested index " + entry.descriptor.digest.to_string());
    kind = k2;
  }
  STRATA_ASSIGN_OR_RETURN(manifest, parse_manifest(chosen.body, kind.second));
  STRATA_ASSIGN_OR_RETURN(config_body, read_blob_whole(source, manifest.config));
  STRATA_TRY(check_bytes(config_body, manifest.config, "config"));
  STRATA_ASSIGN_OR_RETURN(config, parse_config(config_body));
  if (config.diff_ids.size() != manifest.layers.size()) {
    return make_error(EBADMSG, "pull", "config " + manifest.config.digest.to_string() + " lists " +
                                           std::to_string(config.diff_ids.size()) + " diff_ids for " +
                                           std::to_string(manifest.layers.size()) + " layers");
  }

  // From the first blob written (or layer found present) to set_ref, a concurrent gc must not
  // collect what this pull relies on.
  STRATA_ASSIGN_OR_RETURN(pin, store.pin());
  PullResult res;
  res.config = manifest.config.digest;
  auto event = [&](LayerEvent::Kind kind, size_t i, uint64_t bytes) {
    if (!options.on_layer) return;
    LayerEvent e{kind, i, manifest.layers[i].digest, manifest.layers[i].size, bytes};
    options.on_layer(e);
  };
  for (size_t i = 0; i < manifest.layers.size(); ++i) event(LayerEvent::kQueued, i, 0);
  std::vector<size_t> todo;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& blob = manifest.layers[i];
    if (store.has_layer(config.diff_ids[i])) {
      if (!store.has_blob(blob.digest)) STRATA_TRY(copy_blob(store, source, blob));
      event(LayerEvent::kExists, i, 0);
      ++res.layers_existing;
      continue;
    }
    todo.push_back(i);
  }

  // A small pool: each worker takes the next layer in manifest order. The first error stops the
  // others at their next read (cancel) and is the one reported.
  SerialSource serial(source);
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::mutex err_mu;
  std::optional<Error> first_error;
  auto work = [&] {
    while (!cancel.load()) {
      size_t k = next.fetch_add(1);
      if (k >= todo.size()) return;
      size_t i = todo[k];
      event(LayerEvent::kStarted, i, 0);
      LayerPull lp(store, manifest.layers[i], config.diff_ids[i], cancel,
                   [&, i](uint64_t n) { event(LayerEvent::kBytes, i, n); });
      auto bytes = lp.run(serial);
      if (!bytes) {
        std::lock_guard<std::mutex> g(err_mu);
        if (!first_error && bytes.error().err != ECANCELED) first_error = bytes.error();
        cancel = true;
        return;
      }
      {
        std::lock_guard<std::mutex> g(err_mu);
        for (auto& w : lp.warnings()) res.warnings.push_back(std::move(w));
      }
      event(LayerEvent::kDone, i, *bytes);
    }
  };
  run_workers(options.jobs, todo.size(), work);
  if (first_error) return *first_error;
  if (cancel) return make_error(ECANCELED, "pull", "cancelled");
  res.layers_pulled = static_cast<int>(todo.size());

  // Refs under the lock (the pin keeps gc away from the blobs until then).
  STRATA_ASSIGN_OR_RETURN(lock, store.lock_exclusive());
  for (const auto& l : manifest.layers)
    if (!store.has_blob(l.digest)) return make_error(ENOENT, "pull", "layer blob " + l.digest.to_string() + " vanished");
  STRATA_ASSIGN_OR_RETURN(cd, store.write_blob(config_body));
  (void)cd;  // equal to manifest.config.digest: verified above
  STRATA_ASSIGN_OR_RETURN(md, store.write_blob(chosen.body));
  res.manifest.media_type = kind.second;
  res.manifest.digest = md;
  res.manifest.size = static_cast<int64_t>(chosen.body.size());
  if (index_digest) res.manifest.annotations[kRepoDigestAnnotation] = index_digest->to_string();
  for (const auto& name : options.names) STRATA_TRY(store.set_ref(lock, name, res.manifest));
  return res;
}

}  // namespace strata::oci
