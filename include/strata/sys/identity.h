// SPDX-License-Identifier: Apache-2.0
// sys: who the process is, beyond its ids: the user namespace it runs in and the kernel's overflow ids.
// Read from /proc; errors as Result, nothing thrown or logged. Thread-safety: reentrant.
#pragma once

#include <cstdint>

#include "strata/base/result.h"

namespace strata::sys {

// True when the process runs in the initial user namespace (its uid_map is the identity over all ids), where
// root may use trusted.* xattrs and device nodes. False inside `unshare -U` and rootless containers; false also
// when /proc cannot tell.
bool in_initial_userns();
// /proc/sys/kernel/overflowuid and overflowgid: the id a stat shows for an owner its namespace cannot map
// (65534 unless changed).
Result<uint32_t> overflow_uid();
Result<uint32_t> overflow_gid();

}  // namespace strata::sys
