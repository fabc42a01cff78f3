// SPDX-License-Identifier: Apache-2.0
// strata tool: what the subcommands share — global options, opening the store, option parsing,
// error printing. Each subcommand lives in its own file and is declared here.
#pragma once

#include <string>
#include <vector>

#include "strata/base/result.h"
#include "strata/store/store.h"

namespace strata::tool {

struct Globals {
  std::string root;      // --root, else $STRATA_ROOT, else store::default_root()
  std::string stratafs;  // --stratafs, else $STRATA_STRATAFS, else next to strata, else PATH
};

using Args = std::vector<std::string>;

// Open (create=true: create) the store named by the globals.
Result<store::Store> open_store(const Globals& g, bool create);

// Print "strata: <message>" to stderr; returns 1.
int fail(const Error& e);
int fail(const std::string& message);
// Print "strata CMD: message" and a hint to try --help; returns 2.
int usage_error(const char* cmd, const std::string& message);

// If args[i] is `flag` ("--name V" or "--name=V"), store V, advance i past it and return true; a
// missing value sets `missing`.
bool take_value(const Args& args, size_t& i, const char* flag, std::string* value, bool* missing);
bool is_help(const std::string& a);

// The stratafs option that keeps owners in override records (fuse-overlayfs's xattr_permissions=2,
// whiteout/override_stat.h) for a mount of `lowers` (layers/ diff paths): ",xattr_permissions=2" when
// this process cannot give files away (not root, or root in a user namespace) or a layer carries
// recorded owners (its root has a record); "" otherwise.
std::string owner_record_option(const std::vector<std::string>& lowers);

// "12.3MB" (decimal units, as docker prints sizes).
std::string human_size(uint64_t bytes);
// "3 days ago" from an RFC 3339 time; "" when unparseable.
std::string human_age(const std::string& rfc3339);

int cmd_pull(const Globals& g, const Args& args);
int cmd_images(const Globals& g, const Args& args);
int cmd_inspect(const Globals& g, const Args& args);
int cmd_mount(const Globals& g, const Args& args);
int cmd_umount(const Globals& g, const Args& args);
int cmd_ps(const Globals& g, const Args& args);
int cmd_commit(const Globals& g, const Args& args);
int cmd_push(const Globals& g, const Args& args);
int cmd_rmi(const Globals& g, const Args& args);
int cmd_gc(const Globals& g, const Args& args);

}  // namespace strata::tool
