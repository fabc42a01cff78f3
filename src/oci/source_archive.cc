// SPDX-License-Identifier: Apache-2.0
// The oci-archive: and docker-archive: transports: the tar is unpacked (contained, as untrusted
// input) into a temporary directory under the store's ingest/, then read like a directory.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <nlohmann/json.hpp>

#include "strata/archive/unpack.h"
#include "strata/oci/source.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::oci {
namespace {

// ROOT/ingest/.tmp-archive-<pid>-<n>: the store's temporary naming, so that cleanup_stale() knows
// whose it is after a crash.
class TempDir {
 public:
  static Result<std::unique_ptr<TempDir>> create(const store::Store& store) {
    static std::atomic<unsigned> counter{0};
    auto t = std::make_unique<TempDir>();
    auto parent = sys::open_path((store.root_path() + "/ingest").c_str(), O_RDONLY | O_DIRECTORY);
    if (!parent) return parent.take_error();
    t->parent_ = std::move(*parent);
    t->name_ = ".tmp-archive-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    STRATA_TRY(sys::mkdir_at(t->parent_.get(), t->name_.c_str(), 0700));
    t->made_ = true;
    auto fd = sys::open_at(t->parent_.get(), t->name_.c_str(), O_RDONLY | O_DIRECTORY);
    if (!fd) return fd.take_error();
    t->fd_ = std::move(*fd);
    t->path_ = store.root_path() + "/ingest/" + t->name_;
    return t;
  }
  ~TempDir() {
    fd_.reset();
    // Best effort: a leftover is found by cleanup_stale() once this pid is gone.
    if (made_) (void)sys::remove_tree_at(parent_.get(), name_.c_str());
  }
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  UniqueFd parent_, fd_;
  std::string name_, path_;
  bool made_ = false;
};

Result<std::unique_ptr<TempDir>> extract(const store::Store& store, const std::string& file) {
  auto src = sys::open_path(file.c_str(), O_RDONLY);
  if (!src) return make_error(src.error().err, "open", file);
  STRATA_ASSIGN_OR_RETURN(tmp, TempDir::create(store));
  archive::UnpackOptions opts;
  opts.privilege = archive::Privilege::kUnprivileged;
  opts.devices = archive::DevicePolicy::kSkip;
  auto st = archive::unpack_layer(src->get(), tmp->fd(), opts);
  if (!st) return make_error(st.error().err, "read archive", file + ": " + st.error().message());
  return tmp;
}

// Wraps another source and keeps the extracted directory alive as long as it is.
class ArchiveSource : public Source {
 public:
  ArchiveSource(std::unique_ptr<TempDir> tmp, std::unique_ptr<Source> inner)
      : tmp_(std::move(tmp)), inner_(std::move(inner)) {}
  Result<FetchedManifest> get_manifest() override { return inner_->get_manifest(); }
  Result<FetchedManifest> get_manifest(const Descriptor& d) override { return inner_->get_manifest(d); }
  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override { return inner_->get_blob(d); }

 private:
  std::unique_ptr<TempDir> tmp_;  // destroyed after inner_ (declared first)
  std::unique_ptr<Source> inner_;
};

Result<std::pair<store::Digest, int64_t>> hash_file(int fd) {
  store::Sha256 h;
  char buf[1 << 16];
  while (true) {
    auto n = sys::read_some(fd, buf, sizeof buf);
    if (!n) return n.take_error();
    if (*n == 0) break;
    h.update(buf, *n);
  }
  uint64_t size = h.bytes();
  STRATA_ASSIGN_OR_RETURN(d, h.finish());
  return std::make_pair(d, static_cast<int64_t>(size));
}

class DockerArchiveSource : public Source {
 public:
  static Result<std::unique_ptr<Source>> from_unpacked(std::unique_ptr<TempDir> tmp, const std::string& file) {
    auto s = std::unique_ptr<DockerArchiveSource>(new DockerArchiveSource);
    s->tmp_ = std::move(tmp);
    s->file_ = file;
    STRATA_TRY(s->load());
    return std::unique_ptr<Source>(std::move(s));
  }

