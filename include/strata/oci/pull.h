// SPDX-License-Identifier: Apache-2.0
// oci/pull: copy an image from a Source into the store, verifying every byte.
//
// Pipeline: the reference's manifest (an index / manifest list is resolved to the entry for
// options.platform) -> its digest checked against the descriptor that named it -> the config,
// read whole and checked (size, digest) -> each layer: blob bytes go to a store Ingest (size and
// digest checked at commit) while being decompressed (gzip/zstd/plain), hashed (diff_id) and fed to
// archive::unpack_layer into a begin_layer() temporary; the layer is committed only when blob
// digest and diff_id both match. Layers not in the store are pulled concurrently by up to
// options.jobs workers, each layer still in one streaming pass; the first error cancels the others
// (their partial blobs stay in ingest/ for a resume) and is the one returned. Then, only after every
// layer committed, under the store lock, config and manifest blobs are written
// and the refs set. A layer already in the store (layers/<diff_id> and its blob) is reported
// "already exists" and neither read nor unpacked; a layer whose blob is in the store but not its
// unpacked tree is unpacked from the stored blob.
//
// Failure leaves nothing half-written visible: a bad blob is never committed (Ingest), a bad layer
// never renamed into layers/, no ref is set. Layers completed before the failure stay (a re-run
// skips them). Errors name the blob: "layer sha256:...: blob digest mismatch ...".
// Thread-safety: one pull per call; concurrent pulls into one store are safe (the store's rules).
// The Source's own calls are serialized by pull(); its BlobReaders are read from the workers, one
// thread each. options.on_layer is called from the workers, concurrently.
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

// What happens to one layer, for a progress display. `index` is the layer's position in the
// manifest. kQueued is sent for every layer, in order, before any other event; then a layer gets
// kExists, or kStarted, kBytes (raw blob bytes read so far, after each read) and kDone.
struct LayerEvent {
  enum Kind { kQueued, kExists, kStarted, kBytes, kDone } kind;
  size_t index = 0;
  store::Digest blob;
  int64_t size = -1;   // the blob's size from the manifest
  uint64_t bytes = 0;  // kBytes, kDone: blob bytes read (a resumed blob counts its partial too)
};

struct PullOptions {
  Platform platform = host_platform();
  // Refs to set (at least one): the image's names in the store.
  std::vector<std::string> names;
  // Layers fetched at once (at least 1).
  int jobs = 3;
  // Progress events; may be empty. Called from several threads at once: it must lock.
  std::function<void(const LayerEvent&)> on_layer;
};

struct PullResult {
  Descriptor manifest;  // what the refs point at
  store::Digest config;
  int layers_pulled = 0;
  int layers_existing = 0;
  // The unpacker's notes on the layers pulled ("layer sha256:...: 'ENTRY': what happened"): devices
  // skipped where they cannot be created, xattrs refused or dropped, duplicate entries.
  std::vector<std::string> warnings;
};

Result<PullResult> pull(const store::Store& store, Source& source, const PullOptions& options);

}  // namespace strata::oci
