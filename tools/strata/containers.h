// SPDX-License-Identifier: Apache-2.0
// What the containers of a store (STORE/containers/NAME/state.json, written by `strata mount`) keep
// alive, for rmi and gc.
//
// A container uses its image (state.json "image_id", the config digest) and the unpacked layers its
// mount stacks ("layers": STORE/layers/<hex>/diff paths), mounted or not: its upper directory is
// only meaningful over those layers. A directory without state.json (a mount being set up) uses
// nothing yet; a state.json that cannot be read or parsed is an error naming it, so that gc never
// guesses. Thread-safety: plain values.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/store/store.h"

namespace strata::tool {

struct ContainerUse {
  std::string name;
  std::string image;               // the name it was mounted by
  store::Digest image_id;          // may be empty (invalid) in an old state.json
  std::set<store::Digest> layers;  // by diff_id
};

Result<std::vector<ContainerUse>> container_uses(const store::Store& store);

}  // namespace strata::tool
