// SPDX-License-Identifier: Apache-2.0
#include "strata/oci/manifest.h"

#include <nlohmann/json.hpp>

namespace strata::oci {
namespace {

using json = nlohmann::json;

Error bad(const char* op, std::string detail) { return make_error(EBADMSG, op, std::move(detail)); }

Result<json> parse_json(std::string_view body, const char* op) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad(op, "not valid JSON");
  if (!j.is_object()) return bad(op, "not a JSON object");
  return j;
}

std::string get_string(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Descriptor> parse_descriptor(const json& j, const char* op, const std::string& what) {
  if (!j.is_object()) return bad(op, what + ": descriptor is not an object");
  Descriptor d;
  d.media_type = get_string(j, "mediaType");
  auto dg = store::Digest::parse(get_string(j, "digest"));
  if (!dg) return bad(op, what + ": " + dg.error().message());
  d.digest = *dg;
  auto sz = j.find("size");
  if (sz == j.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0) return bad(op, what + ": bad size");
  d.size = sz->get<int64_t>();
  if (auto an = j.find("annotations"); an != j.end() && an->is_object()) {
    for (auto it = an->begin(); it != an->end(); ++it)
      if (it.value().is_string()) d.annotations[it.key()] = it.value().get<std::string>();
  }
  return d;
}

}  // namespace

bool is_index_media_type(std::string_view mt) {
  return mt == store::kMediaTypeOciIndex || mt == store::kMediaTypeDockerManifestList;
}
bool is_manifest_media_type(std::string_view mt) {
  return mt == store::kMediaTypeOciManifest || mt == store::kMediaTypeDockerManifest;
}
bool is_layer_media_type(std::string_view mt) {
  return mt == kMediaTypeOciLayer || mt == kMediaTypeOciLayerGzip || mt == kMediaTypeOciLayerZstd ||
         mt == kMediaTypeDockerLayer || mt == kMediaTypeDockerLayerGzip ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
         mt == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" ||
         mt == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
}

std::string Platform::to_string() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Result<Platform> parse_platform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    auto slash = text.find('/', pos);
    parts.emplace_back(text.substr(pos, slash == std::string_view::npos ? slash : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) return make_error(EINVAL, "parse platform", std::string(text) + ": want os/arch[/variant]");
  for (auto& s : parts)
    if (s.empty()) return make_error(EINVAL, "parse platform", std::string(text) + ": empty component");
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Platform host_platform() {
  Platform p{"linux", "amd64", ""};
#if defined(__x86_64__)
  p.architecture = "amd64";
#elif defined(__aarch64__)
  p.architecture = "arm64";
#elif defined(__i386__)
  p.architecture = "386";
#elif defined(__arm__)
  p.architecture = "arm";
  p.variant = "v7";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  p.architecture = "ppc64le";
#elif defined(__s390x__)
  p.architecture = "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  p.architecture = "riscv64";
#endif
  return p;
}

bool platform_matches(const Platform& have, const Platform& want) {
  if (have.os != want.os || have.architecture != want.architecture) return false;
  if (want.variant.empty()) return true;
  auto norm = [&](const std::string& v) { return have.architecture == "arm64" && v == "v8" ? std::string() : v; };
  return norm(have.variant) == norm(want.variant);
}

Result<std::pair<ManifestKind, std::string>> detect_manifest(std::string_view body, std::string_view media_type) {
  auto j = parse_json(body, "parse manifest");
  if (!j) return j.take_error();
  std::string mt = get_string(*j, "mediaType");
  if (mt.empty()) mt = std::string(media_type);
  if (mt.empty()) {
    if (j->contains("manifests")) mt = store::kMediaTypeOciIndex;
    else if (j->contains("config")) mt = store::kMediaTypeOciManifest;
  }
  if (mt == kMediaTypeDockerSchema1 || mt == kMediaTypeDockerSchema1Signed ||
      (j->contains("schemaVersion") && (*j)["schemaVersion"] == 1)) {
    return make_error(EPROTONOSUPPORT, "parse manifest", "Docker schema 1 manifests are not supported");
  }
  if (is_index_media_type(mt)) return std::make_pair(ManifestKind::kIndex, mt);
  if (is_manifest_media_type(mt)) return std::make_pair(ManifestKind::kManifest, mt);
  return bad("parse manifest", "unknown media type '" + mt + "'");
}

Result<Manifest> parse_manifest(std::string_view body, std::string_view media_type) {
  const char* op = "parse manifest";
  auto j = parse_json(body, op);
  if (!j) return j.take_error();
  Manifest m;
  m.media_type = get_string(*j, "mediaType");
  if (m.media_type.empty()) m.media_type = media_type.empty() ? store::kMediaTypeOciManifest : std::string(media_type);
  if (!is_manifest_media_type(m.media_type)) return bad(op, "not an image manifest: " + m.media_type);
  auto cfg = j->find("config");
  if (cfg == j->end()) return bad(op, "no config descriptor");
  auto c = parse_descriptor(*cfg, op, "config");
  if (!c) return c.take_error();
  m.config = *c;
  auto layers = j->find("layers");
  if (layers == j->end() || !layers->is_array()) return bad(op, "no layers array");
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = parse_descriptor((*layers)[i], op, "layer " + std::to_string(i));
    if (!d) return d.take_error();
    if (!is_layer_media_type(d->media_type)) return bad(op, "layer " + std::to_string(i) + ": unsupported media type '" + d->media_type + "'");
    m.layers.push_back(std::move(*d));
  }
  return m;
}

Result<Index> parse_index(std::string_view body, std::string_view media_type) {
  const char* op = "parse index";
  auto j = parse_json(body, op);
  if (!j) return j.take_error();
  Index ix;
  ix.media_type = get_string(*j, "mediaType");
  if (ix.media_type.empty()) ix.media_type = media_type.empty() ? store::kMediaTypeOciIndex : std::string(media_type);
  auto ms = j->find("manifests");
  if (ms == j->end() || !ms->is_array()) return bad(op, "no manifests array");
  for (size_t i = 0; i < ms->size(); ++i) {
    const json& e = (*ms)[i];
    auto d = parse_descriptor(e, op, "manifest " + std::to_string(i));
    if (!d) return d.take_error();
    IndexEntry entry{std::move(*d), std::nullopt};
    if (auto p = e.find("platform"); p != e.end() && p->is_object()) {
      entry.platform = Platform{get_string(*p, "os"), get_string(*p, "architecture"), get_string(*p, "variant")};
    }
    ix.manifests.push_back(std::move(entry));
  }
  return ix;
}

Result<ImageConfig> parse_config(std::string_view body) {
  const char* op = "parse config";
  auto j = parse_json(body, op);
  if (!j) return j.take_error();
  ImageConfig c;
  c.created = get_string(*j, "created");
  c.os = get_string(*j, "os");
  c.architecture = get_string(*j, "architecture");
  c.variant = get_string(*j, "variant");
  auto rootfs = j->find("rootfs");
  if (rootfs == j->end() || !rootfs->is_object()) return bad(op, "no rootfs");
  if (get_string(*rootfs, "type") != "layers") return bad(op, "rootfs.type is not \"layers\"");
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array()) return bad(op, "no rootfs.diff_ids");
  for (const auto& id : *ids) {
    auto d = store::Digest::parse(id.is_string() ? id.get<std::string>() : std::string());
    if (!d) return bad(op, "rootfs.diff_ids: " + d.error().message());
    c.diff_ids.push_back(*d);
  }
  auto cfg = j->find("config");
  c.config_json = cfg != j->end() && cfg->is_object() ? cfg->dump() : "{}";
  auto hist = j->find("history");
  c.history_json = hist != j->end() && hist->is_array() ? hist->dump() : "[]";
  return c;
}

Result<IndexEntry> select_platform(const Index& index, const Platform& want) {
  std::string seen;
  for (const auto& e : index.manifests) {
    if (!e.platform) continue;
    if (platform_matches(*e.platform, want)) return e;
    seen += (seen.empty() ? "" : ", ") + e.platform->to_string();
  }
  return make_error(ENOENT, "select platform",
                    "no manifest for " + want.to_string() + " (available: " + (seen.empty() ? "none" : seen) + ")");
}

std::string manifest_to_json(const Manifest& m) {
  auto desc = [](const Descriptor& d) {
    return json{{"mediaType", d.media_type}, {"digest", d.digest.to_string()}, {"size", d.size}};
  };
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(desc(l));
  json j = {{"schemaVersion", 2}, {"mediaType", m.media_type}, {"config", desc(m.config)}, {"layers", layers}};
  return j.dump();
}

}  // namespace strata::oci
