// SPDX-License-Identifier: Apache-2.0
// strata pull REF: copy an image into the store.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "progress.h"
#include "strata/oci/image.h"
#include "strata/oci/pull.h"
#include "strata/oci/reference.h"
#include "strata/oci/registry.h"

namespace strata::tool {
namespace {

constexpr const char* kUsage =
    "Usage: strata pull [OPTIONS] REF\n"
    "\n"
    "Copy an image into the store, verifying every blob and layer, and name it.\n"
    "REF: [docker://]REGISTRY/REPO[:TAG|@sha256:DIGEST]  (a registry; the default transport)\n"
    "     oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE\n"
    "\n"
    "Options:\n"
    "  --platform OS/ARCH[/VARIANT]  which image of a multi-platform index (default: this machine's)\n"
    "  --name NAME                   the name to give the image in the store\n"
    "                                (default: REGISTRY/REPO:TAG as given; localhost/<base name>:<TAG>\n"
    "                                for a layout; docker-archive's RepoTags)\n"
    "  --creds USER:PASS             registry credentials (default: $REGISTRY_AUTH_FILE,\n"
    "                                $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)\n"
    "  --tls-verify=BOOL             verify the registry's TLS certificate (default true); false\n"
    "                                also allows plain HTTP\n"
    "  --cert-dir DIR                trust the CA certificates DIR/*.crt for the registry\n"
    "  -j, --jobs N                  layers fetched and unpacked at once (default 3)\n"
    "  -q, --quiet                   no progress lines and no warnings: errors and the digest only\n"
    "  -h, --help                    this help\n"
    "\n"
    "Progress: on a terminal one line per layer, updated in place (Downloading with bytes and rate,\n"
    "Pull complete, Already exists); otherwise one line per layer when it is done, with its bytes\n"
    "and average rate.\n";

std::string base_name(const std::string& path, bool strip_ext) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  std::string b = slash == std::string::npos ? p : p.substr(slash + 1);
  if (strip_ext) {
    for (const char* ext : {".tar.gz", ".tgz", ".tar"}) {
      std::string e(ext);
      if (b.size() > e.size() && b.compare(b.size() - e.size(), e.size(), e) == 0) {
        b.resize(b.size() - e.size());
        break;
      }
    }
  }
  std::string out;
  for (char c : b) out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
  return out;
}

}  // namespace

int cmd_pull(const Globals& g, const Args& args) {
  oci::PullOptions opts;
  std::string ref_text, name, platform, creds, tls_verify, cert_dir, jobs;
  bool quiet = false;
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    if (is_help(args[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (take_value(args, i, "--platform", &platform, &missing) || take_value(args, i, "--name", &name, &missing) ||
        take_value(args, i, "--creds", &creds, &missing) || take_value(args, i, "--cert-dir", &cert_dir, &missing) ||
        take_value(args, i, "--jobs", &jobs, &missing) || take_value(args, i, "-j", &jobs, &missing)) {
      if (missing) return usage_error("pull", args[i] + " needs a value");
      continue;
    }
    if (args[i] == "--tls-verify") {
      tls_verify = "true";
    } else if (args[i].rfind("--tls-verify=", 0) == 0) {
      tls_verify = args[i].substr(13);
      if (tls_verify != "true" && tls_verify != "false") return usage_error("pull", "--tls-verify takes true or false");
    } else if (args[i] == "-q" || args[i] == "--quiet") {
      quiet = true;
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      return usage_error("pull", "unknown option '" + args[i] + "'");
    } else if (ref_text.empty()) {
      ref_text = args[i];
    } else {
      return usage_error("pull", "one REF only");
    }
  }
  if (ref_text.empty()) return usage_error("pull", "missing REF");
  if (!jobs.empty()) {
    char* end = nullptr;
    long n = std::strtol(jobs.c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 64) return usage_error("pull", "--jobs takes a number from 1 to 64");
    opts.jobs = static_cast<int>(n);
  }
  if (!platform.empty()) {
    auto p = oci::parse_platform(platform);
    if (!p) return fail(p.error());
    opts.platform = *p;
  }
  auto ref = oci::parse_reference(ref_text);
  if (!ref) return fail(ref.error());
  bool registry = ref->transport == oci::Transport::kDocker;
  if (!registry && (!creds.empty() || !tls_verify.empty() || !cert_dir.empty())) {
    return usage_error("pull", "--creds, --tls-verify and --cert-dir apply to registry references only");
  }
  oci::RegistryOptions ropts;
  ropts.tls_verify = tls_verify != "false";
  ropts.cert_dir = cert_dir;
  if (!creds.empty()) {
    auto c = oci::parse_creds(creds);
    if (!c) return usage_error("pull", "--creds: expected USER:PASSWORD");
    ropts.creds = *c;
  }
  auto st = open_store(g, true);
  if (!st) return fail(st.error());
  auto src = registry ? oci::open_registry(*ref, ropts) : oci::open_source(*ref, *st);
  if (!src) return fail(src.error());

  if (!name.empty()) {
    opts.names.push_back(name);
  } else if (registry) {
    // Named as docker names it: REGISTRY/REPO:TAG, or REGISTRY/REPO@sha256:... for a digest only.
    opts.names.push_back(ref->registry + "/" + ref->repository + (ref->tag.empty() ? "@" + ref->digest : ":" + ref->tag));
  } else if (auto given = (*src)->image_names(); !given.empty()) {
    opts.names = given;
  } else {
    bool archive = ref->transport != oci::Transport::kOciLayout;
    opts.names.push_back("localhost/" + base_name(ref->path, archive) + ":" + (ref->tag.empty() ? "latest" : ref->tag));
  }
  for (const auto& n : opts.names) {
    if (!store::valid_ref_name(n)) return fail("'" + n + "' is not a valid image name; give one with --name");
  }
  Progress progress(quiet ? Progress::kQuiet : isatty(STDOUT_FILENO) ? Progress::kTty : Progress::kPlain);
  opts.on_layer = [&progress](const oci::LayerEvent& e) { progress.on_layer(e); };
  auto res = oci::pull(*st, **src, opts);
  progress.finish();
  if (!res) return fail(res.error());
  // After the progress lines, which a TTY rewrites in place.
  if (!quiet)
    for (const auto& w : res->warnings) std::fprintf(stderr, "strata: warning: %s\n", w.c_str());
  std::printf("Digest: %s\n", res->manifest.digest.to_string().c_str());
  if (!quiet)
    for (const auto& n : opts.names) std::printf("%s\n", n.c_str());
  return 0;
}

}  // namespace strata::tool
