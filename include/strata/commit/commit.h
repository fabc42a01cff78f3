// SPDX-License-Identifier: Apache-2.0
// commit/commit: a container's change (or, squashed, its whole view) as a new image in the store
// — what `strata commit` does once it has found the container and its parent image.
//
// Order, so that a failure at any step leaves the store as it was:
//   1. parse the -c changes and check the format/compression pair (errors before any write);
//   2. build the layer from root_fd (layer.h: temporaries only) — kUpper mode for a container's
//      upper directory, kTree (squash) for a merged view; an empty upper gives no layer;
//   3. make the config and manifest (image_config.h);
//   4. under the StoreLock: publish the layer blob and layers/<diff_id>, write the config and the
//      manifest blobs, then name the manifest `ref_name` (set_ref) or, untagged, add it to
//      index.json without a name (Store::add_unnamed) so that gc keeps it and its ID finds it.
// Times: SOURCE_DATE_EPOCH (options.source_date_epoch) is the config's and the history entry's
// "created" and clamps the layer's mtimes; otherwise "created" is the current time. The same
// root tree, parent, options and epoch give the same layer digest and image ID.
// Errors: Result naming the step and the object; everything written before a failure is a
// temporary and is removed (nothing half-written becomes visible). Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/commit/compress.h"
#include "strata/commit/image_config.h"
#include "strata/commit/layer.h"
#include "strata/oci/image.h"
#include "strata/store/store.h"

namespace strata::commit {

struct CommitOptions {
  std::vector<std::string> changes;  // -c instructions
  std::string author;
  std::string message;
  std::string created_by = "strata commit";
  Format format = Format::kOci;
  Compression compression = Compression::kGzip;
  int level = Compressor::kDefaultLevel;
  bool squash = false;  // root_fd is a whole view: one layer replaces the parent's
  std::optional<int64_t> source_date_epoch;
  std::string ref_name;  // the name to give the image; empty: untagged
};

struct CommitResult {
  store::Digest image_id;  // sha256 of the config
  oci::Descriptor manifest;
  bool empty_layer = false;              // no change: no new layer
  std::optional<store::Digest> diff_id;  // the new layer
  std::optional<store::Digest> blob;
  uint64_t layer_size = 0;  // tar bytes
  uint64_t blob_size = 0;
  WalkStats walk;
  std::vector<std::string> warnings;  // from the walk and the layers/ copy
};

Result<CommitResult> commit_image(const store::Store& store, const oci::Image& parent, int root_fd,
                                  const CommitOptions& options);

}  // namespace strata::commit
