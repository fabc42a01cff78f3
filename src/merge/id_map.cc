// SPDX-License-Identifier: Apache-2.0
#include "strata/merge/id_map.h"

#include <sys/stat.h>

#include <charconv>
#include <limits>

namespace strata::merge {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) return out;
    start = p + 1;
  }
}

template <typename T>
bool parse_num(std::string_view s, int base, T* out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }

uint32_t lookup(const std::vector<IdRange>& ranges, uint32_t id, bool to_view, uint32_t overflow) {
  if (ranges.empty()) return id;
  for (const auto& r : ranges) {
    uint32_t from = to_view ? r.disk : r.view;
    uint32_t to = to_view ? r.view : r.disk;
    if (id >= from && id - from < r.count) return to + (id - from);
  }
  return overflow;
}

}  // namespace

Result<std::vector<IdRange>> IdMap::parse_ranges(std::string_view what, std::string_view spec) {
  std::string opt(what);
  if (spec.empty()) return make_error(EINVAL, opt, "is empty (wants ID:ID:COUNT[:ID:ID:COUNT...])");
  auto fields = split(spec, ':');
  if (fields.size() % 3 != 0)
    return make_error(EINVAL, opt,
                      "wants ID:ID:COUNT triples (id on disk, id shown, count); got " +
                          std::to_string(fields.size()) + " fields in '" + std::string(spec) + "'");
  std::vector<IdRange> out;
  for (size_t i = 0; i < fields.size(); i += 3) {
    uint32_t v[3];
    for (size_t k = 0; k < 3; ++k) {
      if (!parse_num(fields[i + k], 10, &v[k]))
        return make_error(EINVAL, opt, "'" + std::string(fields[i + k]) + "' is not an id or count (0..4294967295)");
    }
    IdRange r{v[0], v[1], v[2]};
    if (r.count == 0) return make_error(EINVAL, opt, "a range of 0 ids in '" + std::string(spec) + "'");
    constexpr uint64_t kLimit = uint64_t{std::numeric_limits<uint32_t>::max()} + 1;
    if (uint64_t{r.disk} + r.count > kLimit || uint64_t{r.view} + r.count > kLimit)
      return make_error(EINVAL, opt, "a range goes past id 4294967295 in '" + std::string(spec) + "'");
    for (const auto& o : out) {
      if (overlaps(o.disk, o.count, r.disk, r.count) || overlaps(o.view, o.count, r.view, r.count))
        return make_error(EINVAL, opt, "ranges overlap in '" + std::string(spec) + "'");
    }
    out.push_back(r);
  }
  return out;
}

uid_t IdMap::uid_to_view(uid_t disk) const {
  if (squash_uid) return *squash_uid;
  return lookup(uids, disk, true, overflow_uid);
}

gid_t IdMap::gid_to_view(gid_t disk) const {
  if (squash_gid) return *squash_gid;
  return lookup(gids, disk, true, overflow_gid);
}

uid_t IdMap::uid_to_disk(uid_t view) const { return lookup(uids, view, false, overflow_uid); }

gid_t IdMap::gid_to_disk(gid_t view) const { return lookup(gids, view, false, overflow_gid); }

}  // namespace strata::merge
