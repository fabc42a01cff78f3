// SPDX-License-Identifier: Apache-2.0
// commit/layer: one layer made from a directory tree — the tar (tree_walk.h's entries), its
// compressed blob and its unpacked copy for layers/ — in ONE pass over the tree's data.
//
//   auto l = build_layer(store, upper_fd, options);    // temporaries only: nothing visible yet
//   if (l->empty) ...                                   // nothing to commit (an empty upper)
//   lock = store.lock_exclusive();
//   publish_layer(store, lock, &*l);                    // blobs/<blob>, layers/<diff_id>
//   ... reference it (manifest, ref) before releasing the lock, or gc may collect it.
//
// Each entry is written to the tar and, from the same buffer, to an archive::LayerWriter on a
// store LayerTemp (begin_layer() without a diff_id), so layers/<diff_id> is what unpacking the tar
// would give (same rules: unpack.h) without a second unpack. The tar stream is hashed as written
// (diff_id, size), compressed (compress.h) and written to a store BlobWriter, which hashes the
// compressed bytes (blob digest). Determinism: the same tree, options and library versions give
// the same tar, diff_id and blob digest (sorted walk, clamped whole-second mtimes, no names of
// owners, gzip header without name or time).
// Empty: in kUpper mode a tree with no entries below its root is `empty` (no blob, no layer);
// in kTree mode (squash) an empty tree is still a layer.
// Pipeline: the calling thread walks, reads each upper file once into a buffer and from it feeds
// the tar (hashed there: diff_id) and hands the buffer to a copy thread that writes the layers/
// copy (direct I/O for big files; fsync of each file when the layer has at most 256 entries, so
// that commit_layer needs no syncfs). gzip deflates on worker threads and an emitter thread hashes
// and writes the blob (compress.h). Queues between them are bounded: memory stays a few MiB per
// thread, whatever the file sizes. Why not copy_file_range/reflink for the copy: layer.cc.
// Errors: Result naming the path or the store object; on error every temporary is removed (the
// BlobWriter and LayerTemp destructors), so a failed build (disk full included) leaves nothing; an
// error on any of the threads fails the build the same way, after they are all stopped.
// Thread-safety: reentrant; the threads are internal and joined before build_layer returns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "strata/archive/unpack.h"
#include "strata/base/result.h"
#include "strata/commit/compress.h"
#include "strata/commit/tree_walk.h"
#include "strata/store/blob_writer.h"
#include "strata/store/store.h"

namespace strata::commit {

struct LayerOptions {
  WalkOptions walk;
  Compression compression = Compression::kGzip;
  int level = Compressor::kDefaultLevel;
  // Also unpack into a LayerTemp for layers/ (off only for tests of the tar alone).
  bool unpack = true;
};

struct BuiltLayer {
  bool empty = false;
  store::Digest diff_id;      // sha256 of the tar
  uint64_t size = 0;          // bytes of the tar
  store::Digest blob_digest;  // sha256 of the compressed blob
  uint64_t blob_size = 0;
  Compression compression = Compression::kGzip;
  WalkStats walk;
  archive::UnpackStats unpack;
  // Unpublished temporaries (absent when empty, or `unpack` off for the layer).
  std::optional<store::BlobWriter> blob;
  std::optional<store::LayerTemp> layer;
};

Result<BuiltLayer> build_layer(const store::Store& store, int root_fd, const LayerOptions& options);

// Publish the blob (never replacing an existing one) and commit the layer (a layer with that
// diff_id already there is kept). The caller holds the store lock until the blob is referenced.
Status publish_layer(const store::Store& store, const store::StoreLock& lock, BuiltLayer* layer);

}  // namespace strata::commit
