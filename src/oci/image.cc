// SPDX-License-Identifier: Apache-2.0
#include "strata/oci/image.h"

namespace strata::oci {

std::pair<std::string, std::string> split_name(std::string_view name) {
  // "REPO@sha256:..." (a registry image pulled by digest) has no tag.
  if (auto at = name.find('@'); at != std::string_view::npos) return {std::string(name.substr(0, at)), "<none>"};
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) {
    return {std::string(name), "<none>"};
  }
  return {std::string(name.substr(0, colon)), std::string(name.substr(colon + 1))};
}

Result<Image> load_image(const store::Store& store, const std::string& name, const Descriptor& d) {
  auto fail = [&](const Error& e) { return make_error(e.err, "image " + (name.empty() ? d.digest.to_string() : name), e.message()); };
  Image img;
  img.name = name;
  img.manifest_desc = d;
  auto body = store.read_blob(d.digest);
  if (!body) return fail(body.error());
  auto m = parse_manifest(*body, d.media_type);
  if (!m) return fail(m.error());
  img.manifest = std::move(*m);
  img.config_digest = img.manifest.config.digest;
  auto cfg = store.read_blob(img.config_digest);
  if (!cfg) return fail(cfg.error());
  img.config_raw = std::move(*cfg);
  auto c = parse_config(img.config_raw);
  if (!c) return fail(c.error());
  img.config = std::move(*c);
  for (size_t i = 0; i < img.config.diff_ids.size(); ++i) {
    auto meta = store.layer_meta(img.config.diff_ids[i]);
    if (meta) img.size += meta->size;
    else if (i < img.manifest.layers.size()) img.size += static_cast<uint64_t>(img.manifest.layers[i].size);
  }
  return img;
}

Result<std::vector<Image>> list_images(const store::Store& store) {
  STRATA_ASSIGN_OR_RETURN(refs, store.list());
  std::vector<Image> out;
  for (const auto& r : refs) {
    if (r.name.empty() || !is_manifest_media_type(r.descriptor.media_type)) continue;
    STRATA_ASSIGN_OR_RETURN(img, load_image(store, r.name, r.descriptor));
    out.push_back(std::move(img));
  }
  return out;
}

Result<store::Ref> resolve_name(const store::Store& store, std::string_view query) {
  std::string q(query);
  std::vector<std::string> names = {q};
  bool has_tag = split_name(q).second != "<none>";
  if (!has_tag) names.push_back(q + ":latest");
  for (const char* prefix : {"localhost/", "docker.io/library/", "docker.io/"}) {
    names.push_back(prefix + q);
    if (!has_tag) names.push_back(prefix + q + ":latest");
  }
  for (const auto& n : names) {
    auto d = store.resolve(n);
    if (d) return store::Ref{n, std::move(*d)};
  }
  return make_error(ENOENT, "image", q + ": no such image");
}

Result<Image> find_image(const store::Store& store, std::string_view query) {
  std::string q(query);
  if (auto r = resolve_name(store, q)) return load_image(store, r->name, r->descriptor);
  std::string hex = q.rfind("sha256:", 0) == 0 ? q.substr(7) : q;
  if (hex.size() >= 4 && hex.find_first_not_of("0123456789abcdef") == std::string::npos) {
    STRATA_ASSIGN_OR_RETURN(all, list_images(store));
    const Image* hit = nullptr;
    for (const auto& img : all) {
      bool match = img.config_digest.hex.rfind(hex, 0) == 0 || img.manifest_desc.digest.hex == hex;
      if (!match) continue;
      if (hit && hit->config_digest != img.config_digest) return make_error(EINVAL, "image", q + ": ambiguous ID");
      if (!hit) hit = &img;
    }
    if (hit) return *hit;
    // Untagged images (strata commit without a name) are unnamed index.json entries: by ID only.
    STRATA_ASSIGN_OR_RETURN(refs, store.list());
    for (const auto& r : refs) {
      if (!r.name.empty() || !is_manifest_media_type(r.descriptor.media_type)) continue;
      auto img = load_image(store, "", r.descriptor);
      if (!img) continue;
      if (img->config_digest.hex.rfind(hex, 0) == 0 || r.descriptor.digest.hex == hex) return *img;
    }
  }
  return make_error(ENOENT, "image", q + ": no such image");
}

}  // namespace strata::oci
