// SPDX-License-Identifier: Apache-2.0
// The docker:// transport: a Source over RegistryClient (registry_client.h). See registry.h.
#include "strata/oci/registry.h"

#include <nlohmann/json.hpp>

#include "strata/oci/registry_client.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxManifest = 4u << 20;

const char* const kAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

class RegistrySource : public Source {
 public:
  explicit RegistrySource(std::unique_ptr<RegistryClient> client) : c_(std::move(client)) {}

  Result<FetchedManifest> get_manifest() override {
    const Reference& ref = c_->ref();
    std::string tag_or_digest = ref.digest.empty() ? ref.tag : ref.digest;
    STRATA_ASSIGN_OR_RETURN(m, fetch_manifest(tag_or_digest));
    if (!ref.digest.empty()) {
      Descriptor d;
      STRATA_ASSIGN_OR_RETURN(dg, store::Digest::parse(ref.digest));
      d.digest = dg;
      d.size = -1;
      d.media_type = m.media_type;
      m.descriptor = d;
    }
    return m;
  }

  Result<FetchedManifest> get_manifest(const Descriptor& d) override {
    STRATA_ASSIGN_OR_RETURN(m, fetch_manifest(d.digest.to_string()));
    if (m.media_type.empty()) m.media_type = d.media_type;
    m.descriptor = d;
    return m;
  }

  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override {
    STRATA_ASSIGN_OR_RETURN(r, get_blob_from(d, 0));
    return std::move(r.reader);
  }

  Result<RangedBlob> get_blob_from(const Descriptor& d, uint64_t offset) override {
    HttpRequest req;
    req.url = c_->repo_url("/blobs/" + d.digest.to_string());
    if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
    STRATA_ASSIGN_OR_RETURN(s, c_->request(req));
    if (s->status() == 206 && offset > 0) {
      // A partial answer must start where we asked, or the stream would be spliced at the wrong
      // byte.
      std::string want = "bytes " + std::to_string(offset) + "-";
      if (s->header("content-range").compare(0, want.size(), want) != 0) {
        return make_error(EIO, "GET blob",
                          d.digest.to_string() + ": asked for " + want + ", got Content-Range '" +
                              s->header("content-range") + "'");
      }
      return RangedBlob{std::move(s), offset};
    }
    if (s->status() == 200) return RangedBlob{std::move(s), 0};
    return c_->status_error(*s, "GET blob", c_->where() + " " + d.digest.to_string());
  }

 private:
  Result<FetchedManifest> fetch_manifest(const std::string& ref) {
    HttpRequest req;
    req.url = c_->repo_url("/manifests/" + ref);
    req.headers.push_back(std::string("Accept: ") + kAccept);
    STRATA_ASSIGN_OR_RETURN(s, c_->request(req));
    if (s->status() != 200) return c_->status_error(*s, "GET manifest", c_->where() + ":" + ref);
    FetchedManifest m;
    STRATA_ASSIGN_OR_RETURN(body, s->read_all(kMaxManifest));
    m.body = std::move(body);
    std::string ct = s->header("content-type");
    if (auto semi = ct.find(';'); semi != std::string::npos) ct = trim(ct.substr(0, semi));
    // distribution answers application/json or text/plain for manifests it stores untyped.
    if (ct != "application/json" && ct != "text/plain") m.media_type = ct;
    if (std::string dcd = s->header("docker-content-digest"); !dcd.empty()) {
      auto dg = store::Digest::parse(dcd);
      if (dg && dg->algorithm == "sha256") {
        Descriptor d;
        d.digest = *dg;
        d.size = -1;
        d.media_type = m.media_type;
        m.descriptor = d;
      }
    }
    return m;
  }

  std::unique_ptr<RegistryClient> c_;
};

}  // namespace

Result<std::unique_ptr<Source>> open_registry(const Reference& ref,
                                              const RegistryOptions& options) {
  STRATA_ASSIGN_OR_RETURN(c, RegistryClient::connect(ref, options, RegistryClient::Access::kPull));
  return std::unique_ptr<Source>(std::make_unique<RegistrySource>(std::move(c)));
}

}  // namespace strata::oci
