// SPDX-License-Identifier: Apache-2.0
// IdMap: fuse-overlayfs's ownership options as one pure object (no I/O): `uidmapping=`, `gidmapping=`,
// `squash_to_root`, `squash_to_uid=`, `squash_to_gid=`, and the "UID:GID:MODE" value of `xattr_permissions=`.
//
// Two sides: the ids stored in the layers ("disk") and the ids the mount reports and is given ("view").
// `uidmapping=D:V:L[:D:V:L...]` (fuse-overlayfs's order; containers/storage calls the fields container-id,
// host-id, size): disk ids D..D+L-1 are reported as V..V+L-1.
//   to_view (stat replies): squash first (squash_to_uid/gid, else squash_to_root: 0); then the ranges; a disk id
//     outside every range reports as the overflow id (65534 unless /proc/sys/kernel/overflow{u,g}id says other).
//   to_disk (chown, the owner of a new object): the ranges backwards; a view id outside every range is stored as
//     the overflow id (what fuse-overlayfs does). Squash options do not change this direction.
// Without ranges an id passes unchanged (apart from squash). Ranges may not overlap on either side.
// Thread-safety: immutable after parsing; every method is const.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/whiteout/override_stat.h"

namespace strata::merge {

struct IdRange {
  uint32_t disk = 0;
  uint32_t view = 0;
  uint32_t count = 0;
  bool operator==(const IdRange&) const = default;
};

class IdMap {
 public:
  // "D:V:L[:D:V:L...]" (decimal). Errors (EINVAL) name the option (`what`) and the offending field.
  static Result<std::vector<IdRange>> parse_ranges(std::string_view what, std::string_view spec);

  std::vector<IdRange> uids;
  std::vector<IdRange> gids;
  std::optional<uint32_t> squash_uid;  // squash_to_uid=, or 0 for squash_to_root
  std::optional<uint32_t> squash_gid;
  uint32_t overflow_uid = 65534;
  uint32_t overflow_gid = 65534;

  // No option given: every id passes unchanged (the engine then skips the translation).
  bool identity() const { return uids.empty() && gids.empty() && !squash_uid && !squash_gid; }
  bool squashing() const { return squash_uid || squash_gid; }

  uid_t uid_to_view(uid_t disk) const;
  gid_t gid_to_view(gid_t disk) const;
  uid_t uid_to_disk(uid_t view) const;
  gid_t gid_to_disk(gid_t view) const;
};

// The "UID:GID:MODE" value of `xattr_permissions=` (security.* for 1, user.* for 2) and its helpers: the on-disk
// vocabulary shared with the unpacker and the commit, in whiteout/override_stat.h.
using whiteout::apply_stat_override;
using whiteout::format_stat_override;
using whiteout::kOverrideStatPrivileged;
using whiteout::kOverrideStatUser;
using whiteout::parse_stat_override;
using whiteout::StatOverride;

}  // namespace strata::merge
