// SPDX-License-Identifier: Apache-2.0
// Garbage collection: what index.json keeps alive, and removing the rest.
//
// Store::referenced() walks from every index.json entry: a manifest (OCI or Docker schema2) keeps
// its own blob, its config and its layers; an index / manifest list keeps itself and, recursively,
// the manifests it lists; a config keeps the unpacked layers named by its rootfs.diff_ids. Children
// that are not in the store (the other platforms of a pulled index) are skipped. A manifest, index
// or config that is present but cannot be parsed is an error (EBADMSG): gc then deletes nothing,
// because it cannot know what that blob keeps. Store::gc(lock, dry_run, in_use_layers) deletes (or,
// dry_run, only lists) every blob under blobs/sha256 and every layers/<hex> that is not referenced,
// keeping also the layers and blobs the caller says are in use (containers, mounted or not). Files whose names are
// not sha256 hex are never touched. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "strata/store/digest.h"

namespace strata::store {

struct Reachable {
  std::set<Digest> blobs;     // manifests, indexes, configs, layer blobs
  std::set<Digest> diff_ids;  // unpacked layers named by reachable configs
};

struct GcReport {
  std::vector<Digest> blobs;   // removed (or, dry run, removable)
  std::vector<Digest> layers;  // by diff_id
  uint64_t bytes = 0;          // size of the removed blobs (layer trees are not measured)
};

}  // namespace strata::store
