// SPDX-License-Identifier: Apache-2.0
#include "strata/store/layers.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "strata/store/layout.h"
#include "strata/store/store.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/store_io.h"

namespace strata::store {

LayerTemp& LayerTemp::operator=(LayerTemp&& o) noexcept {
  if (this != &o) {
    discard();
    dirs_ = std::move(o.dirs_);
    diff_id_ = std::move(o.diff_id_);
    name_ = std::move(o.name_);
    o.name_.clear();
    dir_ = std::move(o.dir_);
    diff_ = std::move(o.diff_);
    contents_synced_ = o.contents_synced_;
  }
  return *this;
}

LayerTemp::~LayerTemp() {
  discard();
}

void LayerTemp::discard() {
  diff_.reset();
  dir_.reset();
  if (dirs_ && !name_.empty()) {
    // Best effort: what is left behind has our pid in its name and cleanup_stale() removes it once
    // we exit.
    (void)sys::remove_tree_at(dirs_->layers.get(), name_.c_str());
  }
  name_.clear();
}

std::string LayerTemp::diff_path() const {
  return dirs_->root_path + "/" + detail::kLayersDir + "/" + name_ + "/" + detail::kLayerDiffDir;
}

namespace {

Result<UniqueFd> open_layer_dir(int layersfd, const Digest& diff_id) {
  auto fd = sys::open_at(layersfd, diff_id.hex.c_str(), O_PATH | O_DIRECTORY);
  if (!fd) return make_error(fd.error().err, "open layer", diff_id.to_string());
  return fd;
}

}  // namespace

bool Store::has_layer(const Digest& diff_id) const {
  if (!detail::check_digest(diff_id, "has_layer")) return false;
  auto dir = open_layer_dir(dirs_->layers.get(), diff_id);
  return dir && sys::stat_at(dir->get(), detail::kLayerMetaFile);
}

Result<LayerTemp> Store::begin_layer(const Digest& diff_id) const {
  STRATA_TRY(detail::check_digest(diff_id, "begin layer"));
  LayerTemp t;
  t.dirs_ = dirs_;
  t.diff_id_ = diff_id;
  std::string name = detail::temp_name(diff_id.hex);
  return begin_layer_in(std::move(t), std::move(name));
}

Result<LayerTemp> Store::begin_layer() const {
  LayerTemp t;
  t.dirs_ = dirs_;
  return begin_layer_in(std::move(t), detail::temp_name("new"));
}

Result<LayerTemp> Store::begin_layer_in(LayerTemp t, std::string name) const {
  STRATA_TRY(sys::mkdir_at(dirs_->layers.get(), name.c_str(), 0755));
  t.name_ = std::move(name);  // from here on the destructor removes it
  STRATA_ASSIGN_OR_RETURN(
      dir, sys::open_at(dirs_->layers.get(), t.name_.c_str(), O_RDONLY | O_DIRECTORY));
  t.dir_ = std::move(dir);
  STRATA_TRY(sys::mkdir_at(t.dir_.get(), detail::kLayerDiffDir, 0755));
  STRATA_ASSIGN_OR_RETURN(
      diff, sys::open_at(t.dir_.get(), detail::kLayerDiffDir, O_RDONLY | O_DIRECTORY));
  t.diff_ = std::move(diff);
  return t;
}

Status Store::commit_layer(LayerTemp&& tmp, const LayerMeta& meta) const {
  if (!tmp.dir_.valid() || tmp.name_.empty())
    return make_error(EINVAL, "commit layer", "no layer in progress");
  if (tmp.dirs_ != dirs_) return make_error(EINVAL, "commit layer", "layer begun on another store");
  if (!tmp.diff_id_.valid()) {
    // begun without a diff_id: it is known now.
    STRATA_TRY(detail::check_digest(meta.diff_id, "commit layer"));
    tmp.diff_id_ = meta.diff_id;
  }
  if (meta.diff_id != tmp.diff_id_)
    return make_error(
        EINVAL, "commit layer",
        "meta diff_id " + meta.diff_id.to_string() + " != " + tmp.diff_id_.to_string());
  nlohmann::json j = {{"diff_id", meta.diff_id.to_string()},
                      {"size", meta.size},
                      {"created", meta.created.empty() ? detail::now_rfc3339() : meta.created}};
  j["compressed_digest"] =
      meta.blob_digest ? nlohmann::json(meta.blob_digest->to_string()) : nlohmann::json();
  STRATA_TRY(
      detail::write_file_atomic(tmp.dir_.get(), detail::kLayerMetaFile, j.dump(2) + "\n", 0644));
  // The unpacker wrote thousands of files without fsync; one syncfs makes the whole tree durable
  // before the rename publishes it (cheaper than an fsync per file, and this is the only point that
  // needs it). A writer that synced what it wrote leaves only diff/ and the temporary's entries.
  // (write_file_atomic fsynced the temporary itself, diff/'s entry included.)
  if (tmp.contents_synced_) {
    STRATA_TRY(detail::fsync_dir(tmp.diff_.get()));
  } else {
    STRATA_TRY(sys::sync_filesystem(tmp.dir_.get()));
  }
  int layersfd = dirs_->layers.get();
  const std::string& hex = tmp.diff_id_.hex;
  auto r = sys::rename_at(layersfd, tmp.name_.c_str(), layersfd, hex.c_str(), RENAME_NOREPLACE);
  if (!r && r.error().err == EINVAL) {
    // No RENAME_NOREPLACE here: a plain rename still cannot replace a (non-empty) existing layer.
    r = sys::rename_at(layersfd, tmp.name_.c_str(), layersfd, hex.c_str(), 0);
  }
  if (!r) {
    int e = r.error().err;
    if (e == EEXIST || e == ENOTEMPTY) {
      // A concurrent pull committed the same layer first: theirs is complete by the same invariant.
      tmp.discard();
      return {};
    }
    return make_error(e, "commit layer", tmp.diff_id_.to_string());
  }
  tmp.name_.clear();  // published: the LayerTemp no longer owns a directory
  tmp.diff_.reset();
  tmp.dir_.reset();
  return detail::fsync_dir(layersfd);
}

Result<UniqueFd> Store::layer_diff_fd(const Digest& diff_id) const {
  STRATA_TRY(detail::check_digest(diff_id, "open layer"));
  STRATA_ASSIGN_OR_RETURN(dir, open_layer_dir(dirs_->layers.get(), diff_id));
  return sys::open_at(dir.get(), detail::kLayerDiffDir, O_PATH | O_DIRECTORY);
}

std::string Store::layer_diff_path(const Digest& diff_id) const {
  return dirs_->root_path + "/" + detail::kLayersDir + "/" + diff_id.hex + "/" +
         detail::kLayerDiffDir;
}

Result<LayerMeta> Store::layer_meta(const Digest& diff_id) const {
  STRATA_TRY(detail::check_digest(diff_id, "layer meta"));
  STRATA_ASSIGN_OR_RETURN(dir, open_layer_dir(dirs_->layers.get(), diff_id));
  STRATA_ASSIGN_OR_RETURN(text, detail::read_file_at(dir.get(), detail::kLayerMetaFile, 1u << 20));
  auto bad = [&] {
    return make_error(EBADMSG, "layer meta", diff_id.to_string() + ": malformed meta.json");
  };
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad();
  LayerMeta m;
  auto id = j.find("diff_id");
  if (id == j.end() || !id->is_string()) return bad();
  auto parsed = Digest::parse(id->get<std::string>());
  if (!parsed || *parsed != diff_id) return bad();
  m.diff_id = std::move(*parsed);
  if (auto s = j.find("size"); s != j.end() && s->is_number_unsigned()) m.size = s->get<uint64_t>();
  if (auto c = j.find("created"); c != j.end() && c->is_string()) m.created = c->get<std::string>();
  if (auto b = j.find("compressed_digest"); b != j.end() && b->is_string()) {
    auto bd = Digest::parse(b->get<std::string>());
    if (!bd) return bad();
    m.blob_digest = std::move(*bd);
  }
  return m;
}

Result<std::vector<Digest>> Store::list_layers() const {
  STRATA_ASSIGN_OR_RETURN(ents, sys::read_dir(dirs_->layers.get()));
  std::vector<Digest> out;
  for (const auto& e : ents) {
    auto d = Digest::from_hex(e.name);
    if (d && has_layer(*d)) out.push_back(std::move(*d));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status Store::remove_layer(const StoreLock& lock, const Digest& diff_id) const {
  STRATA_TRY(check_lock(lock, "remove layer"));
  STRATA_TRY(detail::check_digest(diff_id, "remove layer"));
  int layersfd = dirs_->layers.get();
  // Rename first: the layer disappears atomically; a crash mid-delete leaves a temporary, not half
  // a layer.
  std::string tmp = detail::temp_name(diff_id.hex);
  auto r = sys::rename_at(layersfd, diff_id.hex.c_str(), layersfd, tmp.c_str(), 0);
  if (!r) return make_error(r.error().err, "remove layer", diff_id.to_string());
  STRATA_TRY(detail::fsync_dir(layersfd));
  return sys::remove_tree_at(layersfd, tmp.c_str());
}

}  // namespace strata::store
