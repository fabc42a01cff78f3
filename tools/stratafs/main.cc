// SPDX-License-Identifier: Apache-2.0
// stratafs: mount a union of read-only layers and a writable upper with FUSE.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>

#include "options.h"
#include "strata/base/log.h"
#include "strata/fuse/session.h"
#include "strata/merge/overlay.h"
#include "strata/sys/identity.h"
#include "strata/sys/process.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "unknown"
#endif

namespace {

int real_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cfg = strata::tools::parse_args(args, geteuid() == 0);
  if (!cfg) {
    std::fprintf(stderr, "stratafs: %s\n%s", cfg.error().message().c_str(),
                 "Try 'stratafs --help' for more information.\n");
    return 2;
  }
  if (cfg->help) {
    std::fputs(strata::tools::kUsage, stdout);
    return 0;
  }
  if (cfg->version) {
    std::printf("stratafs %s\n", STRATA_VERSION);
    return 0;
  }
  for (const auto& w : cfg->warnings) std::fprintf(stderr, "stratafs: warning: %s\n", w.c_str());
  if (cfg->session.debug) strata::log::set_level(strata::log::Level::kDebug);
  // Modes given by the kernel are final (it applied the caller's umask already).
  umask(0);
  // Directory fds are cached (bounded); lift the soft limit so big workloads never hit EMFILE on opens
  // (best effort: the default limit still works, just tighter).
  (void)strata::sys::raise_nofile();
  // Unmapped ids show as the kernel's overflow ids, as stat(2) shows them in a user namespace.
  if (auto u = strata::sys::overflow_uid()) cfg->overlay.ids.overflow_uid = *u;
  if (auto g = strata::sys::overflow_gid()) cfg->overlay.ids.overflow_gid = *g;
  // fuse-overlayfs's switch for `.wh.NAME` whiteouts where device ones would work, honoured for drop-in use.
  if (std::getenv("FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT")) cfg->overlay.device_whiteouts = false;
  // The daemon leaves the caller's directory when it detaches (chdir "/"), and unmounts at SIGTERM and removes
  // its control socket by path: relative paths must be made absolute now.
  std::error_code ec;
  for (std::string* p : {&cfg->session.mountpoint, &cfg->session.control_socket}) {
    if (p->empty() || (*p)[0] == '/') continue;
    auto abs = std::filesystem::absolute(*p, ec);
    if (ec) {
      std::fprintf(stderr, "stratafs: %s: %s\n", p->c_str(), ec.message().c_str());
      return 1;
    }
    *p = abs.lexically_normal().string();
  }
  auto ov = strata::merge::Overlay::open(cfg->overlay);
  if (!ov) {
    std::fprintf(stderr, "stratafs: %s\n", ov.error().message().c_str());
    return 1;
  }
  return strata::fuse::run(**ov, cfg->session);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return real_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stratafs: fatal: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "stratafs: fatal: unknown exception\n");
  }
  return 1;
}
