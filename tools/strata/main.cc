// SPDX-License-Identifier: Apache-2.0
// strata: pull images into the layer store and mount them with stratafs. Subcommands: one file each.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "common.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "unknown"
#endif

namespace {

using strata::tool::Args;
using strata::tool::Globals;

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Globals&, const Args&);
};

constexpr Command kCommands[] = {
    {"pull", "copy an image into the store (oci:, oci-archive:, docker-archive:)", strata::tool::cmd_pull},
    {"images", "list the images in the store", strata::tool::cmd_images},
    {"inspect", "show an image's details as JSON", strata::tool::cmd_inspect},
    {"mount", "mount an image with a fresh writable layer", strata::tool::cmd_mount},
    {"umount", "unmount a container (its writable layer is kept)", strata::tool::cmd_umount},
    {"ps", "list containers", strata::tool::cmd_ps},
    {"commit", "make a new image of a container's changes", strata::tool::cmd_commit},
    {"push", "copy an image to a registry or an OCI layout", strata::tool::cmd_push},
    {"rmi", "remove image names (gc frees the space)", strata::tool::cmd_rmi},
    {"gc", "delete blobs and layers no image or container uses", strata::tool::cmd_gc},
};

void usage(FILE* out) {
  std::fputs(
      "Usage: strata [--root DIR] [--stratafs PATH] COMMAND [OPTIONS] [ARGS]\n"
      "\n"
      "Global options:\n"
      "  --root DIR         the store (default: $STRATA_ROOT, else /var/lib/strata for root,\n"
      "                     else ~/.local/share/strata)\n"
      "  --stratafs PATH    the stratafs daemon (default: $STRATA_STRATAFS, else next to strata, else PATH)\n"
      "  --version          print the version\n"
      "  -h, --help         this help; 'strata COMMAND --help' for a command's\n"
      "\nCommands:\n",
      out);
  for (const auto& c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
}

int real_main(int argc, char** argv) {
  Globals g;
  if (const char* r = std::getenv("STRATA_ROOT"); r && *r) g.root = r;
  if (const char* s = std::getenv("STRATA_STRATAFS"); s && *s) g.stratafs = s;
  Args rest;
  const Command* cmd = nullptr;
  for (int i = 1; i < argc; ++i) rest.emplace_back(argv[i]);
  // Global options may come before or after the command name.
  Args cmd_args;
  for (size_t i = 0; i < rest.size(); ++i) {
    bool missing = false;
    std::string v;
    std::string* target = nullptr;
    if (strata::tool::take_value(rest, i, "--root", &v, &missing)) target = &g.root;
    else if (strata::tool::take_value(rest, i, "--stratafs", &v, &missing)) target = &g.stratafs;
    if (target) {
      if (missing) return strata::tool::usage_error(cmd ? cmd->name : "", rest[i] + " needs a value");
      *target = v;
      continue;
    }
    if (!cmd && rest[i] == "--version") {
      std::printf("strata %s\n", STRATA_VERSION);
      return 0;
    }
    if (!cmd && strata::tool::is_help(rest[i])) {
      usage(stdout);
      return 0;
    }
    if (!cmd) {
      for (const auto& c : kCommands)
        if (rest[i] == c.name) cmd = &c;
      if (!cmd) {
        std::fprintf(stderr, "strata: unknown command or option '%s'\n", rest[i].c_str());
        usage(stderr);
        return 2;
      }
      continue;
    }
    cmd_args.push_back(rest[i]);
  }
  if (!cmd) {
    usage(stderr);
    return 2;
  }
  return cmd->run(g, cmd_args);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return real_main(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fputs("strata: out of memory\n", stderr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "strata: internal error: %s\n", e.what());
  } catch (...) {
    std::fputs("strata: internal error\n", stderr);
  }
  return 1;
}
