// SPDX-License-Identifier: Apache-2.0
// copyup: copy-ups published before their data is durable, and their repair after a crash.
//
// A durable copy-up fsyncs the copy before renaming it into place, so that a crash cannot leave a name in the
// upper whose data never reached the disk. That fsync is the disk's write of the whole file. Instead, the
// engine renames the copy into place at once and fsyncs it in the background (merge/copy_up_queue.h), having
// first recorded it in a log directory (WORKDIR/strata-unsynced) as a symlink NAME whose target is
// "BOOT_ID/INO/PATH": the boot that made the copy, the copy's inode number, and its path in the upper. The
// record is written before the rename, and metadata reaches a journaled filesystem's disk in order, so a copy
// in the upper whose data may be missing always has its record. Once the data is on disk the record goes
// (clear_unsynced). While it exists the engine keeps PATH true: renaming or removing the object waits for it.
//
// At mount, recover_unsynced handles what a crash left, for each record whose PATH is still that inode:
//   - the same boot (only the daemon died): the data is in the page cache: fsync it;
//   - another boot (the machine went down): the data may be lost: copy the original from the first lower layer
//     holding PATH over it and fsync. The object is as the copy-up made it (the old view's content); writes
//     made to it since, never fsynced, are lost, as they may be on any filesystem.
// Thread-safety: reentrant.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "strata/base/result.h"

namespace strata::copyup {

inline constexpr const char* kUnsyncedDir = "strata-unsynced";

// Record the copy with inode number `ino`, about to be renamed into place at `upper_path`, as `name`.
Status record_unsynced(int log_dir, const std::string& name, const std::string& boot_id, ino_t ino,
                       const std::string& upper_path);
// The copy's data is on disk: drop its record.
Status clear_unsynced(int log_dir, const std::string& name);

struct Recovery {
  size_t synced = 0;    // same boot: fsynced
  size_t restored = 0;  // another boot: the original copied back
  size_t lost = 0;      // another boot and no lower layer holds the original: left as found (logged)
  std::vector<std::string> messages;  // one line per object restored or lost, for the log
};
// Repair every copy-up recorded in log_dir. upper_root: the upper layer's root; lower_roots: the lower layers'
// roots, top first.
Result<Recovery> recover_unsynced(int log_dir, int upper_root, const std::vector<int>& lower_roots,
                                  const std::string& boot_id);

}  // namespace strata::copyup
