// SPDX-License-Identifier: Apache-2.0
// push(): the order of the copy and the registry destination. See push.h; the oci: layout
// destination is push_layout.cc.
#include "strata/oci/push.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "strata/base/workers.h"
#include "strata/oci/registry_client.h"
#include "strata/sys/store_io.h"

namespace strata::oci {

// push_layout.cc
Result<std::unique_ptr<Destination>> open_layout_destination(const std::string& dir);

namespace {

const char* const kAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

class RegistryDestination : public Destination {
 public:
  explicit RegistryDestination(std::unique_ptr<RegistryClient> c) : c_(std::move(c)) {}

  std::string name() const override { return c_->where(); }

  Result<bool> has_blob(const Descriptor& d) override {
    HttpRequest req;
    req.method = "HEAD";
    req.url = c_->repo_url("/blobs/" + d.digest.to_string());
    STRATA_ASSIGN_OR_RETURN(s, c_->request(req));
    if (s->status() == 200) return true;
    if (s->status() == 404) return false;
    return c_->status_error(*s, "HEAD blob", name() + " " + d.digest.to_string());
  }

  Status put_blob(const store::Store& store, const Descriptor& d,
                  const std::function<void(uint64_t)>& on_bytes) override {
    std::string what = name() + " blob " + d.digest.to_string();
    STRATA_ASSIGN_OR_RETURN(fd, store.open_blob(d.digest));
    STRATA_ASSIGN_OR_RETURN(size, store.blob_size(d.digest));
    HttpRequest post;
    post.method = "POST";
    post.url = c_->repo_url("/blobs/uploads/");
    STRATA_ASSIGN_OR_RETURN(started, c_->request(post));
    if (started->status() != 202) return c_->status_error(*started, "start upload", what);
    STRATA_ASSIGN_OR_RETURN(url, upload_url(c_->base(), started->header("location"), d.digest));
    auto shared = std::make_shared<UniqueFd>(std::move(fd));
    HttpRequest put;
    put.method = "PUT";
    put.url = url;
    put.headers.push_back("Content-Type: application/octet-stream");
    put.body = HttpBody{size, [shared](uint64_t off, void* buf, size_t n) -> Result<size_t> {
                          return sys::pread_some(shared->get(), buf, n, static_cast<off_t>(off));
                        }};
    put.on_sent = on_bytes;
    STRATA_ASSIGN_OR_RETURN(done, c_->request(put));
    if (done->status() != 201) return c_->status_error(*done, "upload", what);
    std::string got = done->header("docker-content-digest");
    if (!got.empty() && got != d.digest.to_string())
      return make_error(EBADMSG, "upload", what + ": the registry stored it as " + got);
    return {};
  }

  Result<bool> has_manifest(const Descriptor& d) override {
    HttpRequest req;
    req.method = "HEAD";
    req.url = c_->repo_url("/manifests/" + d.digest.to_string());
    req.headers.push_back(std::string("Accept: ") + kAccept);
    STRATA_ASSIGN_OR_RETURN(s, c_->request(req));
    if (s->status() == 200) return true;
    if (s->status() == 404) return false;
    return c_->status_error(*s, "HEAD manifest", name() + "@" + d.digest.to_string());
  }

  Status put_manifest(const Descriptor& d, const std::string& body,
                      const std::string& tag) override {
    std::string target = tag.empty() ? d.digest.to_string() : tag;
    std::string what =
        name() + (tag.empty() ? "@" : ":") + target + " (manifest " + d.digest.to_string() + ")";
    HttpRequest put;
    put.method = "PUT";
    put.url = c_->repo_url("/manifests/" + target);
    put.headers.push_back("Content-Type: " + d.media_type);
    put.body = HttpBody::of_string(body);
    STRATA_ASSIGN_OR_RETURN(s, c_->request(put));
    if (s->status() != 201 && s->status() != 200) return c_->status_error(*s, "put manifest", what);
    std::string got = s->header("docker-content-digest");
    if (!got.empty() && got != d.digest.to_string())
      return make_error(EBADMSG, "put manifest", what + ": the registry computed " + got);
    return {};
  }

