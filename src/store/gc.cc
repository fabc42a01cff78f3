// SPDX-License-Identifier: Apache-2.0
#include "strata/store/gc.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "strata/store/layout.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/store_io.h"

namespace strata::store {

using nlohmann::json;

namespace {

constexpr int kMaxDepth = 8;

bool is_manifest_type(const std::string& mt) {
  return mt.empty() || mt == kMediaTypeOciManifest || mt == kMediaTypeOciIndex ||
         mt == kMediaTypeDockerManifest || mt == kMediaTypeDockerManifestList;
}

bool is_config_type(const std::string& mt) {
  return mt == kMediaTypeOciConfig || mt == "application/vnd.docker.container.image.v1+json";
}

struct Walker {
  const Store& store;
  Reachable out;

  Result<Digest> digest_of(const json& desc, const Digest& parent) {
    if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string())
      return make_error(EBADMSG, "gc", parent.to_string() + ": descriptor without a digest");
    auto d = Digest::parse(desc["digest"].get<std::string>());
    if (!d) return make_error(EBADMSG, "gc", parent.to_string() + ": " + d.error().message());
    return d;
  }

  static std::string media_type_of(const json& desc) {
    auto m = desc.find("mediaType");
    return m != desc.end() && m->is_string() ? m->get<std::string>() : std::string();
  }

  Status config(const Digest& d, const std::string& mt) {
    out.blobs.insert(d);
    if (!store.has_blob(d)) return {};
    STRATA_ASSIGN_OR_RETURN(text, store.read_blob(d));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (is_config_type(mt))
        return make_error(EBADMSG, "gc", "config " + d.to_string() + ": not JSON");
      return {};  // an artifact's "config" need not be an image config
    }
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end() || !rootfs->is_object()) return {};
    auto ids = rootfs->find("diff_ids");
    if (ids == rootfs->end() || !ids->is_array()) return {};
    for (const auto& id : *ids) {
      auto di = id.is_string() ? Digest::parse(id.get<std::string>())
                               : Result<Digest>(make_error(EINVAL, ""));
      if (!di) return make_error(EBADMSG, "gc", "config " + d.to_string() + ": bad diff_id");
      out.diff_ids.insert(std::move(*di));
    }
    return {};
  }

  Status manifest(const Digest& d, const std::string& mt, int depth) {
    if (depth > kMaxDepth)
      return make_error(EBADMSG, "gc", d.to_string() + ": indexes nested too deep");
    if (!out.blobs.insert(d).second) return {};
    if (!store.has_blob(d)) return {};  // e.g. another platform of a pulled index
    STRATA_ASSIGN_OR_RETURN(text, store.read_blob(d));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      if (is_manifest_type(mt))
        return make_error(EBADMSG, "gc", "manifest " + d.to_string() + ": not JSON");
      return {};  // a tagged blob of another kind: kept, nothing below it
    }
    if (auto ms = j.find("manifests"); ms != j.end() && ms->is_array()) {
      for (const auto& m : *ms) {
        STRATA_ASSIGN_OR_RETURN(child, digest_of(m, d));
        STRATA_TRY(manifest(child, media_type_of(m), depth + 1));
      }
      return {};
    }
    if (auto c = j.find("config"); c != j.end()) {
      STRATA_ASSIGN_OR_RETURN(cd, digest_of(*c, d));
      STRATA_TRY(config(cd, media_type_of(*c)));
    }
    if (auto ls = j.find("layers"); ls != j.end() && ls->is_array()) {
      for (const auto& l : *ls) {
        STRATA_ASSIGN_OR_RETURN(ld, digest_of(l, d));
        out.blobs.insert(std::move(ld));
      }
    }
    return {};
  }
};

}  // namespace

Result<Reachable> Store::referenced() const {
  // list() skips entries it cannot parse; gc must not, or it would free what they keep.
  STRATA_ASSIGN_OR_RETURN(text,
                          detail::read_file_at(dirs_->oci.get(), detail::kIndexFile, 64u << 20));
  try {
    json idx = json::parse(text, nullptr, false);
    if (idx.is_discarded() || !idx.is_object())
      return make_error(EBADMSG, "gc", "oci/index.json: not JSON");
    Walker w{*this, {}};
    Digest top{"sha256", std::string(64, '0')};
    if (auto ms = idx.find("manifests"); ms != idx.end() && ms->is_array()) {
      for (const auto& m : *ms) {
        STRATA_ASSIGN_OR_RETURN(d, w.digest_of(m, top));
        STRATA_TRY(w.manifest(d, Walker::media_type_of(m), 0));
      }
    }
    return std::move(w.out);
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "gc", e.what());
  }
}

