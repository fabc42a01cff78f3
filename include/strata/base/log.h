// SPDX-License-Identifier: Apache-2.0
// Logging: one line per event to stderr (or syslog once the daemon has detached).
//
// Levels: error and warning always; info unless quiet; debug only with -d. Thread-safe: each line is written
// with a single write(2). Libraries return errors; the caller that decides what to do logs once.
#pragma once

#include <cstdarg>

namespace strata::log {

enum class Level { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

void set_level(Level level);
Level level();
// After daemonizing stderr may be /dev/null: send lines to syslog instead.
void use_syslog(const char* ident);

void error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void debug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline bool debug_enabled() { return level() >= Level::kDebug; }

}  // namespace strata::log
