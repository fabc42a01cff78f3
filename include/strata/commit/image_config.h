// SPDX-License-Identifier: Apache-2.0
// commit/image_config: the new image's config and manifest, derived from the parent's.
//
// Config: the parent's config JSON with every field kept (unknown ones included), then: the `-c`
// changes applied to "config" (changes.h); "created" set; "author" set to the given author (or
// removed: the new image's author is whoever committed it, as with docker commit); one history
// entry appended {created, created_by, author?, comment?, empty_layer? (true when no layer)};
// rootfs.diff_ids += the new diff_id. With `squash` the new layer replaces all the parent's:
// diff_ids = [new], and the parent's history entries are all marked empty_layer (the invariant
// "non-empty history entries == diff_ids" holds). Output is compact JSON with sorted keys, so
// the same inputs give the same bytes (and image ID).
// Manifest: schemaVersion 2 with the format's media types (OCI: image.manifest.v1 / config.v1 /
// layer.v1.tar[+gzip|+zstd]; Docker schema2: distribution.manifest.v2 / container.image.v1 /
// image.rootfs.diff.tar[.gzip]); the parent's layer descriptors (converted to the format's media
// types: a layer type the format cannot express, such as zstd in Docker schema2, is EINVAL) plus
// the new layer's, or only the new layer's with squash.
// Errors: EINVAL/EBADMSG naming what is wrong (unparseable parent config, bad rootfs, types).
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/commit/changes.h"
#include "strata/commit/compress.h"
#include "strata/oci/manifest.h"
#include "strata/store/digest.h"

namespace strata::commit {

enum class Format { kOci, kDocker };
// "oci" or "docker"; EINVAL otherwise.
Result<Format> parse_format(std::string_view name);

const char* manifest_media_type(Format f);
const char* config_media_type(Format f);
// The media type of a new layer blob; EINVAL for zstd in Docker schema2.
Result<std::string> layer_media_type(Format f, Compression c);

struct ConfigInputs {
  std::string parent_config;  // the parent's config blob
  std::vector<Change> changes;
  std::string created;  // RFC 3339
  std::string created_by;
  std::string author;                    // empty: none
  std::string comment;                   // empty: none
  std::optional<store::Digest> diff_id;  // the new layer, if any
  bool squash = false;
};

Result<std::string> make_config(const ConfigInputs& in);

// `layer`: the new layer's descriptor, if any.
Result<std::string> make_manifest(const oci::Manifest& parent, const oci::Descriptor& config,
                                  const std::optional<oci::Descriptor>& layer, bool squash,
                                  Format f);

// RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z") of a time in seconds since the epoch.
std::string rfc3339(int64_t seconds);

}  // namespace strata::commit
