// SPDX-License-Identifier: Apache-2.0
// commit/changes: the Dockerfile instructions `strata commit -c` accepts, as `docker commit
// --change` does, parsed and applied to an image config's "config" object.
//
// Instructions (keyword case-insensitive; arguments as in a Dockerfile):
//   CMD / ENTRYPOINT  ["exec","form"] (a JSON array of strings) or a shell form, which becomes
//                     ["/bin/sh","-c","the rest"]. ENTRYPOINT also clears Cmd unless a CMD came
//                     earlier in the same commit (Dockerfile semantics, as docker commit applies).
//   ENV               k=v [k2=v2 ...] (values may be quoted: k="a b", k='c', k=a\ b) or the legacy
//                     `ENV k the rest of the line`; a key already in Env is replaced in place.
//   LABEL             k=v ... (quoted like ENV) or legacy `LABEL k v`; into Labels.
//   EXPOSE            port[/proto] or from-to[/proto] ...; proto tcp (default), udp or sctp; into
//                     ExposedPorts {"80/tcp":{}}.
//   USER              user[:group].
//   VOLUME            ["/a","/b"] or /a /b; into Volumes {"/a":{}}.
//   WORKDIR           a path; a relative one is joined to the current WorkingDir ("/" if none).
//   STOPSIGNAL        a signal name (SIGTERM, TERM) or number (1-64).
// Anything else (RUN, ADD, COPY, FROM, ...), an empty instruction or a malformed argument is an
// EINVAL error naming the instruction, found by parse_changes() before anything is written.
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"

namespace strata::commit {

enum class ChangeKind {
  kCmd,
  kEntrypoint,
  kEnv,
  kLabel,
  kExpose,
  kUser,
  kVolume,
  kWorkdir,
  kStopSignal
};

struct Change {
  ChangeKind kind;
  std::string text;                                        // the instruction as given
  std::vector<std::string> args;                           // CMD, ENTRYPOINT, VOLUME, EXPOSE
  std::vector<std::pair<std::string, std::string>> pairs;  // ENV, LABEL
  std::string value;                                       // USER, WORKDIR, STOPSIGNAL
};

Result<Change> parse_change(std::string_view instruction);
Result<std::vector<Change>> parse_changes(const std::vector<std::string>& instructions);

// Apply `changes` in order to `config` (the image config's "config" object; made an object if it
// is null). EINVAL if config is neither null nor an object, or holds a field of the wrong type
// that a change must extend (Env not an array, ...).
Status apply_changes(nlohmann::json* config, const std::vector<Change>& changes);

}  // namespace strata::commit
