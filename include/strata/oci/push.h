// SPDX-License-Identifier: Apache-2.0
// oci/push: copy an image of the store to a registry (docker://) or an OCI image layout (oci:).
//
//   auto dest = open_destination(ref, registry_options);   // docker:// or oci:DIR[:TAG]
//   PushOptions o;  o.tag = ref.tag;  o.on_blob = ...;
//   auto res = push(store, descriptor_of_the_image, *dest, o);
//
// Order: every blob first (the layers and config of each manifest, deduplicated), then the
// manifests an index lists (by digest), then the top manifest or index under options.tag (by digest
// when the tag is empty). The manifests go out as the exact bytes of the store (their digest never
// changes), with their own media type as Content-Type. A blob the destination already has
// (registry: HEAD /v2/REPO/blobs/DIGEST is 200; layout: the file exists) is skipped and reported
// kExists. Blobs are copied by up to options.jobs workers; the first error stops the others (before
// their next request) and is the one returned; nothing is tagged after an error.
//
// Registry protocol (OCI distribution spec): POST /v2/REPO/blobs/uploads/ -> 202 + Location
// (absolute or relative, possibly with a query already), then ONE monolithic PUT to
// Location[?&]digest=DIGEST with the blob streamed from its store file (Content-Length; memory does
// not grow with the blob) -> 201. Chunked PATCH uploads are not used: the spec's monolithic upload
// is enough for distribution at any size (64 MiB tested), and a failed PUT is simply redone by the
// next push (a registry behind a proxy that caps request bodies would need chunks). A manifest PUT
// must answer 201 and, where the registry sends Docker-Content-Digest, the digest pushed. The
// bearer token asks for repository:REPO:pull,push. No cross-repository mount is attempted.
// Layout: blobs copied (reflink when the filesystem can) into DIR/blobs/sha256 through a temporary
// and rename; index.json rewritten atomically with the top manifest named TAG
// (org.opencontainers.image.ref.name; an entry with that name is replaced; no TAG: an unnamed entry
// of that digest). One writer per layout at a time (no lock, as skopeo).
//
// An index / manifest list: every child manifest the store holds is pushed with its blobs; a child
// the store lacks (pull keeps one platform) must already be at the destination, else the push is
// refused before anything is sent (EINVAL naming the child and its platform). A blob a manifest
// names that the store lacks must likewise be at the destination already.
// Errors: Result naming the destination, the blob or manifest and the HTTP status (registry.h /
// registry_client.h: a 401/403 is EACCES). Thread-safety: one push per Destination at a time;
// options.on_blob is called from the workers concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "strata/base/result.h"
#include "strata/oci/manifest.h"
#include "strata/oci/pull.h"
#include "strata/oci/reference.h"
#include "strata/oci/registry.h"
#include "strata/store/store.h"

namespace strata::oci {

// Where push() writes. Its calls may come from several threads at once.
class Destination {
 public:
  virtual ~Destination() = default;
  // "127.0.0.1:5000/test/img", "oci:/tmp/layout": for messages.
  virtual std::string name() const = 0;
  virtual Result<bool> has_blob(const Descriptor& d) = 0;
  // Copy the store's blob d there; on_bytes(bytes sent so far) as it goes.
  virtual Status put_blob(const store::Store& store, const Descriptor& d,
                          const std::function<void(uint64_t)>& on_bytes) = 0;
  virtual Result<bool> has_manifest(const Descriptor& d) = 0;
  // The manifest bytes `body` (digest d.digest, media type d.media_type), under `tag` (empty: by
  // digest only).
  virtual Status put_manifest(const Descriptor& d, const std::string& body,
                              const std::string& tag) = 0;
  // After the last manifest (layout: write index.json).
  virtual Status finish() { return {}; }
};

struct PushOptions {
  // The name to give the top manifest at the destination; empty: by digest only.
  std::string tag;
  // Blobs copied at once (at least 1).
  int jobs = 3;
  // Progress per blob, as pull's LayerEvent (index: position among the blobs; kExists for a blob
  // the destination has). Called from several threads at once: it must lock.
  std::function<void(const LayerEvent&)> on_blob;
};

struct PushResult {
  Descriptor manifest;  // what was pushed under the tag
  int blobs_pushed = 0;
  int blobs_existing = 0;
  int manifests = 0;  // manifests put (children of an index included)
};

// ref: docker:// (a registry; RegistryOptions apply) or oci:DIR (created when missing).
Result<std::unique_ptr<Destination>> open_destination(const Reference& ref,
                                                      const RegistryOptions& options);

Result<PushResult> push(const store::Store& store, const Descriptor& top, Destination& dest,
                        const PushOptions& options);

}  // namespace strata::oci
