// SPDX-License-Identifier: Apache-2.0
// archive/unpack: apply one image layer (a tar stream) to an empty directory, writing it in overlay format.
//
// Role: `strata pull` turns every layer blob into layers/<diffid>/diff. The caller creates an empty temporary
// directory, calls unpack_layer(), and renames the directory into place only on success: a partial result is
// never visible, and on error this function returns promptly without cleaning up (the caller removes the
// temporary). Hashing the stream (diff_id) is the caller's business: the ReadFn variant lets it see every byte
// it feeds; the source is always read to its end, even past the tar's end-of-archive blocks.
//
// Input: a tar stream, uncompressed, gzip or zstd (detected by magic), in ustar, pax or GNU form (long names
// and link targets, base-256 numbers, GNU and PAX sparse files, SCHILY.xattr.* / LIBARCHIVE.xattr.* records).
// A stream that ends without the two zero blocks (umoci insert) is accepted; so is an empty stream (no
// entries). Names are taken byte for byte (names that are not UTF-8 are kept as they are).
//
// Paths (entries are untrusted):
//   - "./" prefixes, repeated and trailing slashes and "." components are dropped; "", "." and "./" name the
//     root (umoci writes a "." entry: its metadata is applied to dest_dirfd itself, which must be a directory).
//   - An absolute name, or one with a ".." component, is an error naming the entry (EINVAL); so is a hard
//     link target of either form. A directory component starting with ".wh." is an error too (it cannot be
//     represented in overlay format); a component starting with ".wh..wh." (aufs metadata) is skipped.
//   - Nothing is ever written outside dest_dirfd: every entry is created by *at calls on its parent directory
//     fd, reached from dest_dirfd one O_NOFOLLOW|O_DIRECTORY component at a time. A symlink anywhere on the way
//     (one from this very layer, say "a -> /etc" followed by "a/passwd") makes the entry fail with ENOTDIR;
//     it is never followed. Missing parent directories are created (mode 0755, owner of the caller); a parent
//     entry arriving later sets their metadata.
//   - dest_dirfd must be empty (ENOTEMPTY otherwise): everything found under it was written by this call.
//
// Types: regular files (data streamed; holes of sparse entries left as holes), directories, symlinks (target
// kept verbatim, never resolved), hard links (see below), FIFOs, character and block devices (mknod; where
// that is refused, `devices` decides), sockets (skipped: a tar cannot carry one meaningfully).
// Hard links: the target must be a non-directory entry already written by this layer, found beneath
// dest_dirfd without following symlinks; a symlink target is linked itself, not followed. A missing target
// (umoci and containerd accept targets that only exist in lower layers) is an error (ENOENT, naming both)
// unless `allow_external_hardlinks`, which skips the entry with a warning. Data carried by a hard link entry
// is ignored; the metadata of the linked inode is the target's.
//
// Whiteouts (the OCI rules, kept next to the overlay vocabulary in whiteout/whiteout.h):
//   - DIR/.wh.NAME: a whiteout at DIR/NAME, written as a character device 0/0; where mknod of it is refused,
//     or with `whiteout_files`, as the empty file DIR/.wh.NAME instead.
//   - DIR/.wh..wh..opq: DIR becomes opaque, xattr trusted.overlay.opaque=y (user.overlay.opaque=y when
//     unprivileged, with `userxattr`, or where trusted.* is refused; a `.wh..wh..opq` file where neither xattr
//     can be set). Order does not matter: the marker may come before DIR's own entry.
//   - A whiteout hides lower layers only. So a whiteout never removes an entry of this layer: `.wh.X` after a
//     real non-directory X does nothing; after a real directory X it makes X opaque (lower X hidden, this
//     layer's X kept). A real X after `.wh.X` replaces the whiteout (a directory X then becomes opaque).
//   - A whiteout or opaque marker below a non-directory of this layer (umoci writes `x` then `x/.wh.child`)
//     is skipped: that non-directory already hides everything below it.
//   Whiteout entries carry no metadata worth keeping (umoci writes mode 0): none is applied.
//
// Duplicates: the same path twice: the last entry wins, as umoci does (containers/storage rejects it; we do
// not, because real images have them). A directory over a directory only updates metadata (xattrs of the first
// are kept); anything else replaces what was there (a directory with everything below it).
//
// Metadata: mode & 07777 (mode fields may carry file-type bits); owner with fchownat when privileged, else
// dropped, or recorded as xattr user.strata.owner="UID:GID" with `record_owner` (not on symlinks, which cannot
// carry user.* xattrs); mtime and atime with nanoseconds (atime defaults to mtime; negative times are kept);
// xattrs, security.capability included (applied after chown, which clears it). xattr names in the overlay
// namespace in use are stored escaped as the kernel does (trusted.overlay.X -> trusted.overlay.overlay.X, see
// whiteout::escape_xattr); strata's private ones (*.strata.*) are dropped. An xattr the filesystem or our
// privileges refuse (EPERM, ENOTSUP) is skipped with a warning. Directory mode, owner and times are applied
// at the end, children before parents, so that writing children neither fails (a 0555 directory) nor moves
// the directory's mtime.
//
// Privilege: kAuto (the default) acts privileged when the effective uid is 0 and falls back per operation
// where the kernel says EPERM (user namespaces, missing capabilities); kPrivileged makes such refusals errors;
// kUnprivileged never chowns, never mknods devices and writes user.* xattrs instead of trusted.*.
//
// Errors: Result with errno; op says what failed, detail names the entry (and libarchive's message for
// malformed headers, unsupported formats, truncated streams and read errors from the source). libarchive
// warnings (a name that is not UTF-8, a PAX record it ignores) do not fail the unpack: they are listed in
// UnpackStats::warnings. Nothing is thrown (allocation failure included: ENOMEM), nothing is logged.
// Thread-safety: reentrant; one call uses one thread (it switches only that thread's locale, LC_CTYPE to
// C.UTF-8, for the duration, so that libarchive converts UTF-8 PAX names to themselves). Concurrent calls on
// different destinations are fine.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "strata/base/result.h"

