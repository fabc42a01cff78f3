// SPDX-License-Identifier: Apache-2.0
// strata push IMAGE [DEST]: copy an image of the store to a registry or an OCI layout.
#include "strata/oci/push.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common.h"
#include "progress.h"
#include "strata/oci/image.h"
#include "strata/oci/reference.h"
#include "strata/oci/registry.h"

namespace strata::tool {
namespace {

constexpr const char* kUsage =
    "Usage: strata push [OPTIONS] IMAGE [DEST]\n"
    "\n"
    "Copy an image of the store to a registry or an OCI layout. Blobs the destination already has\n"
    "are not sent again; the manifest goes out byte for byte (its digest does not change).\n"
    "IMAGE: a name in the store (REPO[:TAG]) or an image ID (prefix).\n"
    "DEST:  [docker://]REGISTRY/REPO[:TAG]   (default: the image's own name)\n"
    "       oci:DIR[:TAG]                    an OCI image layout, created when missing\n"
    "\n"
    "Options:\n"
    "  --creds USER:PASS    registry credentials (default: $REGISTRY_AUTH_FILE,\n"
    "                       $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json)\n"
    "  --tls-verify=BOOL    verify the registry's TLS certificate (default true); false also\n"
    "                       allows plain HTTP\n"
    "  --cert-dir DIR       trust the CA certificates DIR/*.crt for the registry\n"
    "  -j, --jobs N         blobs uploaded at once (default 3)\n"
    "  -q, --quiet          no progress lines: errors and the digest only\n"
    "  -h, --help           this help\n"
    "\n"
    "Progress: one line per blob (the layers, then the config): Pushing, Pushed, or Layer already\n"
    "exists on a terminal; otherwise one line per blob when it is done. Then the manifest's "
    "digest\n"
    "and the destination. An image whose ref is an index pushes the platform manifests the store\n"
    "holds; a platform the store lacks must already be at the destination, else nothing is sent.\n";

}  // namespace

int cmd_push(const Globals& g, const Args& args) {
  std::string image, dest_text, creds, tls_verify, cert_dir, jobs;
  bool quiet = false;
  for (size_t i = 0; i < args.size(); ++i) {
    bool missing = false;
    if (is_help(args[i])) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (take_value(args, i, "--creds", &creds, &missing) ||
        take_value(args, i, "--cert-dir", &cert_dir, &missing) ||
        take_value(args, i, "--jobs", &jobs, &missing) ||
        take_value(args, i, "-j", &jobs, &missing)) {
      if (missing) return usage_error("push", args[i] + " needs a value");
      continue;
    }
    if (args[i] == "--tls-verify") {
      tls_verify = "true";
    } else if (args[i].rfind("--tls-verify=", 0) == 0) {
      tls_verify = args[i].substr(13);
      if (tls_verify != "true" && tls_verify != "false")
        return usage_error("push", "--tls-verify takes true or false");
    } else if (args[i] == "-q" || args[i] == "--quiet") {
      quiet = true;
    } else if (args[i].size() > 1 && args[i][0] == '-') {
      return usage_error("push", "unknown option '" + args[i] + "'");
    } else if (image.empty()) {
      image = args[i];
    } else if (dest_text.empty()) {
      dest_text = args[i];
    } else {
      return usage_error("push", "too many arguments");
    }
  }
  if (image.empty()) return usage_error("push", "missing IMAGE");
  oci::PushOptions opts;
  if (!jobs.empty()) {
    char* end = nullptr;
    long n = std::strtol(jobs.c_str(), &end, 10);
    if (*end != '\0' || n < 1 || n > 64)
      return usage_error("push", "--jobs takes a number from 1 to 64");
    opts.jobs = static_cast<int>(n);
  }
  auto st = open_store(g, false);
  if (!st) return fail(st.error());

  // A name may point at an index (which find_image does not load); else an image ID.
  std::string name;
  oci::Descriptor desc;
  if (auto r = oci::resolve_name(*st, image)) {
    name = r->name;
    desc = r->descriptor;
  } else {
    auto img = oci::find_image(*st, image);
    if (!img) return fail(img.error());
    name = img->name;
    desc = img->manifest_desc;
  }
  if (dest_text.empty()) {
    if (name.empty()) return usage_error("push", "the image has no name: give DEST");
    dest_text = "docker://" + name;
  }
  auto ref = oci::parse_reference(dest_text);
  if (!ref) return fail(ref.error());
  bool registry = ref->transport == oci::Transport::kDocker;
  if (!registry && ref->transport != oci::Transport::kOciLayout)
    return usage_error("push", "DEST is docker://REGISTRY/REPO[:TAG] or oci:DIR[:TAG]");
  if (!registry && (!creds.empty() || !tls_verify.empty() || !cert_dir.empty()))
    return usage_error("push", "--creds, --tls-verify and --cert-dir apply to registries only");
  if (!ref->digest.empty() && ref->digest != desc.digest.to_string())
    return fail("DEST " + dest_text + " names digest " + ref->digest + " but " + image + " is " +
                desc.digest.to_string());
  opts.tag = ref->tag;
  oci::RegistryOptions ropts;
  ropts.tls_verify = tls_verify != "false";
  ropts.cert_dir = cert_dir;
  if (!creds.empty()) {
    auto c = oci::parse_creds(creds);
    if (!c) return usage_error("push", "--creds: expected USER:PASSWORD");
    ropts.creds = *c;
  }
  auto dest = oci::open_destination(*ref, ropts);
  if (!dest) return fail(dest.error());

  Progress progress(quiet                   ? Progress::kQuiet
                    : isatty(STDOUT_FILENO) ? Progress::kTty
                                            : Progress::kPlain,
                    Progress::kPush);
  opts.on_blob = [&progress](const oci::LayerEvent& e) { progress.on_layer(e); };
  auto res = oci::push(*st, desc, **dest, opts);
  progress.finish();
  if (!res) return fail(res.error());
  std::printf("Digest: %s\n", res->manifest.digest.to_string().c_str());
  if (!quiet) std::printf("%s\n", ref->to_string().c_str());
  return 0;
}

}  // namespace strata::tool
