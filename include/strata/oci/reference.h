// SPDX-License-Identifier: Apache-2.0
// oci/reference: image references as skopeo spells them, for every transport strata knows.
//
//   [docker://]REGISTRY/REPO[:TAG][@sha256:HEX]   (a name without a transport is docker://)
//   oci:DIR[:TAG]            an OCI image layout directory; TAG is org.opencontainers.image.ref.name
//   oci-archive:FILE[:TAG]   a tar of an OCI image layout
//   docker-archive:FILE      `docker save` output (manifest.json + configs + layer tars)
//
// docker:// names are validated with the distribution grammar (lowercase repository path components
// separated by '/', a tag of [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, a sha256 digest) and normalised as
// docker does: no registry means docker.io, a single component on docker.io gets "library/", neither
// tag nor digest means ":latest". For the local transports the first ':' after the path separates
// the tag, which may itself hold ':' and '/' (a ref name like "localhost/x:1"); paths containing ':'
// are not expressible, as with skopeo. An empty path or tag, or a tag with spaces or control
// characters, is an error.
// Errors: EINVAL with op "parse reference" and the input as detail. Thread-safety: plain values.
#pragma once

#include <string>
#include <string_view>

#include "strata/base/result.h"

namespace strata::oci {

enum class Transport { kDocker, kOciLayout, kOciArchive, kDockerArchive };

struct Reference {
  Transport transport = Transport::kDocker;
  // Local transports: the directory or archive file and the (possibly empty) tag.
  std::string path;
  std::string tag;
  // docker://: registry host[:port], repository path, tag (may be empty when digest is set), digest.
  std::string registry;
  std::string repository;
  std::string digest;

  // Canonical text: "docker.io/library/alpine:3.19", "oci:/tmp/l:v1", "docker-archive:/x.tar".
  std::string to_string() const;
};

Result<Reference> parse_reference(std::string_view text);

// Name of a transport as written before ':' ("oci", "docker-archive", ...).
const char* transport_name(Transport t);

}  // namespace strata::oci
