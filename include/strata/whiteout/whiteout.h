// SPDX-License-Identifier: Apache-2.0
// whiteout: the on-disk vocabulary shared with Linux overlayfs and fuse-overlayfs. Pure functions, no I/O.
//
// Whiteout (an entry that hides the same name in lower layers):
//   written: a character device 0/0 (what the kernel writes); where mknod is refused, an empty `.wh.NAME` file.
//   read:    a character device 0/0; a `.wh.NAME` entry; a zero-size regular file carrying the xattr
//            `trusted.overlay.whiteout` / `user.overlay.whiteout` (only inside a directory whose opaque
//            xattr is "x", which is how the kernel marks directories that may hold such whiteouts).
// Opaque directory (hides every lower entry below it):
//   written: xattr `trusted.overlay.opaque=y` (privileged) or `user.overlay.opaque=y` (rootless).
//   read:    those two, `user.fuseoverlayfs.opaque=y`, or a `.wh..wh..opq` entry inside the directory.
// Names beginning with `.wh.` are never shown in the merged view and cannot be created through it.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>

namespace strata::whiteout {

inline constexpr std::string_view kPrefix = ".wh.";
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

inline constexpr const char* kTrustedOpaque = "trusted.overlay.opaque";
inline constexpr const char* kUserOpaque = "user.overlay.opaque";
inline constexpr const char* kFuseOverlayfsOpaque = "user.fuseoverlayfs.opaque";
inline constexpr const char* kTrustedWhiteout = "trusted.overlay.whiteout";
inline constexpr const char* kUserWhiteout = "user.overlay.whiteout";

// A character device with device number 0/0.
inline bool is_whiteout_device(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

// `.wh.NAME` (but not the opaque marker, and not the bare prefix).
bool is_whiteout_name(std::string_view name);
// NAME for `.wh.NAME`; only meaningful when is_whiteout_name().
std::string_view whited_out(std::string_view name);
// `.wh.` + name.
std::string whiteout_name(std::string_view name);

// How an opaque xattr value reads: "y" opaque; "x" not opaque but may hold xattr whiteouts.
enum class OpaqueValue { kNone, kOpaque, kHasXattrWhiteouts };
OpaqueValue parse_opaque(std::string_view value);

// Names that belong to the union's machinery rather than to the user: never created through the mount.
inline bool is_reserved_name(std::string_view name) { return name.substr(0, kPrefix.size()) == kPrefix; }

// Names that are not a single valid path component.
bool is_invalid_component(std::string_view name);

// xattrs hidden from the merged view (and refused by setxattr through it): overlay's private namespace for the
// mode in use (`trusted.overlay.*`, or `user.overlay.*` with userxattr) and strata's own state.
bool is_private_xattr(std::string_view name, bool userxattr);

// Names in the overlay namespace set through the mount are stored escaped, as Linux 6.7+ does for nested
// overlays: `trusted.overlay.X` is kept as `trusted.overlay.overlay.X` in the layer.
// escape_xattr: the name to use in the layer for a name given by the user; nullopt if it may not be used.
// unescape_xattr: the name to show for a name found in a layer; nullopt if it is hidden.
std::optional<std::string> escape_xattr(std::string_view name, bool userxattr);
std::optional<std::string> unescape_xattr(std::string_view real, bool userxattr);

}  // namespace strata::whiteout
