// SPDX-License-Identifier: Apache-2.0
// archive/entry_path: an untrusted tar entry name (or hard link target) turned into path
// components. Pure functions, no I/O.
//
// Accepted: relative names. "./" prefixes, repeated and trailing slashes and "." components are
// dropped; "", ".", "./" and "/" (umoci insert writes it) name the root (no components). Components
// are otherwise kept byte for byte (any byte but '/' and NUL; the kernel enforces NAME_MAX).
// Refused with EINVAL: any other absolute name ("/x") and any ".." component ("../x", "a/../../x",
// "a/.."), even one that would stay inside: a layer never needs one, and refusing is simpler to
// reason about than resolving.
// Errors: Error{EINVAL, "unpack", "'NAME': why"}. Thread-safety: pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"

namespace strata::archive {

struct EntryPath {
  std::vector<std::string> parts;  // empty: the root of the layer
  std::string joined;              // parts joined with '/'; "" for the root

  bool is_root() const { return parts.empty(); }
  const std::string& last() const { return parts.back(); }  // not for the root
  // The first n components joined with '/'.
  std::string prefix(size_t n) const;
};

Result<EntryPath> parse_entry_path(std::string_view name);

// `name` quoted for messages: between single quotes, bytes outside 0x20..0x7e (and the backslash
// and quote) as \xHH, cut after 300 bytes with "...".
std::string quote_name(std::string_view name);

}  // namespace strata::archive
