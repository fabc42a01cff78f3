// SPDX-License-Identifier: Apache-2.0
// strata images: the images of the store as a table or JSON.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common.h"
#include "strata/oci/image.h"

namespace strata::tool {

namespace {
constexpr const char* kUsage =
    "Usage: strata images [--format table|json] [-q]\n"
    "\n"
    "List the images in the store: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE.\n"
    "  --format json   one JSON array (Repository, Tag, Id, Digest, Created, Size)\n"
    "  -q, --quiet     image IDs only\n";
}

int cmd_images(const Globals& g, const Args& args) {
  std::string format = "table";
  bool quiet = false;
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    if (is_help(args[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (take_value(args, i, "--format", &format, &missing)) {
      if (missing) return usage_error("images", "--format needs a value");
      continue;
    }
    if (args[i] == "-q" || args[i] == "--quiet") quiet = true;
    else return usage_error("images", "unexpected argument '" + args[i] + "'");
  }
  if (format != "table" && format != "json") return usage_error("images", "--format is table or json");
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  auto images = oci::list_images(*st);
  if (!images) return fail(images.error());
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& img : *images) {
      auto [repo, tag] = oci::split_name(img.name);
      out.push_back({{"Repository", repo}, {"Tag", tag}, {"Id", img.config_digest.to_string()},
                     {"Digest", img.manifest_desc.digest.to_string()}, {"Created", img.config.created},
                     {"Size", img.size}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  if (quiet) {
    for (const auto& img : *images) std::printf("%s\n", img.config_digest.hex.substr(0, 12).c_str());
    return 0;
  }
  size_t w = 10;
  for (const auto& img : *images) w = std::max(w, oci::split_name(img.name).first.size());
  std::printf("%-*s  %-10s  %-12s  %-16s  %s\n", static_cast<int>(w), "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
  for (const auto& img : *images) {
    auto [repo, tag] = oci::split_name(img.name);
    std::string age = human_age(img.config.created);
    std::printf("%-*s  %-10s  %-12s  %-16s  %s\n", static_cast<int>(w), repo.c_str(), tag.c_str(),
                img.config_digest.hex.substr(0, 12).c_str(), age.empty() ? "N/A" : age.c_str(),
                human_size(img.size).c_str());
  }
  return 0;
}

}  // namespace strata::tool
