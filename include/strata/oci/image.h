// SPDX-License-Identifier: Apache-2.0
// oci/image: the images of a store as the CLI shows them — each ref of index.json resolved to its
// manifest and config.
//
// find_image() accepts, in this order: an exact ref name; the name plus ":latest"; "localhost/" plus
// the name (plus ":latest"); "docker.io/library/" and "docker.io/" likewise; a config digest ("sha256:HEX") or a
// prefix of at least 4 hex digits of it (the IMAGE ID); a manifest digest. An ID prefix matching
// two different images is EINVAL (ambiguous); nothing matching is ENOENT.
// Errors: Result; a ref whose manifest or config is missing or unparseable is an error naming it
// (list_images skips nothing silently). Thread-safety: plain values; lock-free reads of the store.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/oci/manifest.h"
#include "strata/store/store.h"

namespace strata::oci {

struct Image {
  std::string name;          // the ref name ("localhost/busybox:1"), empty for a bare ID lookup
  Descriptor manifest_desc;  // what the ref points at
  Manifest manifest;
  store::Digest config_digest;
  ImageConfig config;
  std::string config_raw;
  uint64_t size = 0;  // unpacked size: the layers' uncompressed sizes (blob sizes where unknown)
};

// "REPO:TAG" split at the last ':' after the last '/' ("<none>" when absent).
std::pair<std::string, std::string> split_name(std::string_view name);

Result<Image> load_image(const store::Store& store, const std::string& name, const Descriptor& d);
Result<std::vector<Image>> list_images(const store::Store& store);
Result<Image> find_image(const store::Store& store, std::string_view query);
// The ref a name query means, trying the names find_image() tries (not IDs), whatever the ref points
// at (a manifest or an index). ENOENT when no ref has any of those names.
Result<store::Ref> resolve_name(const store::Store& store, std::string_view query);

}  // namespace strata::oci