  Result<FetchedManifest> get_manifest() override {
    return FetchedManifest{manifest_body_, store::kMediaTypeDockerManifest, std::nullopt};
  }
  Result<FetchedManifest> get_manifest(const Descriptor& d) override {
    return make_error(ENOENT, "docker-archive", file_ + ": no manifest " + d.digest.to_string());
  }
  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override {
    auto it = files_.find(d.digest);
    if (it == files_.end()) return make_error(ENOENT, "docker-archive", file_ + ": no blob " + d.digest.to_string());
    STRATA_ASSIGN_OR_RETURN(fd, open_member(it->second));
    return fd_reader(std::move(fd));
  }
  std::vector<std::string> image_names() const override { return names_; }

 private:
  Result<UniqueFd> open_member(const std::string& rel) {
    auto fd = sys::open_beneath(tmp_->fd(), rel, O_RDONLY);
    if (!fd) return make_error(fd.error().err, "docker-archive", file_ + ": " + rel);
    return fd;
  }

  Result<Descriptor> describe(const std::string& rel, const char* media_type) {
    STRATA_ASSIGN_OR_RETURN(fd, open_member(rel));
    STRATA_ASSIGN_OR_RETURN(h, hash_file(fd.get()));
    files_[h.first] = rel;
    Descriptor d;
    d.media_type = media_type;
    d.digest = h.first;
    d.size = h.second;
    return d;
  }

  Status load() {
    using json = nlohmann::json;
    auto bad = [&](const std::string& why) { return make_error(EBADMSG, "docker-archive", file_ + ": manifest.json: " + why); };
    STRATA_ASSIGN_OR_RETURN(fd, open_member("manifest.json"));
    std::string body;
    char buf[65536];
    while (true) {
      auto n = sys::read_some(fd.get(), buf, sizeof buf);
      if (!n) return n.take_error();
      if (*n == 0) break;
      body.append(buf, *n);
      if (body.size() > (16u << 20)) return bad("too large");
    }
    json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_array() || j.empty() || !j[0].is_object()) return bad("not a non-empty array");
    const json& e = j[0];
    if (!e.contains("Config") || !e["Config"].is_string()) return bad("no Config");
    if (!e.contains("Layers") || !e["Layers"].is_array()) return bad("no Layers");
    Manifest m;
    m.media_type = store::kMediaTypeDockerManifest;
    STRATA_ASSIGN_OR_RETURN(cfg, describe(e["Config"].get<std::string>(), kMediaTypeDockerConfig));
    m.config = cfg;
    for (const auto& l : e["Layers"]) {
      if (!l.is_string()) return bad("a layer is not a string");
      STRATA_ASSIGN_OR_RETURN(ld, describe(l.get<std::string>(), kMediaTypeDockerLayer));
      m.layers.push_back(ld);
    }
    if (auto tags = e.find("RepoTags"); tags != e.end() && tags->is_array()) {
      for (const auto& t : *tags)
        if (t.is_string()) names_.push_back(t.get<std::string>());
    }
    manifest_body_ = manifest_to_json(m);
    return {};
  }

  std::unique_ptr<TempDir> tmp_;
  std::string file_;
  std::string manifest_body_;
  std::map<store::Digest, std::string> files_;
  std::vector<std::string> names_;
};

}  // namespace

Result<std::unique_ptr<Source>> open_oci_archive(const store::Store& store, const std::string& file,
                                                 const std::string& tag) {
  STRATA_ASSIGN_OR_RETURN(tmp, extract(store, file));
  STRATA_ASSIGN_OR_RETURN(inner, open_oci_layout(tmp->path(), tag));
  return std::unique_ptr<Source>(new ArchiveSource(std::move(tmp), std::move(inner)));
}

Result<std::unique_ptr<Source>> open_docker_archive(const store::Store& store, const std::string& file) {
  STRATA_ASSIGN_OR_RETURN(tmp, extract(store, file));
  return DockerArchiveSource::from_unpacked(std::move(tmp), file);
}

}  // namespace strata::oci
