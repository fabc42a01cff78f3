// SPDX-License-Identifier: Apache-2.0
// Command line of stratafs: a drop-in for fuse-overlayfs's.
//
//   stratafs [-f] [-d] [-o OPT[,OPT...]]... [SOURCE] MOUNTPOINT
//
// Options are comma-separated; `\,` escapes a comma and, inside lowerdir, `\:` a colon. Empty options (podman
// passes `,,`) are ignored. Options strata does not know produce a warning, never a failure: container
// tooling and mount(8) pass options meant for other programs. SOURCE (what mount.fuse3 passes first) is ignored.
#pragma once

#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/fuse/session.h"
#include "strata/merge/overlay.h"

namespace strata::tools {

struct Config {
  merge::OverlayOptions overlay;
  fuse::SessionOptions session;
  std::vector<std::string> warnings;  // to print before mounting
  bool help = false;
  bool version = false;
};

// Split an -o string on unescaped commas; escapes are kept for split_lowerdir/unescape.
std::vector<std::string> split_options(const std::string& s);
// Split lowerdir's value on unescaped colons and unescape each element.
std::vector<std::string> split_lowerdir(const std::string& v);
std::string unescape(const std::string& v);

// `privileged`: running as root (adds allow_other, default_permissions, suid, dev as fuse-overlayfs does).
Result<Config> parse_args(const std::vector<std::string>& args, bool privileged);

extern const char kUsage[];

}  // namespace strata::tools
