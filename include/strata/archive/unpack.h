// SPDX-License-Identifier: Apache-2.0
// archive/unpack: apply one image layer (a tar stream) to an empty directory, in overlay format.
//
// Role: `strata pull` turns each layer blob into layers/<diffid>/diff. The caller creates an empty
// temporary directory, calls unpack_layer(), and renames the directory into place only on success:
// a partial result is never visible. On error this returns at once, leaving the partial tree for
// the caller to remove. Hashing the stream (diff_id) is the caller's business: with the ReadFn
// variant it sees every byte it feeds. The source is always read to its end, even past the tar's
// end-of-archive blocks (on success; after an error it is left where reading stopped).
//
// Input: a tar stream, uncompressed, gzip or zstd (detected by magic), in ustar, PAX or GNU form:
// long names and link targets, base-256 numbers, GNU and PAX sparse files, SCHILY.xattr.* and
// LIBARCHIVE.xattr.* records. A stream that ends without the two zero blocks (umoci insert) is
// accepted, and so is an empty stream (no entries). Names are kept byte for byte, UTF-8 or not.
//
// Paths (every entry is untrusted):
//   - "./" prefixes, repeated and trailing slashes and "." components are dropped. "", ".", "./" and
//     "/" name the root: umoci writes a "." entry (and `umoci insert` a "/" one); its metadata goes to dest_dirfd itself (it must be a
//     directory entry).
//   - An absolute name or a ".." component is an error naming the entry (EINVAL); so is a hard
//     link target of either form. So is a directory component starting with ".wh." (overlay format
//     cannot hold it); anything below a ".wh..wh." component (aufs metadata) is skipped.
//   - Nothing is ever written outside dest_dirfd: each entry is created by *at calls on its parent
//     directory's fd, reached from dest_dirfd one O_NOFOLLOW|O_DIRECTORY component at a time. A
//     symlink on the way (say this layer's "a -> /etc", then "a/passwd") fails the entry with
//     ENOTDIR; it is never followed. Missing parents are created (mode 0755, the caller's owner);
//     a parent's own entry arriving later sets its metadata. Paths may exceed PATH_MAX.
//   - dest_dirfd must be empty (else ENOTEMPTY): all that is below it was written by this call.
//
// Types: regular files (data streamed; the holes of sparse entries stay holes), directories,
// symlinks (target kept verbatim, never resolved), hard links, FIFOs, character and block devices
// (mknod; where that is refused, `devices` decides). A socket (no tar type exists for one) would
// be skipped.
// Hard links: the target must be a non-directory entry this layer already wrote, found beneath
// dest_dirfd without following symlinks; a symlink target is linked itself, not followed. A target
// not in the layer (umoci and containerd accept targets from lower layers) is an error (ENOENT,
// naming both) unless `allow_external_hardlinks`: then the entry is skipped with a warning. Data
// carried by a hard link entry is ignored; the linked inode keeps the target's metadata.
//
// Whiteouts (the OCI rules; the overlay vocabulary is in whiteout/whiteout.h):
//   - DIR/.wh.NAME: a whiteout at DIR/NAME, a character device 0/0; where mknod refuses it, or with
//     `whiteout_files`, the empty file DIR/.wh.NAME instead.
//   - DIR/.wh..wh..opq: DIR becomes opaque: xattr trusted.overlay.opaque=y; user.overlay.opaque=y
//     when unprivileged, with `userxattr`, or where trusted.* is refused; a `.wh..wh..opq` file
//     where neither xattr can be set. The marker may come before DIR's own entry.
//   - A whiteout hides lower layers only, so it never removes an entry of this layer: `.wh.X` after
//     a non-directory X does nothing; after a directory X it makes X opaque (the lower X is hidden,
//     this layer's X stays). An X after `.wh.X` replaces the whiteout (a directory X is opaque).
//   - A whiteout or opaque marker below a non-directory of this layer (umoci writes `x`, then
//     `x/.wh.child`) is skipped: that non-directory hides everything below it already.
//   - Whiteout entries carry no metadata worth keeping (umoci writes mode 0): none is applied.
//
// Duplicates: the same path twice: the last entry wins, as in umoci (containers/storage refuses;
// real images have them), with a warning. A directory over a directory only updates metadata (the
// first one's xattrs stay); anything else replaces what was there (a directory, with its contents).
//
// Metadata: mode & 07777 (mode fields may carry file-type bits). Owner: fchownat when privileged;
// otherwise dropped, or, with `record_owner`, recorded the way fuse-overlayfs's xattr_permissions=2
// does (whiteout/override_stat.h): xattr user.fuseoverlayfs.override_stat="UID:GID:MODE", MODE the
// entry's permission bits, set-id and sticky included. Only files and directories can carry it (the
// kernel refuses user.* xattrs on symlinks, FIFOs and devices: they keep this process's owner). A
// recorded entry's real mode gets owner read/write (and search) added, so that this process can
// still read and remove it; the record has the image's mode. Once any entry is recorded, the layer
// root carries a record too (its own entry's, else the real owner and mode): fuse-overlayfs reads
// records only in layers marked so. mtime and atime to the
// nanosecond (atime defaults to mtime; times before 1970 are kept). xattrs, security.capability
// included (set after chown, which would drop it); names in the overlay namespace in use are
// stored escaped as the kernel does (trusted.overlay.X -> trusted.overlay.overlay.X, see
// whiteout::escape_xattr), strata's private ones (*.strata.*) and owner records of union
// filesystems (*.fuseoverlayfs.override_stat, user.containers.override_stat) dropped with a
// warning (a layer must not choose what an unprivileged view shows), and an xattr refused
// (EPERM, ENOTSUP) is skipped with a warning. Directory modes and times are applied at the end,
// children before parents, so that writing children neither fails (0555) nor moves the mtime.
//
// Privilege: kAuto (the default) acts privileged when the effective uid is 0 and falls back per
// operation where the kernel says EPERM (user namespaces, missing capabilities) or, for chown,
// EINVAL (an unmapped id); kPrivileged makes such refusals errors; kUnprivileged never chowns,
// never mknods devices, and writes user.* rather than trusted.* xattrs.
//
// Errors: Result; op "unpack", detail naming the entry (and libarchive's message). errno: EINVAL
// bad names; EBADMSG malformed, truncated or unrecognized input; ENOTDIR a parent that is not a
// directory; ENOENT a hard link target not in the layer; EPERM devices not allowed; the source's
// own errno when reading it fails; the syscall's errno otherwise. libarchive's warnings (a name it
// could not convert, a PAX record it ignored) do not fail the unpack: they are in
// UnpackStats::warnings. Nothing is thrown (allocation failure is ENOMEM), nothing is logged.
// Thread-safety: reentrant; one call runs on the calling thread. For its duration it switches that
// thread's LC_CTYPE to C.UTF-8 (uselocale), so that libarchive converts UTF-8 PAX names to
// themselves instead of warning.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "strata/base/result.h"

