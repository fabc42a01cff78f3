// SPDX-License-Identifier: Apache-2.0
#include "strata/whiteout/whiteout.h"

namespace strata::whiteout {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

bool is_whiteout_name(std::string_view name) {
  return starts_with(name, kPrefix) && name.size() > kPrefix.size() && name != kOpaqueMarker;
}

std::string_view whited_out(std::string_view name) { return name.substr(kPrefix.size()); }

std::string whiteout_name(std::string_view name) {
  std::string s(kPrefix);
  s += name;
  return s;
}

OpaqueValue parse_opaque(std::string_view v) {
  if (v == "y") return OpaqueValue::kOpaque;
  if (v == "x") return OpaqueValue::kHasXattrWhiteouts;
  return OpaqueValue::kNone;
}

bool is_invalid_component(std::string_view name) {
  return name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos ||
         name.find('\0') != std::string_view::npos || name.size() > 255;
}

bool is_private_xattr(std::string_view name, bool userxattr) {
  if (starts_with(name, "trusted.strata.") || starts_with(name, "user.strata.")) return true;
  return userxattr ? starts_with(name, "user.overlay.") : starts_with(name, "trusted.overlay.");
}

namespace {

std::string_view overlay_prefix(bool userxattr) { return userxattr ? "user.overlay." : "trusted.overlay."; }

bool is_strata_xattr(std::string_view name) {
  return starts_with(name, "trusted.strata.") || starts_with(name, "user.strata.");
}

}  // namespace

std::optional<std::string> escape_xattr(std::string_view name, bool userxattr) {
  if (is_strata_xattr(name)) return std::nullopt;
  std::string_view p = overlay_prefix(userxattr);
  if (!starts_with(name, p)) return std::string(name);
  std::string out(p);
  out += "overlay.";
  out += name.substr(p.size());
  return out;
}

std::optional<std::string> unescape_xattr(std::string_view real, bool userxattr) {
  if (is_strata_xattr(real)) return std::nullopt;
  std::string_view p = overlay_prefix(userxattr);
  if (!starts_with(real, p)) return std::string(real);
  std::string_view rest = real.substr(p.size());
  if (!starts_with(rest, "overlay.")) return std::nullopt;
  std::string out(p);
  out += rest.substr(8);
  return out;
}

}  // namespace strata::whiteout
