// SPDX-License-Identifier: Apache-2.0
// strata gc: delete the blobs and unpacked layers that no image name and no container uses.
#include <cstdio>
#include <map>
#include <set>

#include "common.h"
#include "containers.h"
#include "strata/oci/manifest.h"

namespace strata::tool {
namespace {

constexpr const char* kUsage =
    "Usage: strata gc [--dry-run]\n"
    "\n"
    "Delete what no image and no container needs: blobs (manifests, configs, layer blobs) not "
    "reachable\n"
    "from an image name, unpacked layers no image's config lists, and the temporaries of crashed\n"
    "runs. The layers of every container (STORE/containers/*, mounted or not), its image's config\n"
    "and the blobs of its layers are kept, also after 'strata rmi --force'. Prints each deletion "
    "and\n"
    "the total: 'Deleted blob sha256:...', 'Deleted layer sha256:...', 'Total reclaimed space: "
    "12.3MB'\n"
    "(layer sizes are their uncompressed tar sizes).\n"
    "\n"
    "Options:\n"
    "  -n, --dry-run   only print what would be deleted\n"
    "  -h, --help      this help\n";

}  // namespace

int cmd_gc(const Globals& g, const Args& args) {
  bool dry_run = false;
  for (const auto& a : args) {
    if (is_help(a)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-n" || a == "--dry-run")
      dry_run = true;
    else
      return usage_error("gc", "unexpected argument '" + a + "'");
  }
  auto st = open_store(g, false);
  if (!st) return fail(st.error());
  auto lock = st->lock_for_gc();
  if (!lock) return fail(lock.error());
  auto uses = container_uses(*st);
  if (!uses) return fail(uses.error());
  std::set<store::Digest> layers, blobs;
  for (const auto& c : *uses) {
    layers.insert(c.layers.begin(), c.layers.end());
    if (!c.image_id.valid() || !st->has_blob(c.image_id)) continue;
    blobs.insert(c.image_id);
    auto body = st->read_blob(c.image_id);
    if (!body) return fail(body.error());
    auto cfg = oci::parse_config(*body);
    if (!cfg) return fail("container " + c.name + ": " + cfg.error().message());
    layers.insert(cfg->diff_ids.begin(), cfg->diff_ids.end());
  }
  // The compressed blobs the kept layers came from: a commit of the container names them.
  for (const auto& l : layers) {
    auto meta = st->layer_meta(l);
    if (meta && meta->blob_digest) blobs.insert(*meta->blob_digest);
  }

  if (!dry_run) {
    auto stale = st->cleanup_stale();
    if (!stale) return fail(stale.error());
    for (const auto& s : *stale) std::printf("Deleted stale %s\n", s.c_str());
  }
  // The layer sizes come from meta.json, gone once a layer is deleted: list first (under the lock
  // the answer cannot change), then delete.
  auto plan = st->gc(*lock, true, layers, blobs);
  if (!plan) return fail(plan.error());
  uint64_t total = plan->bytes;
  std::map<store::Digest, uint64_t> layer_size;
  for (const auto& l : plan->layers) {
    auto meta = st->layer_meta(l);
    layer_size[l] = meta ? meta->size : 0;
    total += layer_size[l];
  }
  store::GcReport rep = *plan;
  if (!dry_run) {
    auto done = st->gc(*lock, false, layers, blobs);
    if (!done) return fail(done.error());
    rep = std::move(*done);
    total = rep.bytes;
    for (const auto& l : rep.layers) total += layer_size[l];
  }
  const char* verb = dry_run ? "Would delete" : "Deleted";
  for (const auto& b : rep.blobs) std::printf("%s blob %s\n", verb, b.to_string().c_str());
  for (const auto& l : rep.layers) std::printf("%s layer %s\n", verb, l.to_string().c_str());
  std::printf("Total %s space: %s\n", dry_run ? "reclaimable" : "reclaimed",
              human_size(total).c_str());
  return 0;
}

}  // namespace strata::tool
