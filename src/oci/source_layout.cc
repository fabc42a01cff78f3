// SPDX-License-Identifier: Apache-2.0
// The oci: transport (an OCI image layout directory) and the dispatch of open_source().
#include <fcntl.h>

#include "strata/oci/registry.h"
#include "strata/oci/source.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxIndex = 16u << 20;

class FdReader : public BlobReader {
 public:
  explicit FdReader(UniqueFd fd) : fd_(std::move(fd)) {}
  Result<size_t> read(void* buf, size_t size) override { return sys::read_some(fd_.get(), buf, size); }

 private:
  UniqueFd fd_;
};

Result<std::string> read_all(int fd, size_t max, const std::string& what) {
  std::string out;
  char buf[65536];
  while (true) {
    auto n = sys::read_some(fd, buf, sizeof buf);
    if (!n) return n.take_error();
    if (*n == 0) break;
    out.append(buf, *n);
    if (out.size() > max) return make_error(EFBIG, "read", what);
  }
  return out;
}

class LayoutSource : public Source {
 public:
  LayoutSource(UniqueFd dir, std::string path, std::string tag)
      : dir_(std::move(dir)), path_(std::move(path)), tag_(std::move(tag)) {}

  Result<FetchedManifest> get_manifest() override {
    auto fd = sys::open_at(dir_.get(), "index.json", O_RDONLY);
    if (!fd) return make_error(fd.error().err, "open", path_ + "/index.json (not an OCI layout?)");
    STRATA_ASSIGN_OR_RETURN(body, read_all(fd->get(), kMaxIndex, path_ + "/index.json"));
    auto ix = parse_index(body, store::kMediaTypeOciIndex);
    if (!ix) return make_error(EBADMSG, "parse index", path_ + "/index.json: " + ix.error().detail);
    const IndexEntry* found = nullptr;
    if (tag_.empty()) {
      if (ix->manifests.size() != 1) {
        return make_error(EINVAL, "oci", path_ + ": " + std::to_string(ix->manifests.size()) +
                                             " manifests in index.json, name one with oci:DIR:TAG");
      }
      found = &ix->manifests[0];
    } else {
      for (const auto& e : ix->manifests) {
        auto it = e.descriptor.annotations.find(store::kRefNameAnnotation);
        if (it != e.descriptor.annotations.end() && it->second == tag_) found = &e;
      }
      if (!found) return make_error(ENOENT, "oci", path_ + ": no image tagged '" + tag_ + "'");
    }
    return get_manifest(found->descriptor);
  }

  Result<FetchedManifest> get_manifest(const Descriptor& d) override {
    if (d.size > static_cast<int64_t>(kMaxIndex)) return make_error(EFBIG, "manifest", d.digest.to_string());
    STRATA_ASSIGN_OR_RETURN(fd, open_blob(d));
    STRATA_ASSIGN_OR_RETURN(body, read_all(fd.get(), kMaxIndex, d.digest.to_string()));
    return FetchedManifest{std::move(body), d.media_type, d};
  }

  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override {
    STRATA_ASSIGN_OR_RETURN(fd, open_blob(d));
    return std::unique_ptr<BlobReader>(new FdReader(std::move(fd)));
  }

 private:
  Result<UniqueFd> open_blob(const Descriptor& d) {
    // The digest was parsed (canonical sha256 form), so the path has no '/' or '..' of its own.
    if (d.digest.algorithm != "sha256" || !store::Digest::valid_sha256_hex(d.digest.hex)) {
      return make_error(EINVAL, "blob", d.digest.to_string());
    }
    auto fd = sys::open_beneath(dir_.get(), "blobs/sha256/" + d.digest.hex, O_RDONLY);
    if (!fd) return make_error(fd.error().err, "open blob", path_ + ": " + d.digest.to_string());
    return fd;
  }

  UniqueFd dir_;
  std::string path_;
  std::string tag_;
};

}  // namespace

std::unique_ptr<BlobReader> fd_reader(UniqueFd fd) { return std::make_unique<FdReader>(std::move(fd)); }

Result<std::unique_ptr<Source>> open_oci_layout(const std::string& dir, const std::string& tag) {
  auto fd = sys::open_path(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (!fd) return make_error(fd.error().err, "open", dir);
  return std::unique_ptr<Source>(new LayoutSource(std::move(*fd), dir, tag));
}

Result<std::unique_ptr<Source>> open_source(const Reference& ref, const store::Store& store) {
  switch (ref.transport) {
    case Transport::kOciLayout: return open_oci_layout(ref.path, ref.tag);
    case Transport::kOciArchive: return open_oci_archive(store, ref.path, ref.tag);
    case Transport::kDockerArchive: return open_docker_archive(store, ref.path);
    case Transport::kDocker: return open_registry(ref, RegistryOptions{});
  }
  return make_error(EINVAL, "pull", ref.to_string() + ": unknown transport");
}

}  // namespace strata::oci
