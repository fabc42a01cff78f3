// SPDX-License-Identifier: Apache-2.0
// strata rmi IMAGE...: remove image names from the store (the blobs stay until `strata gc`).
#include <cstdio>
#include <map>
#include <set>

#include "common.h"
#include "containers.h"
#include "strata/oci/image.h"

namespace strata::tool {
namespace {

constexpr const char* kUsage =
    "Usage: strata rmi [-f|--force] IMAGE...\n"
    "\n"
    "Remove images from the store. IMAGE is a name (REPO[:TAG]): that name is removed; or an image "
    "ID\n"
    "(or a prefix of one): every name of that image is removed. Prints 'Untagged: NAME' for each "
    "name\n"
    "and 'Deleted: ID' when an image has no name left. An image a container uses\n"
    "(STORE/containers/*, mounted or not) keeps its last name unless --force.\n"
    "The blobs and unpacked layers are not deleted here: 'strata gc' frees what no image and no\n"
    "container uses (a container's layers stay even after rmi --force).\n"
    "\n"
    "Options:\n"
    "  -f, --force   remove names even when a container uses the image\n"
    "  -h, --help    this help\n";

}  // namespace

int cmd_rmi(const Globals& g, const Args& args) {
  bool force = false;
  std::vector<std::string> queries;
  for (const auto& a : args) {
    if (is_help(a)) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-f" || a == "--force")
      force = true;
    else if (a.size() > 1 && a[0] == '-')
      return usage_error("rmi", "unknown option '" + a + "'");
    else
      queries.push_back(a);
  }
  if (queries.empty()) return usage_error("rmi", "missing IMAGE");
  auto st = open_store(g, false);
  if (!st) return fail(st.error());
  auto lock = st->lock_exclusive();
  if (!lock) return fail(lock.error());
  auto uses = container_uses(*st);
  if (!uses) return fail(uses.error());

  int status = 0;
  for (const auto& q : queries) {
    // Every ref and the image ID it names (the config digest; for an index, the index's digest).
    auto refs = st->list();
    if (!refs) return fail(refs.error());
    auto id_of = [&](const store::Ref& r) -> store::Digest {
      auto img = oci::load_image(*st, r.name, r.descriptor);
      return img ? img->config_digest : r.descriptor.digest;
    };
    std::vector<std::string> targets;
    store::Digest id;
    if (auto r = oci::resolve_name(*st, q)) {
      targets.push_back(r->name);
      id = id_of(*r);
    } else {
      auto img = oci::find_image(*st, q);
      if (!img) {
        status = fail(img.error());
        continue;
      }
      id = img->config_digest;
      for (const auto& r : *refs)
        if (!r.name.empty() && id_of(r) == id) targets.push_back(r.name);
    }
    size_t remaining = 0;
    for (const auto& r : *refs)
      if (!r.name.empty() && id_of(r) == id) ++remaining;
    remaining -= std::min(remaining, targets.size());
    if (remaining == 0 && !force) {
      std::string users;
      for (const auto& c : *uses)
        if (c.image_id == id) users += (users.empty() ? "" : ", ") + c.name;
      if (!users.empty()) {
        status =
            fail("image " + q + " (" + id.to_string().substr(0, 19) + ") is in use by container " +
                 users + "; --force removes its name anyway (the container keeps its layers)");
        continue;
      }
    }
    bool ok = true;
    for (const auto& t : targets) {
      auto s = st->remove_ref(*lock, t);
      if (!s) {
        status = fail(s.error());
        ok = false;
        break;
      }
      std::printf("Untagged: %s\n", t.c_str());
    }
    if (ok && remaining == 0) std::printf("Deleted: %s\n", id.to_string().c_str());
  }
  return status;
}

}  // namespace strata::tool
