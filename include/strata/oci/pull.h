// SPDX-License-Identifier: Apache-2.0
// oci/pull: copy an image from a Source into the store, verifying every byte.
//
// Pipeline: the reference's manifest (an index / manifest list is resolved to the entry for
// options.platform) -> its digest checked against the descriptor that named it -> the config,
// read whole and checked (size, digest) -> each layer: blob bytes go to a store Ingest (size and
// digest checked at commit) while being decompressed (gzip/zstd/plain), hashed (diff_id) and fed to
// archive::unpack_layer into a begin_layer() temporary; the layer is committed only when blob
// digest and diff_id both match. Then, under the store lock, config and manifest blobs are written
// and the refs set. A layer already in the store (layers/<diff_id> and its blob) is reported
// "already exists" and neither read nor unpacked; a layer whose blob is in the store but not its
// unpacked tree is unpacked from the stored blob.
//
// Failure leaves nothing half-written visible: a bad blob is never committed (Ingest), a bad layer
// never renamed into layers/, no ref is set. Layers completed before the failure stay (a re-run
// skips them). Errors name the blob: "layer sha256:...: blob digest mismatch ...".
// Thread-safety: one pull per call; concurrent pulls into one store are safe (the store's rules).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/oci/manifest.h"
#include "strata/oci/source.h"
#include "strata/store/store.h"

namespace strata::oci {

// On a ref whose reference named an index / manifest list: that index's digest, which docker
// reports as the RepoDigest (the ref itself points at the platform's manifest).
inline constexpr const char* kRepoDigestAnnotation = "dev.strata.repo-digest";

struct PullOptions {
  Platform platform = host_platform();
  // Refs to set (at least one): the image's names in the store.
  std::vector<std::string> names;
  // One line per layer ("<12 hex>: already exists", "<12 hex>: pulled N bytes"); may be empty.
  std::function<void(const std::string&)> progress;
};

struct PullResult {
  Descriptor manifest;  // what the refs point at
  store::Digest config;
  int layers_pulled = 0;
  int layers_existing = 0;
};

Result<PullResult> pull(const store::Store& store, Source& source, const PullOptions& options);

}  // namespace strata::oci