Result<GcReport> Store::gc(const StoreLock& lock, bool dry_run,
                           const std::set<Digest>& in_use_layers,
                           const std::set<Digest>& in_use_blobs) const {
  STRATA_TRY(check_lock(lock, "gc"));
  if (!lock.excludes_pins())
    return make_error(EINVAL, "gc", "requires the lock of lock_for_gc (running pulls excluded)");
  STRATA_ASSIGN_OR_RETURN(reach, referenced());
  GcReport rep;
  int blobsfd = dirs_->blobs.get();
  STRATA_ASSIGN_OR_RETURN(ents, sys::read_dir(blobsfd));
  for (const auto& e : ents) {
    auto d = Digest::from_hex(e.name);
    if (!d || reach.blobs.count(*d) || in_use_blobs.count(*d)) continue;
    auto st = sys::stat_at(blobsfd, e.name.c_str());
    if (!st || !S_ISREG(st->st_mode)) continue;
    if (!dry_run) STRATA_TRY(sys::unlink_at(blobsfd, e.name.c_str(), 0));
    rep.bytes += static_cast<uint64_t>(st->st_size);
    rep.blobs.push_back(std::move(*d));
  }
  if (!dry_run && !rep.blobs.empty()) STRATA_TRY(detail::fsync_dir(blobsfd));
  STRATA_ASSIGN_OR_RETURN(layers, list_layers());
  for (auto& l : layers) {
    if (reach.diff_ids.count(l) || in_use_layers.count(l)) continue;
    if (!dry_run) STRATA_TRY(remove_layer(lock, l));
    rep.layers.push_back(std::move(l));
  }
  std::sort(rep.blobs.begin(), rep.blobs.end());
  return rep;
}

Result<std::vector<std::string>> Store::cleanup_stale() const {
  std::vector<std::string> removed;
  struct Where {
    int fd;
    const char* label;
  };
  for (Where w :
       {Where{dirs_->layers.get(), detail::kLayersDir}, Where{dirs_->oci.get(), detail::kOciDir},
        Where{dirs_->ingest.get(), detail::kIngestDir}}) {
    STRATA_ASSIGN_OR_RETURN(ents, sys::read_dir(w.fd));
    for (const auto& e : ents) {
      pid_t pid = 0;
      if (!detail::temp_owner(e.name, &pid) || sys::process_exists(pid)) continue;
      auto r = sys::remove_tree_at(w.fd, e.name.c_str());
      if (!r && r.error().err != ENOENT) return r.take_error();
      removed.push_back(std::string(w.label) + "/" + e.name);
    }
  }
  // Ingest state of blobs that are complete (left by a writer that lost a race or crashed after its
  // rename), and records whose partial is gone.
  int ingestfd = dirs_->ingest.get();
  STRATA_ASSIGN_OR_RETURN(ents, sys::read_dir(ingestfd));
  std::set<std::string> partials, records;
  for (const auto& e : ents) {
    size_t dot = e.name.find('.');
    if (dot == std::string::npos ||
        !Digest::valid_sha256_hex(std::string_view(e.name).substr(0, dot)))
      continue;
    std::string_view ext = std::string_view(e.name).substr(dot);
    if (ext == ".partial") partials.insert(e.name.substr(0, dot));
    if (ext == ".json") records.insert(e.name.substr(0, dot));
  }
  auto drop = [&](const std::string& name) -> Status {
    auto r = sys::unlink_at(ingestfd, name.c_str(), 0);
    if (!r && r.error().err != ENOENT) return r;
    removed.push_back(std::string(detail::kIngestDir) + "/" + name);
    return {};
  };
  for (const auto& hex : partials) {
    if (!has_blob(*Digest::from_hex(hex))) continue;
    // Only when nobody holds it (an Ingest between its own rename and close): the lock is held
    // until unlinked.
    std::string name = hex + ".partial";
    auto fd = sys::open_at(ingestfd, name.c_str(), O_RDONLY);
    if (!fd || !sys::flock_fd(fd->get(), LOCK_EX | LOCK_NB)) continue;
    STRATA_TRY(drop(name));
    if (records.erase(hex)) STRATA_TRY(drop(hex + ".json"));
  }
  for (const auto& hex : records) {
    if (partials.count(hex)) continue;
    STRATA_TRY(drop(hex + ".json"));
  }
  return removed;
}

}  // namespace strata::store