namespace strata::archive {

enum class Privilege { kAuto, kPrivileged, kUnprivileged };
// What to do with a character or block device entry that cannot be created (mknod refused or unprivileged).
enum class DevicePolicy { kError, kSkip };

struct UnpackOptions {
  Privilege privilege = Privilege::kAuto;
  DevicePolicy devices = DevicePolicy::kError;
  // Hard links whose target is not in this layer: skip with a warning instead of failing.
  bool allow_external_hardlinks = false;
  // Unprivileged (or when chown is refused): keep the tar's owner as xattr user.strata.owner="UID:GID".
  bool record_owner = false;
  // Opaque markers as user.overlay.opaque even when privileged (for `mount -t overlay -o userxattr`).
  bool userxattr = false;
  // Whiteouts as empty `.wh.NAME` files rather than 0/0 character devices (the form podman hands to mount
  // programs; both forms are read by stratafs).
  bool whiteout_files = false;
};

struct UnpackStats {
  uint64_t entries = 0;    // tar entries read (every kind, skipped ones included; not PAX/GNU extension headers)
  uint64_t bytes = 0;      // file data bytes written (holes not counted)
  uint64_t whiteouts = 0;  // `.wh.NAME` entries
  uint64_t opaques = 0;    // `.wh..wh..opq` entries
  uint64_t skipped = 0;    // entries not written: sockets, devices per policy, external hard links, aufs files,
                           // whiteouts below a non-directory
  // Human-readable notes ("ENTRY: what happened"), at most kMaxWarnings; warnings_dropped counts the rest.
  std::vector<std::string> warnings;
  uint64_t warnings_dropped = 0;
  static constexpr size_t kMaxWarnings = 100;
};

// Source of the (possibly compressed) stream: fill up to `size` bytes at `buf`; return the count, 0 at the end,
// or -1 with errno set. Called from the unpacking thread only; it may throw (reported as EIO).
using ReadFn = std::function<ssize_t(void* buf, size_t size)>;

// Unpack the stream read from src_fd (read(2) from its current offset; pipes fine) into dest_dirfd.
Result<UnpackStats> unpack_layer(int src_fd, int dest_dirfd, const UnpackOptions& options);
// Same, with the stream supplied by `read` (e.g. a reader hashing what it passes on).
Result<UnpackStats> unpack_layer(const ReadFn& read, int dest_dirfd, const UnpackOptions& options);

}  // namespace strata::archive
