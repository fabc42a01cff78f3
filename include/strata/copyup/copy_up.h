// SPDX-License-Identifier: Apache-2.0
// copyup: copy one object from a lower layer into the upper, atomically.
//
// The object is built under a temporary name in the work directory (same filesystem as the upper): data
// (reflink, else an in-kernel copy that keeps holes, else read/write), xattrs (overlay's and strata's private
// ones excluded: they describe the lower layer, not the copy), owner, mode, times; fsynced unless told not to;
// then renamed into place with RENAME_NOREPLACE. A crash at any point leaves either no copy or a complete one
// in the upper; a leftover temporary in the work directory is removed at the next mount.
// The caller guarantees the destination directory already exists in the upper and serializes copy-ups of one
// object. Thread-safety: reentrant.
//
// Two phases, for callers that make the copy durable their own way: build_copy makes the complete copy under the
// temporary name, invisible; publish_copy fsyncs it (when given its fd) and renames it into place. The engine
// publishes without the fsync and fsyncs in the background, with a crash record (unsynced.h).
#pragma once

#include <sys/stat.h>

#include <string>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::copyup {

struct Options {
  bool fsync = true;      // fsync the copy before it becomes visible
  bool userxattr = false; // the overlay's private namespace is user.overlay.* (else trusted.overlay.*)
  bool with_data = true;  // false: a regular file is created empty (it is about to be truncated)
  // Hard links: also link the finished copy as index_dir/index_name (before it becomes visible), with the
  // xattr `nlink_xattr` = `nlink_value`, so the lower file's other names can find the copy.
  int index_dir = -1;
  std::string index_name;
  std::string nlink_xattr;
  std::string nlink_value;
  // xattr_permissions: set `override_xattr` = `override_value` on the copy (the owner and mode the view shows,
  // which an unprivileged daemon cannot give the copy itself); the source's value of that xattr is not copied.
  std::string override_xattr;
  std::string override_value;
};

// Phase 1: the copy under work_dir/tmp_name: data, xattrs, owner, mode, times, the override xattr. Returns the
// copy's fd (open for writing) for a regular file, else an empty one. On failure the temporary is removed.
Result<UniqueFd> build_copy(int src_dir, const std::string& name, const struct stat& st, int work_dir,
                            const std::string& tmp_name, const Options& opts);
// Phase 2: fsync `data` (opts.fsync), link the index entry (opts.index_dir), rename into dst_dir/dst_name with
// RENAME_NOREPLACE keeping dst_dir's times. On failure the temporary and the index entry are removed.
Status publish_copy(UniqueFd data, bool is_dir, int work_dir, const std::string& tmp_name, int dst_dir,
                    const std::string& dst_name, const Options& opts);

// Both phases at once.
Status copy_up(int src_dir, const std::string& name, const struct stat& st, int dst_dir,
               const std::string& dst_name, int work_dir, const std::string& tmp_name, const Options& opts);

// Copy every xattr of (src_dir, src_name) to (dst_dir, dst_name) but the union's private ones (in the namespace
// `userxattr` selects) and whiteout/opaque markers of any form, which describe the lower layer, not the copy.
Status copy_xattrs(int src_dir, const char* src_name, int dst_dir, const char* dst_name, bool userxattr);

}  // namespace strata::copyup
