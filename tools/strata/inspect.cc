// SPDX-License-Identifier: Apache-2.0
// strata inspect IMAGE...: docker-image-inspect-like JSON.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common.h"
#include "strata/oci/image.h"
#include "strata/oci/pull.h"

namespace strata::tool {

namespace {
constexpr const char* kUsage =
    "Usage: strata inspect IMAGE...\n"
    "\n"
    "Print a JSON array with one object per image, like 'docker image inspect': Id, RepoTags,\n"
    "RepoDigests, Created, Architecture, Os, Config, RootFS, History, Size.\n"
    "IMAGE: a name (REPO[:TAG]) or an image ID (prefix).\n";
}

int cmd_inspect(const Globals& g, const Args& args) {
  std::vector<std::string> names;
  for (const auto& a : args) {
    if (is_help(a)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a.size() > 1 && a[0] == '-') return usage_error("inspect", "unknown option '" + a + "'");
    names.push_back(a);
  }
  if (names.empty()) return usage_error("inspect", "missing IMAGE");
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  auto all = oci::list_images(*st);
  if (!all) return fail(all.error());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& n : names) {
    auto img = oci::find_image(*st, n);
    if (!img) return fail(img.error());
    nlohmann::json tags = nlohmann::json::array(), digests = nlohmann::json::array();
    for (const auto& other : *all) {
      if (other.config_digest != img->config_digest) continue;
      tags.push_back(other.name);
      auto rd = other.manifest_desc.annotations.find(oci::kRepoDigestAnnotation);
      std::string d = oci::split_name(other.name).first + "@" +
                      (rd != other.manifest_desc.annotations.end() ? rd->second
                                                                   : other.manifest_desc.digest.to_string());
      if (std::find(digests.begin(), digests.end(), d) == digests.end()) digests.push_back(d);
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& d : img->config.diff_ids) layers.push_back(d.to_string());
    nlohmann::json o = {
        {"Id", img->config_digest.to_string()},
        {"RepoTags", tags},
        {"RepoDigests", digests},
        {"Created", img->config.created},
        {"Architecture", img->config.architecture},
        {"Os", img->config.os},
        {"Config", nlohmann::json::parse(img->config.config_json, nullptr, false)},
        {"RootFS", {{"Type", "layers"}, {"Layers", layers}}},
        {"History", nlohmann::json::parse(img->config.history_json, nullptr, false)},
        {"Size", img->size},
        {"Manifest", {{"MediaType", img->manifest_desc.media_type}, {"Digest", img->manifest_desc.digest.to_string()}}},
    };
    if (!img->config.variant.empty()) o["Variant"] = img->config.variant;
    out.push_back(std::move(o));
  }
  std::printf("%s\n", out.dump(4).c_str());
  return 0;
}

}  // namespace strata::tool
