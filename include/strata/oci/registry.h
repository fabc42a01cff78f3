// SPDX-License-Identifier: Apache-2.0
// oci/registry: the docker:// transport, a Source over an OCI distribution (Docker Registry API v2)
// registry, and the pieces of its authentication that are worth testing on their own.
//
//   RegistryOptions o;  o.tls_verify = false;  o.creds = Credentials{"u", "p"};
//   auto src = open_registry(ref, o);   // pings /v2/ and authenticates; then use it as any Source
//
// Protocol: https://REGISTRY/v2/ is pinged first; with tls_verify=false a registry that does not
// speak TLS is retried over plain http://, and certificates are not verified. Manifests are fetched
// with an Accept header naming every manifest type pull understands (OCI manifest and index, Docker
// schema2 manifest and manifest list): without it distribution converts schema2 to schema1 (another
// digest) and answers 404 for an OCI index. The Content-Type header is the media type when the body
// has none. A @sha256 reference's manifest is checked against that digest (by the pull pipeline,
// via FetchedManifest::descriptor); for a tag, a Docker-Content-Digest header is checked the same
// way. Blobs are streamed (libcurl, redirects followed; an Authorization header is never sent to
// another host), and get_blob_from() sends "Range: bytes=N-" for a resumed ingest: 206 resumes, 200
// restarts.
//
// Authentication: anonymous; basic (credentials from RegistryOptions::creds, else the auth files,
// see find_credentials); bearer tokens (a 401 with `WWW-Authenticate: Bearer realm=..,service=..,
// scope=..` -> GET realm?service=..&scope=.. with the basic credentials if any -> "token" or
// "access_token" -> retried with `Authorization: Bearer`). Rejected credentials are EACCES naming
// the registry; no credentials where some are needed too. Errors: Result, naming the URL or
// registry. Thread-safety: one thread per Source and BlobReader.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/oci/reference.h"
#include "strata/oci/source.h"

namespace strata::oci {

struct Credentials {
  std::string user;
  std::string password;
};

struct RegistryOptions {
  bool tls_verify = true;
  // A directory holding CA certificates (*.crt) to trust instead of the system's.
  std::string cert_dir;
  // Explicit credentials (--creds); otherwise the auth files are searched.
  std::optional<Credentials> creds;
};

// One challenge of a WWW-Authenticate header: `Bearer realm="https://a/token",service="reg"`.
// Scheme is lowercased; parameter names are lowercased, values unquoted (backslash escapes
// honoured).
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
// The first challenge of the header. EINVAL for an empty or malformed header.
Result<AuthChallenge> parse_www_authenticate(std::string_view header);

// "USER:PASS" (the password may hold ':'). EINVAL without ':' or with an empty user.
Result<Credentials> parse_creds(std::string_view text);

// Credentials for `registry` (host[:port]) in an auth file body (containers auth.json or docker
// config.json): auths.<key>.auth is base64("user:password"). Keys match as the registry itself, or
// as a URL naming it ("https://host/v1/", "http://host"); docker.io also matches "index.docker.io"
// and "https://index.docker.io/v1/". nullopt when the file has no entry; EINVAL for a malformed
// file or entry.
Result<std::optional<Credentials>> parse_auth_file(std::string_view json,
                                                   std::string_view registry);

// The first file with an entry for `registry`, in order: $REGISTRY_AUTH_FILE,
// $XDG_RUNTIME_DIR/containers/auth.json, $HOME/.docker/config.json. Missing files are skipped.
Result<std::optional<Credentials>> find_credentials(std::string_view registry);

// Standard base64 (padding optional). EINVAL on anything else.
Result<std::string> base64_decode(std::string_view in);

Result<std::unique_ptr<Source>> open_registry(const Reference& ref, const RegistryOptions& options);

}  // namespace strata::oci
