// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/image_config.h"

#include <time.h>

#include <nlohmann/json.hpp>

#include "strata/store/refs.h"

namespace strata::commit {
namespace {

using nlohmann::json;

constexpr const char* kOciLayerNonDist = "application/vnd.oci.image.layer.nondistributable.v1.tar";
constexpr const char* kOciLayerNonDistGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
constexpr const char* kDockerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

// A parent layer's media type in format `f`.
Result<std::string> convert_layer_type(const std::string& mt, Format f) {
  if (f == Format::kDocker) {
    if (mt == oci::kMediaTypeDockerLayer || mt == oci::kMediaTypeDockerLayerGzip ||
        mt == kDockerForeignGzip)
      return mt;
    if (mt == oci::kMediaTypeOciLayer) return std::string(oci::kMediaTypeDockerLayer);
    if (mt == oci::kMediaTypeOciLayerGzip) return std::string(oci::kMediaTypeDockerLayerGzip);
    if (mt == kOciLayerNonDistGzip) return std::string(kDockerForeignGzip);
    return make_error(EINVAL, "commit --format docker",
                      "the parent has a layer of type " + mt +
                          ", which Docker schema2 cannot express (use --format oci)");
  }
  if (mt == oci::kMediaTypeDockerLayer) return std::string(oci::kMediaTypeOciLayer);
  if (mt == oci::kMediaTypeDockerLayerGzip) return std::string(oci::kMediaTypeOciLayerGzip);
  if (mt == kDockerForeignGzip) return std::string(kOciLayerNonDistGzip);
  if (mt == oci::kMediaTypeOciLayer || mt == oci::kMediaTypeOciLayerGzip ||
      mt == oci::kMediaTypeOciLayerZstd || mt == kOciLayerNonDist || mt == kOciLayerNonDistGzip ||
      mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")
    return mt;
  return make_error(EINVAL, "commit", "the parent has a layer of unknown type '" + mt + "'");
}

json descriptor(const oci::Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.to_string()}, {"size", d.size}};
  if (!d.annotations.empty()) {
    json a = json::object();
    for (const auto& [k, v] : d.annotations) a[k] = v;
    j["annotations"] = std::move(a);
  }
  return j;
}

}  // namespace

Result<Format> parse_format(std::string_view name) {
  if (name == "oci") return Format::kOci;
  if (name == "docker") return Format::kDocker;
  return make_error(EINVAL, "commit --format", "'" + std::string(name) + "': oci or docker");
}

const char* manifest_media_type(Format f) {
  return f == Format::kOci ? store::kMediaTypeOciManifest : store::kMediaTypeDockerManifest;
}

const char* config_media_type(Format f) {
  return f == Format::kOci ? store::kMediaTypeOciConfig : oci::kMediaTypeDockerConfig;
}

Result<std::string> layer_media_type(Format f, Compression c) {
  if (f == Format::kOci) {
    switch (c) {
      case Compression::kGzip:
        return std::string(oci::kMediaTypeOciLayerGzip);
      case Compression::kZstd:
        return std::string(oci::kMediaTypeOciLayerZstd);
      case Compression::kNone:
        return std::string(oci::kMediaTypeOciLayer);
    }
  }
  switch (c) {
    case Compression::kGzip:
      return std::string(oci::kMediaTypeDockerLayerGzip);
    case Compression::kNone:
      return std::string(oci::kMediaTypeDockerLayer);
    case Compression::kZstd:
      break;
  }
  return make_error(EINVAL, "commit",
                    "Docker schema2 has no zstd layers (use --format oci or gzip)");
}

std::string rfc3339(int64_t seconds) {
  time_t t = static_cast<time_t>(seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<std::string> make_config(const ConfigInputs& in) {
  try {
    json cfg = json::parse(in.parent_config, nullptr, false);
    if (cfg.is_discarded() || !cfg.is_object())
      return make_error(EBADMSG, "commit", "the parent's config is not a JSON object");
    STRATA_TRY(apply_changes(&cfg["config"], in.changes));
    cfg["created"] = in.created;
    if (in.author.empty())
      cfg.erase("author");
    else
      cfg["author"] = in.author;

    json& rootfs = cfg["rootfs"];
    if (!rootfs.is_object())
      return make_error(EBADMSG, "commit", "the parent's config has no rootfs");
    rootfs["type"] = "layers";
    json& ids = rootfs["diff_ids"];
    if (ids.is_null()) ids = json::array();
    if (!ids.is_array())
      return make_error(EBADMSG, "commit", "the parent's rootfs.diff_ids is not an array");
    if (in.squash) ids = json::array();
    if (in.diff_id) ids.push_back(in.diff_id->to_string());

    json& hist = cfg["history"];
    if (hist.is_null()) hist = json::array();
    if (!hist.is_array())
      return make_error(EBADMSG, "commit", "the parent's history is not an array");
    if (in.squash) {
      for (auto& h : hist)
        if (h.is_object()) h["empty_layer"] = true;
    }
    json entry = {{"created", in.created}, {"created_by", in.created_by}};
    if (!in.author.empty()) entry["author"] = in.author;
    if (!in.comment.empty()) entry["comment"] = in.comment;
    if (!in.diff_id) entry["empty_layer"] = true;
    hist.push_back(std::move(entry));
    return cfg.dump();
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "commit", std::string("config: ") + e.what());
  }
}

Result<std::string> make_manifest(const oci::Manifest& parent, const oci::Descriptor& config,
                                  const std::optional<oci::Descriptor>& layer, bool squash,
                                  Format f) {
  try {
    json layers = json::array();
    if (!squash) {
      for (const auto& l : parent.layers) {
        oci::Descriptor d = l;
        STRATA_ASSIGN_OR_RETURN(mt, convert_layer_type(l.media_type, f));
        d.media_type = std::move(mt);
        layers.push_back(descriptor(d));
      }
    }
    if (layer) layers.push_back(descriptor(*layer));
    oci::Descriptor c = config;
    c.media_type = config_media_type(f);
    json m = {{"schemaVersion", 2},
              {"mediaType", manifest_media_type(f)},
              {"config", descriptor(c)},
              {"layers", layers}};
    return m.dump();
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "commit", std::string("manifest: ") + e.what());
  }
}

}  // namespace strata::commit
