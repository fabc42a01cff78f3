// SPDX-License-Identifier: Apache-2.0
#include "containers.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace strata::tool {

namespace fs = std::filesystem;

Result<std::vector<ContainerUse>> container_uses(const store::Store& store) {
  std::string dir = store.root_path() + "/containers";
  std::vector<ContainerUse> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return make_error(ec.value(), "read containers", dir);
  }
  for (const auto& e : it) {
    std::string state = e.path().string() + "/state.json";
    if (!fs::exists(fs::symlink_status(state, ec))) continue;
    std::ifstream f(state);
    if (!f.is_open()) return make_error(EIO, "read container state", state);
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return make_error(EBADMSG, "read container state", state);
    ContainerUse c;
    c.name = e.path().filename().string();
    if (auto im = j.find("image"); im != j.end() && im->is_string()) c.image = *im;
    if (auto id = j.find("image_id"); id != j.end() && id->is_string()) {
      auto d = store::Digest::parse(id->get<std::string>());
      if (!d) return make_error(EBADMSG, "read container state", state + ": bad image_id");
      c.image_id = *d;
    }
    if (auto ls = j.find("layers"); ls != j.end() && ls->is_array()) {
      for (const auto& l : *ls) {
        // STORE/layers/<hex>/diff
        fs::path p = l.is_string() ? fs::path(l.get<std::string>()) : fs::path();
        auto d = store::Digest::from_hex(p.parent_path().filename().string());
        if (!d) return make_error(EBADMSG, "read container state", state + ": bad layer path");
        c.layers.insert(*d);
      }
    }
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const ContainerUse& a, const ContainerUse& b) { return a.name < b.name; });
  return out;
}

}  // namespace strata::tool
