// SPDX-License-Identifier: Apache-2.0
// The on-disk layout of a store root and the file helpers the store's modules share. Internal to
// src/store: other modules use store.h.
//
//   ROOT/
//     oci/               a valid OCI image layout: oci-layout, index.json, blobs/sha256/<hex>
//     layers/<hex>/      diff/ (the unpacked layer) + meta.json; <hex> is the diff_id's
//     ingest/            <hex>.partial (data so far) + <hex>.json (bytes durably written)
//     containers/        what `strata mount` makes (not managed here)
//     lock               flock(2) target for writers
//     pins               flock(2) target: shared by running pulls, exclusive for gc
//
// Temporaries are named ".tmp-<stem>-<pid>-<n>" in the directory they will be renamed within, so
// that cleanup_stale() can tell whose they are (owner pid) and nothing else in the tree looks like
// one. Every file becomes visible only through rename(2) after fsync (write_file_atomic); every
// rename is followed by an fsync of the directory, so after a crash a name is either absent or
// complete. Thread-safety: Dirs is immutable after Store::open; the helpers are reentrant.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/store/digest.h"

namespace strata::store::detail {

inline constexpr const char* kOciDir = "oci";
inline constexpr const char* kBlobsDir = "blobs";
inline constexpr const char* kSha256Dir = "sha256";
inline constexpr const char* kLayersDir = "layers";
inline constexpr const char* kIngestDir = "ingest";
inline constexpr const char* kContainersDir = "containers";
inline constexpr const char* kLockFile = "lock";
inline constexpr const char* kPinsFile = "pins";
inline constexpr const char* kOciLayoutFile = "oci-layout";
inline constexpr const char* kIndexFile = "index.json";
inline constexpr const char* kLayerDiffDir = "diff";
inline constexpr const char* kLayerMetaFile = "meta.json";
inline constexpr const char* kTempPrefix = ".tmp-";

// Open directory fds of one store. root is O_PATH; the others are O_RDONLY|O_DIRECTORY so that they
// can be fsynced after a rename into them.
struct Dirs {
  std::string root_path;
  UniqueFd root;
  UniqueFd oci;
  UniqueFd blobs;  // oci/blobs/sha256
  UniqueFd layers;
  UniqueFd ingest;
  UniqueFd containers;
};

// EINVAL unless d is sha256 with 64 lowercase hex digits: a Digest is a public struct, and its hex
// becomes a file name, so every entry point checks it before using it.
Status check_digest(const Digest& d, const char* op);

// ".tmp-<stem>-<pid>-<n>", unique within this process (n counts up) and across live processes
// (pid).
std::string temp_name(std::string_view stem);
// The owner pid of a temp_name() name; false when `name` is not one.
bool temp_owner(std::string_view name, pid_t* pid);

// Write `data` to (dirfd, name) atomically: temp file, fsync, rename over `name`, fsync dirfd.
// dirfd must not be O_PATH (it is fsynced).
Status write_file_atomic(int dirfd, const std::string& name, std::string_view data, mode_t mode);
// Like write_file_atomic, but leaves an existing `name` alone (no error): for files written once.
Status create_file_atomic(int dirfd, const std::string& name, std::string_view data, mode_t mode);
// The whole content of (dirfd, name), refusing files larger than max_size (EFBIG).
Result<std::string> read_file_at(int dirfd, const char* name, size_t max_size);
// fsync of a directory fd (O_RDONLY; O_PATH fds cannot be fsynced).
Status fsync_dir(int dirfd);
// The current time as RFC 3339 UTC with seconds ("2024-05-01T12:00:00Z").
std::string now_rfc3339();

}  // namespace strata::store::detail
