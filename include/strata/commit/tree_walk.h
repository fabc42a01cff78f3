// SPDX-License-Identifier: Apache-2.0
// commit/tree_walk: turn a directory tree into the ordered entries of a layer tar.
//
// Two modes:
//   kUpper  an overlay upper directory (what stratafs or the kernel wrote): the entries are the
//           change it holds, in OCI layer form (image-spec "Representing Changes"):
//           - whiteouts in every form the overlay vocabulary knows (whiteout/whiteout.h): a
//             character device 0/0 (also the kernel's, which are hard links of one shared inode:
//             never tar hard links), a `.wh.NAME` file, a zero-size file with
//             trusted/user.overlay.whiteout inside a directory whose opaque xattr is "x"
//             -> an entry DIR/.wh.NAME (regular, empty, mode 0, owner 0:0);
//           - opaque directories (trusted/user.overlay.opaque=y, user.fuseoverlayfs.opaque=y, a
//             `.wh..wh..opq` entry) -> DIR/.wh..wh..opq, right after DIR's own entry;
//           - xattrs: overlay's private ones (trusted.overlay.*, user.overlay.*), fuse-overlayfs's
//             (user.fuseoverlayfs.*) and strata's (*.strata.*) dropped; the kernel's escaped form
//             trusted.overlay.overlay.X (user.overlay.overlay.X) restored to trusted.overlay.X;
//           - `.wh..wh.*` names other than the opaque marker (aufs metadata) are skipped.
//   kTree   a plain tree (a merged view, for --squash): every entry as it is, all xattrs but
//           *.strata.*, no whiteout interpretation.
// Both: an owner record (whiteout/override_stat.h: user.fuseoverlayfs.override_stat, which an
// unprivileged pull and stratafs's xattr_permissions write; also security.fuseoverlayfs.* and
// user.containers.override_stat, in that order of preference) gives the entry's uid, gid and
// permission bits, and is never an xattr of the entry. The root directory itself is not an entry
// (its opaque marker is, in kUpper); entries are visited depth first, each directory's children
// sorted bytewise by their entry name, so the same tree always gives the same sequence. Paths are
// reached beneath the root fd one O_NOFOLLOW component at a time; symlinks are entries, never
// followed. A non-directory whose inode was already visited (st_nlink > 1, same st_dev/st_ino) is a
// hard link to the first path (link counts from outside the tree, such as stratafs's index links in
// workdir, do not matter: only a second sighting makes a link). Sockets are skipped (tar has no
// type for them). Times: mtime in whole seconds, clamped to `clamp_mtime` when set
// (SOURCE_DATE_EPOCH); no atime/ctime. Owner names are never recorded (uid/gid only).
//
// The sink gets each entry with, for a regular file (not a hard link), an O_RDONLY fd on its data
// (the entry's size is the size at stat time; the sink reads at most that much). An error from the
// sink stops the walk and is returned.
// Errors: Result naming the path ("commit walk 'a/b': ..."). Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "strata/archive/layer_writer.h"
#include "strata/base/result.h"

namespace strata::commit {

enum class WalkMode { kUpper, kTree };

struct WalkOptions {
  WalkMode mode = WalkMode::kUpper;
  std::optional<int64_t> clamp_mtime;  // seconds since the epoch
};

struct WalkStats {
  uint64_t entries = 0;
  uint64_t whiteouts = 0;
  uint64_t opaques = 0;
  uint64_t hardlinks = 0;
  uint64_t skipped = 0;
  uint64_t file_bytes = 0;
  std::vector<std::string> warnings;  // "'PATH': what happened" (at most 100)
};

class EntrySink {
 public:
  virtual ~EntrySink() = default;
  // data_fd: the file's data for regular files, -1 otherwise.
  virtual Status entry(const archive::Entry& e, int data_fd) = 0;
};

Result<WalkStats> walk_tree(int root_fd, const WalkOptions& options, EntrySink* sink);

}  // namespace strata::commit