 private:
  std::unique_ptr<RegistryClient> c_;
};

struct Parsed {
  Descriptor desc;
  std::string body;
  std::optional<Manifest> manifest;  // nullopt: an index
  std::optional<Index> index;
};

Result<Parsed> load(const store::Store& store, const Descriptor& d) {
  Parsed p;
  p.desc = d;
  STRATA_ASSIGN_OR_RETURN(body, store.read_blob(d.digest));
  p.body = std::move(body);
  STRATA_ASSIGN_OR_RETURN(kind, detect_manifest(p.body, d.media_type));
  p.desc.media_type = kind.second;
  p.desc.size = static_cast<int64_t>(p.body.size());
  if (kind.first == ManifestKind::kIndex) {
    STRATA_ASSIGN_OR_RETURN(ix, parse_index(p.body, kind.second));
    p.index = std::move(ix);
  } else {
    STRATA_ASSIGN_OR_RETURN(m, parse_manifest(p.body, kind.second));
    p.manifest = std::move(m);
  }
  return p;
}

}  // namespace

Result<std::unique_ptr<Destination>> open_destination(const Reference& ref,
                                                      const RegistryOptions& options) {
  if (ref.transport == Transport::kOciLayout) return open_layout_destination(ref.path);
  if (ref.transport != Transport::kDocker)
    return make_error(EINVAL, "push", ref.to_string() + ": push writes docker:// or oci: only");
  STRATA_ASSIGN_OR_RETURN(c, RegistryClient::connect(ref, options, RegistryClient::Access::kPush));
  return std::unique_ptr<Destination>(std::make_unique<RegistryDestination>(std::move(c)));
}

Result<PushResult> push(const store::Store& store, const Descriptor& top, Destination& dest,
                        const PushOptions& options) {
  STRATA_ASSIGN_OR_RETURN(root, load(store, top));
  // The manifests to put, children first; the blobs they name.
  std::vector<Parsed> children;
  if (root.index) {
    for (const auto& e : root.index->manifests) {
      std::string plat = e.platform ? " (" + e.platform->to_string() + ")" : "";
      if (!store.has_blob(e.descriptor.digest)) {
        STRATA_ASSIGN_OR_RETURN(there, dest.has_manifest(e.descriptor));
        if (!there) {
          return make_error(EINVAL, "push",
                            "index " + top.digest.to_string() + ": manifest " +
                                e.descriptor.digest.to_string() + plat +
                                " is not in the store (only some platforms were pulled) nor at " +
                                dest.name() + "; push a single platform's image instead");
        }
        continue;
      }
      STRATA_ASSIGN_OR_RETURN(child, load(store, e.descriptor));
      if (!child.manifest) {
        return make_error(ENOTSUP, "push",
                          "index " + top.digest.to_string() + ": nested index " +
                              e.descriptor.digest.to_string() + " is not supported");
      }
      children.push_back(std::move(child));
    }
  }
  std::vector<Descriptor> blobs;
  std::set<store::Digest> seen;
  auto add_blobs = [&](const Manifest& m) {
    for (const auto& l : m.layers)
      if (seen.insert(l.digest).second) blobs.push_back(l);
    if (seen.insert(m.config.digest).second) blobs.push_back(m.config);
  };
  if (root.manifest) add_blobs(*root.manifest);
  for (const auto& c : children) add_blobs(*c.manifest);

  PushResult res;
  auto event = [&](LayerEvent::Kind kind, size_t i, uint64_t bytes) {
    if (!options.on_blob) return;
    options.on_blob(LayerEvent{kind, i, blobs[i].digest, blobs[i].size, bytes});
  };
  for (size_t i = 0; i < blobs.size(); ++i) event(LayerEvent::kQueued, i, 0);

  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::atomic<int> pushed{0}, existing{0};
  std::mutex err_mu;
  std::optional<Error> first_error;
  auto one = [&](size_t i) -> Status {
    const Descriptor& d = blobs[i];
    STRATA_ASSIGN_OR_RETURN(there, dest.has_blob(d));
    if (there) {
      event(LayerEvent::kExists, i, 0);
      ++existing;
      return {};
    }
    if (!store.has_blob(d.digest)) {
      return make_error(
          ENOENT, "push",
          "blob " + d.digest.to_string() + " is in neither the store nor " + dest.name());
    }
    STRATA_ASSIGN_OR_RETURN(size, store.blob_size(d.digest));
    if (d.size >= 0 && size != static_cast<uint64_t>(d.size)) {
      return make_error(EBADMSG, "push",
                        "blob " + d.digest.to_string() + ": " + std::to_string(size) +
                            " bytes in the store, the manifest says " + std::to_string(d.size));
    }
    event(LayerEvent::kStarted, i, 0);
    STRATA_TRY(dest.put_blob(store, d, [&, i](uint64_t n) { event(LayerEvent::kBytes, i, n); }));
    event(LayerEvent::kDone, i, size);
    ++pushed;
    return {};
  };
  auto work = [&] {
    while (!cancel.load()) {
      size_t i = next.fetch_add(1);
      if (i >= blobs.size()) return;
      auto st = one(i);
      if (!st) {
        std::lock_guard<std::mutex> g(err_mu);
        if (!first_error) first_error = st.take_error();
        cancel = true;
        return;
      }
    }
  };
  run_workers(options.jobs, blobs.size(), work);
  if (first_error) return *first_error;
  res.blobs_pushed = pushed.load();
  res.blobs_existing = existing.load();

  for (const auto& c : children) {
    STRATA_TRY(dest.put_manifest(c.desc, c.body, ""));
    ++res.manifests;
  }
  STRATA_TRY(dest.put_manifest(root.desc, root.body, options.tag));
  ++res.manifests;
  STRATA_TRY(dest.finish());
  res.manifest = root.desc;
  return res;
}

}  // namespace strata::oci
