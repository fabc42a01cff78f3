// SPDX-License-Identifier: Apache-2.0
// Refs: the named entries of ROOT/oci/index.json, the store's image names.
//
// A ref is an entry of index.json's "manifests" array whose annotation
// org.opencontainers.image.ref.name is the name (the OCI image layout convention that skopeo's and
// umoci's `oci:DIR:NAME` use). Names follow the OCI grammar: components of [A-Za-z0-9] joined by
// one of "-._:@+" or "--", separated by '/'
// ("docker.io/library/alpine:3.19" is one). At most one entry carries a given name: set_ref
// replaces. Entries without a name and fields strata does not know are preserved on rewrite.
//
// Operations (members of Store, see store.h): set_ref / remove_ref (need the StoreLock; rewrite
// index.json through write-temp + fsync + rename + fsync(dir)), resolve / list (lock-free reads).
// Errors: EINVAL for a bad name or descriptor, ENOENT for an unknown name, EBADMSG for an
// index.json that is not an OCI index. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "strata/store/digest.h"

namespace strata::store {

inline constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

inline constexpr const char* kMediaTypeOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kMediaTypeOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kMediaTypeOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kMediaTypeDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kMediaTypeDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

// An OCI content descriptor (the fields strata writes).
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::map<std::string, std::string> annotations;
};

struct Ref {
  std::string name;  // empty for an index.json entry without a name
  Descriptor descriptor;
};

// Whether `name` is a valid org.opencontainers.image.ref.name.
bool valid_ref_name(std::string_view name);

}  // namespace strata::store
