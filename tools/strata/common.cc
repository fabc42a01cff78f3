// SPDX-License-Identifier: Apache-2.0
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>

#include "strata/sys/fs.h"
#include "strata/sys/identity.h"
#include "strata/whiteout/override_stat.h"

namespace strata::tool {

Result<store::Store> open_store(const Globals& g, bool create) {
  std::string root = g.root;
  if (root.empty()) {
    STRATA_ASSIGN_OR_RETURN(r, store::default_root());
    root = r;
  }
  auto s = store::Store::open(root, create);
  if (!s && s.error().err == ENOENT && !create) {
    return make_error(ENOENT, "open store", root + " (nothing pulled yet?)");
  }
  return s;
}

std::string owner_record_option(const std::vector<std::string>& lowers) {
  constexpr const char* kOption = ",xattr_permissions=2";
  if (::geteuid() != 0 || !sys::in_initial_userns()) return kOption;
  for (const auto& l : lowers) {
    auto fd = sys::open_path(l.c_str(), O_PATH | O_DIRECTORY);
    if (!fd) continue;  // stratafs names the layer it cannot open
    if (sys::get_xattr(fd->get(), "", whiteout::kOverrideStatUser)) return kOption;
  }
  return "";
}

int fail(const Error& e) { return fail(e.message()); }

int fail(const std::string& message) {
  std::fprintf(stderr, "strata: %s\n", message.c_str());
  return 1;
}

int usage_error(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "strata %s: %s\nTry 'strata %s --help' for more information.\n", cmd, message.c_str(), cmd);
  return 2;
}

bool take_value(const Args& args, size_t& i, const char* flag, std::string* value, bool* missing) {
  const std::string& a = args[i];
  std::string f(flag);
  if (a == f) {
    if (i + 1 >= args.size()) {
      *missing = true;
      return true;
    }
    *value = args[++i];
    return true;
  }
  if (a.size() > f.size() && a.compare(0, f.size(), f) == 0 && a[f.size()] == '=') {
    *value = a.substr(f.size() + 1);
    return true;
  }
  return false;
}

bool is_help(const std::string& a) { return a == "--help" || a == "-h"; }

std::string human_size(uint64_t bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.3g%s", v, kUnits[u]);
  return buf;
}

std::string human_age(const std::string& t) {
  struct tm tm = {};
  if (t.size() < 19 || !strptime(t.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return "";
  time_t then = timegm(&tm);
  long long d = static_cast<long long>(std::time(nullptr) - then);
  auto fmt = [](long long n, const char* unit) {
    return std::to_string(n) + " " + unit + (n == 1 ? "" : "s") + " ago";
  };
  if (d < 0) return "in the future";
  if (d < 60) return fmt(d, "second");
  if (d < 3600) return fmt(d / 60, "minute");
  if (d < 86400) return fmt(d / 3600, "hour");
  if (d < 86400 * 14) return fmt(d / 86400, "day");
  if (d < 86400 * 60) return fmt(d / (86400 * 7), "week");
  if (d < 86400 * 730) return fmt(d / (86400 * 30), "month");
  return fmt(d / (86400 * 365), "year");
}

}  // namespace strata::tool
