// SPDX-License-Identifier: Apache-2.0
#include "strata/whiteout/override_stat.h"

#include <sys/stat.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace strata::whiteout {
namespace {

template <typename T>
bool parse_num(std::string_view s, int base, T* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

std::optional<StatOverride> parse_stat_override(std::string_view value) {
  // Some writers include the terminating NUL in the value.
  while (!value.empty() && value.back() == '\0') value.remove_suffix(1);
  std::string_view f[3];
  for (int i = 0; i < 3; ++i) {
    size_t p = value.find(':');
    if (p == std::string_view::npos && i < 2) return std::nullopt;
    f[i] = value.substr(0, p);
    value = p == std::string_view::npos ? std::string_view() : value.substr(p + 1);
  }
  long long uid = 0, gid = 0;
  unsigned mode = 0;
  if (!parse_num(f[0], 10, &uid) || !parse_num(f[1], 10, &gid) || !parse_num(f[2], 8, &mode))
    return std::nullopt;
  constexpr long long kMax = std::numeric_limits<uint32_t>::max();
  if (uid > kMax || gid > kMax) return std::nullopt;
  StatOverride o;
  if (uid >= 0) o.uid = static_cast<uid_t>(uid);
  if (gid >= 0) o.gid = static_cast<gid_t>(gid);
  o.mode = static_cast<mode_t>(mode & 07777);
  return o;
}

std::string format_stat_override(uid_t uid, gid_t gid, mode_t mode) {
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%u:%u:%o", static_cast<unsigned>(uid),
                        static_cast<unsigned>(gid), static_cast<unsigned>(mode & 07777));
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

void apply_stat_override(const StatOverride& o, uid_t* uid, gid_t* gid, mode_t* mode) {
  if (o.uid) *uid = *o.uid;
  if (o.gid) *gid = *o.gid;
  *mode = (*mode & S_IFMT) | o.mode;
}

bool is_override_stat_xattr(std::string_view name) {
  constexpr std::string_view kSuffix = ".fuseoverlayfs.override_stat";
  if (name == kOverrideStatContainers) return true;
  if (name.size() <= kSuffix.size() || name.substr(name.size() - kSuffix.size()) != kSuffix)
    return false;
  // Exactly NAMESPACE + suffix: one dot before it.
  return name.substr(0, name.size() - kSuffix.size()).find('.') == std::string_view::npos;
}

}  // namespace strata::whiteout
