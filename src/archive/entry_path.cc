// SPDX-License-Identifier: Apache-2.0
#include "strata/archive/entry_path.h"

#include <cstdio>

namespace strata::archive {

std::string EntryPath::prefix(size_t n) const {
  std::string out;
  for (size_t i = 0; i < n && i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

std::string quote_name(std::string_view name) {
  constexpr size_t kMax = 300;
  std::string out = "'";
  for (size_t i = 0; i < name.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c > 0x7e || c == '\\' || c == '\'') {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (name.size() > kMax) out += "...";
  out += "'";
  return out;
}

Result<EntryPath> parse_entry_path(std::string_view name) {
  if (!name.empty() && name[0] == '/') {
    // `umoci insert SRC /` names the root "/": like ".", it is the layer root. Any other absolute name is refused.
    bool root_only = true;
    for (size_t pos = 0; pos <= name.size() && root_only;) {
      size_t slash = name.find('/', pos);
      if (slash == std::string_view::npos) slash = name.size();
      std::string_view comp = name.substr(pos, slash - pos);
      root_only = comp.empty() || comp == ".";
      pos = slash + 1;
    }
    if (!root_only) return make_error(EINVAL, "unpack", quote_name(name) + ": absolute path");
    return EntryPath{};
  }
  EntryPath p;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view comp = name.substr(pos, slash - pos);
    if (comp == "..") return make_error(EINVAL, "unpack", quote_name(name) + ": '..' component");
    if (comp.find('\0') != std::string_view::npos)
      return make_error(EINVAL, "unpack", quote_name(name) + ": NUL byte in name");
    if (!comp.empty() && comp != ".") p.parts.emplace_back(comp);
    pos = slash + 1;
  }
  p.joined = p.prefix(p.parts.size());
  return p;
}

}  // namespace strata::archive
