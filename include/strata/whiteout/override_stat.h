// SPDX-License-Identifier: Apache-2.0
// whiteout/override_stat: fuse-overlayfs's record of an owner and mode that could not be applied to
// the real file. Pure functions, no I/O.
//
// fuse-overlayfs keeps it in `security.fuseoverlayfs.override_stat` (xattr_permissions=1) or
// `user.fuseoverlayfs.override_stat` (=2); containers/storage writes the same form as
// `user.containers.override_stat` (ignore_chown_errors, force_mask). The value is "UID:GID:MODE":
// ids decimal (the layer's ids), MODE octal. Readers keep the permission bits (07777) of MODE and
// the file type of the real object; fuse-overlayfs 1.10 sometimes writes the type bits too, a
// negative id ("-1", another 1.10 habit) means "the real one", and trailing ":..." fields of newer
// writers are ignored.
//
// strata writes the user.* form everywhere an owner could not be applied: stratafs under
// xattr_permissions=2, `strata pull` (the unpacker's record_owner) and the layers/ copy of `strata
// commit`; `strata commit` reads it back as the tar owner and mode. The kernel refuses user.*
// xattrs on symlinks and devices: those keep their real owner. fuse-overlayfs honours the xattr
// only in a layer whose root directory carries one, so every writer also marks the layer root. None
// of these names is ever data of an image: a layer tar may not plant one (the unpacker drops them)
// and a commit never writes one into a tar.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace strata::whiteout {

inline constexpr const char* kOverrideStatPrivileged = "security.fuseoverlayfs.override_stat";
inline constexpr const char* kOverrideStatUser = "user.fuseoverlayfs.override_stat";
inline constexpr const char* kOverrideStatContainers = "user.containers.override_stat";

struct StatOverride {
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  mode_t mode = 0;  // permission bits only
};

// nullopt when the value is not "INT:INT:OCTAL[:...]".
std::optional<StatOverride> parse_stat_override(std::string_view value);
// "UID:GID:MODE", MODE's permission bits only.
std::string format_stat_override(uid_t uid, gid_t gid, mode_t mode);
// Apply a parsed override to real attributes (type bits kept).
void apply_stat_override(const StatOverride& o, uid_t* uid, gid_t* gid, mode_t* mode);

// `*.fuseoverlayfs.override_stat` in any namespace, and `user.containers.override_stat`: an owner
// record of a union filesystem, never a user's or an image's xattr.
bool is_override_stat_xattr(std::string_view name);

}  // namespace strata::whiteout
