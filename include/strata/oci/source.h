// SPDX-License-Identifier: Apache-2.0
// oci/source: where `strata pull` reads an image from. One interface, one implementation per
// transport, so that a registry source can be added without touching the pull pipeline.
//
//   auto src = open_source(ref, store);          // oci:, oci-archive:, docker-archive:
//   auto top = src->get_manifest();              // the manifest or index the reference names
//   auto child = src->get_manifest(descriptor);  // an index's entry
//   auto blob = src->get_blob(descriptor);       // a config or layer, as a stream
//
// Sources return bytes as they found them: verifying digests and sizes is the pipeline's job (see
// pull.h), so a corrupt source is always caught in one place. Archives (oci-archive,
// docker-archive) are unpacked first into a temporary directory under the store's ingest/ (their
// entries are untrusted: archive::unpack_layer contains them), removed when the Source is
// destroyed. docker-archive has no manifest of its own: a Docker schema2 manifest is synthesized
// from manifest.json (config and layer digests computed from the files).
// Errors: Result, naming the file or descriptor; ENOENT when a tag or blob is not there, EINVAL when
// an oci: layout without tag holds more than one manifest. docker:// is registry.h's
// open_registry() (open_source() uses its default options: TLS verified, credentials from the auth
// files).
// Thread-safety: one thread per Source and per BlobReader.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/oci/manifest.h"
#include "strata/oci/reference.h"
#include "strata/store/store.h"

namespace strata::oci {

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Up to `size` bytes; 0 at the end.
  virtual Result<size_t> read(void* buf, size_t size) = 0;
};

struct FetchedManifest {
  std::string body;
  std::string media_type;       // from the descriptor or transport; may be empty
  std::optional<Descriptor> descriptor;  // what the body must match (digest, size), when known
};

// A blob stream that may begin past the start: `start` is where reader's first byte is.
struct RangedBlob {
  std::unique_ptr<BlobReader> reader;
  uint64_t start = 0;
};

class Source {
 public:
  virtual ~Source() = default;
  virtual Result<FetchedManifest> get_manifest() = 0;
  virtual Result<FetchedManifest> get_manifest(const Descriptor& d) = 0;
  virtual Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) = 0;
  // The blob from byte `offset` where the transport can seek (a registry: "Range: bytes=N-"), to
  // resume a partial ingest; a source that cannot gives the whole blob (start 0).
  virtual Result<RangedBlob> get_blob_from(const Descriptor& d, uint64_t offset) {
    (void)offset;  // the default cannot seek: the caller sees start == 0 and starts over
    auto r = get_blob(d);
    if (!r) return r.take_error();
    return RangedBlob{std::move(*r), 0};
  }
  // Names the source itself gives the image (docker-archive RepoTags); empty when it gives none.
  virtual std::vector<std::string> image_names() const { return {}; }
};

// A BlobReader over a file descriptor (blob files, archive members).
std::unique_ptr<BlobReader> fd_reader(UniqueFd fd);

Result<std::unique_ptr<Source>> open_oci_layout(const std::string& dir, const std::string& tag);
Result<std::unique_ptr<Source>> open_oci_archive(const store::Store& store, const std::string& file,
                                                 const std::string& tag);
Result<std::unique_ptr<Source>> open_docker_archive(const store::Store& store, const std::string& file);
// Dispatch on ref.transport.
Result<std::unique_ptr<Source>> open_source(const Reference& ref, const store::Store& store);

}  // namespace strata::oci