namespace strata::archive {

enum class Privilege { kAuto, kPrivileged, kUnprivileged };
// A character or block device that cannot be created (mknod refused, unprivileged): fail or skip.
enum class DevicePolicy { kError, kSkip };

struct UnpackOptions {
  Privilege privilege = Privilege::kAuto;
  DevicePolicy devices = DevicePolicy::kError;
  // Hard links whose target is not in this layer: skip with a warning instead of failing.
  bool allow_external_hardlinks = false;
  // When the owner is not applied (unprivileged, chown refused): keep owner and mode as xattr
  // user.fuseoverlayfs.override_stat="UID:GID:MODE". Where the owner is applied it does nothing.
  bool record_owner = false;
  // Opaque markers as user.overlay.opaque even when privileged (for `mount -o userxattr`).
  bool userxattr = false;
  // Whiteouts as empty `.wh.NAME` files rather than 0/0 character devices (the form podman hands
  // to mount programs; stratafs reads both).
  bool whiteout_files = false;
};

struct UnpackStats {
  // Tar entries read, of every kind, skipped ones included (PAX and GNU extension headers are not
  // entries).
  uint64_t entries = 0;
  uint64_t bytes = 0;      // file data written (holes not counted)
  uint64_t whiteouts = 0;  // `.wh.NAME` entries
  uint64_t opaques = 0;    // `.wh..wh..opq` entries
  // Entries not written: devices per policy, external hard links, aufs metadata, whiteouts below a
  // non-directory.
  uint64_t skipped = 0;
  // Notes ("'ENTRY': what happened"), at most kMaxWarnings; warnings_dropped counts the rest.
  std::vector<std::string> warnings;
  uint64_t warnings_dropped = 0;
  static constexpr size_t kMaxWarnings = 100;
};

// The options of the store's layers/ (`strata pull`, and the copy `strata commit` makes): kAuto
// privileges, owners recorded wherever they cannot be applied, devices skipped (with a warning)
// where they cannot be created, as rootless podman does. Whoever writes layers/ uses these, so
// that a layer is the same whether pulled or committed.
UnpackOptions store_unpack_options();

// Source of the (possibly compressed) stream: fill up to `size` bytes at `buf`; return the count,
// 0 at the end, or -1 with errno set. Called on the unpacking thread only; if it throws, the unpack
// fails with EIO.
using ReadFn = std::function<ssize_t(void* buf, size_t size)>;

// Unpack the stream read(2) from src_fd (from its current offset; pipes fine) into dest_dirfd.
Result<UnpackStats> unpack_layer(int src_fd, int dest_dirfd, const UnpackOptions& options);
// Same, with the stream supplied by `read` (e.g. a reader hashing what it passes on).
Result<UnpackStats> unpack_layer(const ReadFn& read, int dest_dirfd, const UnpackOptions& options);

}  // namespace strata::archive
