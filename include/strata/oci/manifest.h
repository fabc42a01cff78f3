// SPDX-License-Identifier: Apache-2.0
// oci/manifest: media types and the parsed forms of manifests, indexes and image configs (OCI image
// spec v1 and Docker schema2, which differ only in media types), plus platform selection.
//
// Parsing is strict about what strata relies on and lenient about the rest: a manifest needs a
// config descriptor and a layers array of descriptors (mediaType, digest in canonical sha256 form,
// size >= 0); an index needs a manifests array; a config needs rootfs.type "layers" and
// rootfs.diff_ids. Unknown fields are ignored. A body without "mediaType" (umoci and skopeo omit it
// in OCI manifests) takes the media type the caller learned elsewhere (a descriptor, a
// Content-Type), else is recognised by shape ("manifests" = index, "config" = manifest).
// Schema 1 manifests are refused (EPROTONOSUPPORT). Errors: EBADMSG with op "parse manifest" /
// "parse index" / "parse config" and a detail naming what is wrong. Nothing throws (nlohmann-json
// exceptions are caught inside). Thread-safety: plain values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/store/refs.h"

namespace strata::oci {

using store::Descriptor;

inline constexpr const char* kMediaTypeOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* kMediaTypeOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* kMediaTypeOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* kMediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kMediaTypeDockerLayer = "application/vnd.docker.image.rootfs.diff.tar";
inline constexpr const char* kMediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr const char* kMediaTypeDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr const char* kMediaTypeDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

enum class ManifestKind { kManifest, kIndex };

bool is_index_media_type(std::string_view mt);
bool is_manifest_media_type(std::string_view mt);
// Layer media types strata can apply (tar, gzip, zstd; OCI, Docker and the non-distributable forms).
bool is_layer_media_type(std::string_view mt);

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;  // may be empty
  std::string to_string() const;
};

// "os/arch[/variant]"; EINVAL when malformed.
Result<Platform> parse_platform(std::string_view text);
// This machine's platform (linux/amd64, linux/arm64/v8 ...), as Go's GOOS/GOARCH name them.
Platform host_platform();
// Whether an index entry's platform satisfies `want`. An empty variant in `want` accepts any; the
// arm64 "v8" variant and an absent variant are the same thing.
bool platform_matches(const Platform& have, const Platform& want);

struct IndexEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;
};

struct Index {
  std::string media_type;
  std::vector<IndexEntry> manifests;
};

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageConfig {
  std::string created;  // RFC 3339 or empty
  std::string os;
  std::string architecture;
  std::string variant;
  std::vector<store::Digest> diff_ids;
  std::string config_json;   // the "config" object (Env, Cmd, ...) as JSON text, "{}" when absent
  std::string history_json;  // the "history" array as JSON text, "[]" when absent
};

// Which kind a manifest body is; `media_type` is what the caller knows (may be empty). The returned
// string is the resolved media type.
Result<std::pair<ManifestKind, std::string>> detect_manifest(std::string_view body, std::string_view media_type);
Result<Manifest> parse_manifest(std::string_view body, std::string_view media_type = {});
Result<Index> parse_index(std::string_view body, std::string_view media_type = {});
Result<ImageConfig> parse_config(std::string_view body);

// The entry of `index` for `want`: the first whose platform matches. ENOENT (naming the platforms
// available) when none does.
Result<IndexEntry> select_platform(const Index& index, const Platform& want);

// Serialize a manifest (used to synthesize one for docker-archive sources).
std::string manifest_to_json(const Manifest& m);

}  // namespace strata::oci
