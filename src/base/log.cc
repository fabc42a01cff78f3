// SPDX-License-Identifier: Apache-2.0
#include "strata/base/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace strata::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};
std::atomic<bool> g_syslog{false};

void emit(Level lvl, const char* tag, const char* fmt, va_list ap) {
  if (lvl > g_level.load(std::memory_order_relaxed)) return;
  char buf[2048];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof buf - 2 ? static_cast<size_t>(n) : sizeof buf - 2;
  if (g_syslog.load(std::memory_order_relaxed)) {
    static const int kPrio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    syslog(kPrio[static_cast<int>(lvl)], "%s%.*s", tag, static_cast<int>(len), buf);
    return;
  }
  char line[2200];
  int m = snprintf(line, sizeof line, "%s%.*s\n", tag, static_cast<int>(len), buf);
  if (m > 0) {
    // A failed log write has nowhere else to go.
    (void)!::write(STDERR_FILENO, line, static_cast<size_t>(m) < sizeof line ? m : sizeof line - 1);
  }
}

}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level.load(std::memory_order_relaxed); }
void use_syslog(const char* ident) {
  openlog(ident, LOG_PID, LOG_DAEMON);
  g_syslog = true;
}

#define STRATA_LOG_FN(name, lvl, tag) \
  void name(const char* fmt, ...) {   \
    va_list ap;                       \
    va_start(ap, fmt);                \
    emit(lvl, tag, fmt, ap);          \
    va_end(ap);                       \
  }
STRATA_LOG_FN(error, Level::kError, "error: ")
STRATA_LOG_FN(warning, Level::kWarning, "warning: ")
STRATA_LOG_FN(info, Level::kInfo, "")
STRATA_LOG_FN(debug, Level::kDebug, "debug: ")
#undef STRATA_LOG_FN

}  // namespace strata::log
