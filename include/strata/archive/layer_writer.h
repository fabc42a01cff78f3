// SPDX-License-Identifier: Apache-2.0
// archive/layer_writer: the file-system half of unpack_layer(): entries, already decoded from the
// tar, are created beneath one directory fd in overlay format. No libarchive here, so the rules can
// be read (and tested) apart from the decoding; unpack.h states them, this header says how to drive
// the writer.
//
// Lifecycle: construct on an empty directory. For each tar entry, in order, call begin(); when it
// returns a valid fd (a regular file), write the entry's data into it (pwrite at the archive's
// offsets, holes left alone) and call finish_file(). After the last entry call finish() once: it
// applies directory modes and times, children before parents. Stop at the first error; the partial
// tree is the caller's to remove.
// Invariants: nothing is created, modified or followed outside the root fd. A symlink is never
// traversed: parents are reached one O_NOFOLLOW|O_DIRECTORY component at a time (the fds of the
// last entry's parent chain are reused by the next). Everything below the root was written by this
// writer, so "exists on disk" means "exists in this layer".
// Thread-safety: one writer, one thread. The root fd is borrowed and must outlive the writer.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "strata/archive/entry_path.h"
#include "strata/archive/unpack.h"
#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::archive {

enum class EntryType {
  kFile,
  kDirectory,
  kSymlink,
  kHardlink,
  kFifo,
  kCharDevice,
  kBlockDevice,
  kSocket
};

struct EntryMeta {
  mode_t perm = 0;  // already masked with 07777
  uid_t uid = 0;
  gid_t gid = 0;
  bool has_mtime = false;
  bool has_atime = false;
  struct timespec mtime {};
  struct timespec atime {};
  std::vector<std::pair<std::string, std::string>> xattrs;  // name, value (as in the archive)
};

struct Entry {
  std::string name;  // as in the archive: messages quote it
  EntryType type = EntryType::kFile;
  std::string link;  // symlink target, or hard link target name as in the archive
  dev_t rdev = 0;    // devices
  off_t size = 0;    // regular files: the logical size (sparse files included)
  EntryMeta meta;
};

class LayerWriter {
 public:
  LayerWriter(int root_fd, const UnpackOptions& options, UnpackStats* stats);
  LayerWriter(const LayerWriter&) = delete;
  LayerWriter& operator=(const LayerWriter&) = delete;

  // Apply one entry. For a regular file that is written, returns the open (O_WRONLY, empty) file
  // for the caller to fill; otherwise an invalid fd (the entry is complete, or skipped).
  Result<UniqueFd> begin(const Entry& e);
  // The data of `e` is in `fd` up to `data_end`: extend to e.size (holes) and apply owner, mode,
  // xattrs, times.
  Status finish_file(int fd, const Entry& e, off_t data_end);
  // Directory modes and times, deepest first.
  Status finish();

  // A note for UnpackStats::warnings (bounded).
  void warn(std::string text);

 private:
  enum class Walk { kCreate, kCreateMissing };
  struct Open {
    std::string name;
    UniqueFd fd;
  };
  struct DirFixup {
    mode_t perm;
    bool has_mtime, has_atime;
    struct timespec mtime, atime;
  };

  // The fd of the directory that holds p's last component (borrowed: valid until the next walk).
  // kCreate makes missing directories and replaces whiteouts of this layer on the way (the
  // directory then hides the lower one: opaque); kCreateMissing (for whiteouts and opaque markers)
  // only makes missing ones and fails with ENOTDIR at a non-directory, whited-out names included.
  Result<int> parent_dir(const Entry& e, const EntryPath& p, Walk walk);
  // mkdir (at, name), `dir` being the path of `at`; replaces a `.wh.NAME` file form of a whiteout.
  Status make_dir(const Entry& e, int at, const std::string& dir, const std::string& name,
                  mode_t mode);
  // Clear (at, name) for a new entry of this layer, `dir` being the path of `at`. *existing_dir: a
  // directory is there and stays (the new entry is one too). *was_whiteout: a whiteout of this
  // layer was removed.
  Status clear_slot(const Entry& e, int at, const std::string& dir, const std::string& name,
                    bool new_is_dir, bool* existing_dir, bool* was_whiteout);
  void drop_fixups_below(const std::string& path);

  Status add_root(const Entry& e);
  Status add_whiteout(const Entry& e, const EntryPath& p, const std::string& hidden);
  Status add_opaque(const Entry& e, const EntryPath& p);
  Result<UniqueFd> add_real(const Entry& e, const EntryPath& p);
  Status add_hardlink(const Entry& e, const EntryPath& p);
  Status set_opaque(const Entry& e, int dirfd);

  // chown, or (record_owner) the override_stat record where that was not done; true when recorded.
  Result<bool> apply_owner(const Entry& e, int dirfd, const char* name, bool user_xattrs_allowed);
  Status apply_xattrs(const Entry& e, int dirfd, const char* name);
  Status apply_times(const Entry& e, int dirfd, const char* name);
  Status skip(const Entry& e, const std::string& why);
  // The layer root's override record (fuse-overlayfs's per-layer marker), once any entry was recorded.
  Status mark_root();

  int root_;
  UnpackOptions opt_;
  UnpackStats* stats_;
  bool privileged_;
  bool userxattr_;           // overlay's namespace: user.overlay.* (else trusted.overlay.*)
  bool trusted_opaque_;      // trusted.overlay.opaque still worth trying
  bool mknod_whiteouts_;     // 0/0 devices still worth trying
  bool chown_ = true;        // chown still worth trying
  bool recorded_ = false;    // an owner was recorded (record_owner)
  std::vector<Open> chain_;  // chain_[i]: the directory parts[0..i] of the last parent walked
  std::map<std::string, DirFixup> fixups_;
  std::unordered_set<std::string> whiteout_files_;  // `.wh.NAME` files written (path of the file)
};

}  // namespace strata::archive
