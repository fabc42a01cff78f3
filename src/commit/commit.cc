// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/commit.h"

#include <chrono>

namespace strata::commit {

Result<CommitResult> commit_image(const store::Store& store, const oci::Image& parent, int root_fd,
                                  const CommitOptions& options) {
  STRATA_ASSIGN_OR_RETURN(changes, parse_changes(options.changes));
  STRATA_ASSIGN_OR_RETURN(layer_type, layer_media_type(options.format, options.compression));
  if (!options.ref_name.empty() && !store::valid_ref_name(options.ref_name))
    return make_error(EINVAL, "commit", "'" + options.ref_name + "' is not a valid image name");

  LayerOptions lo;
  lo.walk.mode = options.squash ? WalkMode::kTree : WalkMode::kUpper;
  lo.walk.clamp_mtime = options.source_date_epoch;
  lo.compression = options.compression;
  lo.level = options.level;
  STRATA_ASSIGN_OR_RETURN(layer, build_layer(store, root_fd, lo));

  CommitResult res;
  res.walk = layer.walk;
  res.warnings = layer.walk.warnings;
  for (const auto& w : layer.unpack.warnings) res.warnings.push_back("layers/ copy: " + w);
  res.empty_layer = layer.empty;
  std::optional<oci::Descriptor> layer_desc;
  if (!layer.empty) {
    res.diff_id = layer.diff_id;
    res.blob = layer.blob_digest;
    res.layer_size = layer.size;
    res.blob_size = layer.blob_size;
    layer_desc =
        oci::Descriptor{layer_type, layer.blob_digest, static_cast<int64_t>(layer.blob_size), {}};
  }

  int64_t now =
      options.source_date_epoch.value_or(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  ConfigInputs ci;
  ci.parent_config = parent.config_raw;
  ci.changes = std::move(changes);
  ci.created = rfc3339(now);
  ci.created_by = options.created_by;
  ci.author = options.author;
  ci.comment = options.message;
  ci.diff_id = res.diff_id;
  ci.squash = options.squash;
  STRATA_ASSIGN_OR_RETURN(config, make_config(ci));
  STRATA_ASSIGN_OR_RETURN(config_digest, store::Sha256::of(config));
  oci::Descriptor config_desc{
      config_media_type(options.format), config_digest, static_cast<int64_t>(config.size()), {}};
  STRATA_ASSIGN_OR_RETURN(manifest, make_manifest(parent.manifest, config_desc, layer_desc,
                                                  options.squash, options.format));
  STRATA_ASSIGN_OR_RETURN(manifest_digest, store::Sha256::of(manifest));

  // From the first published blob to the ref naming it: gc must not run in between.
  STRATA_ASSIGN_OR_RETURN(lock, store.lock_exclusive());
  STRATA_TRY(publish_layer(store, lock, &layer));
  STRATA_TRY(store.write_blob(config));
  STRATA_TRY(store.write_blob(manifest));
  res.manifest = oci::Descriptor{manifest_media_type(options.format),
                                 manifest_digest,
                                 static_cast<int64_t>(manifest.size()),
                                 {}};
  if (options.ref_name.empty())
    STRATA_TRY(store.add_unnamed(lock, res.manifest));
  else
    STRATA_TRY(store.set_ref(lock, options.ref_name, res.manifest));
  res.image_id = config_digest;
  return res;
}

}  // namespace strata::commit
