// SPDX-License-Identifier: Apache-2.0
// oci/registry_client: the HTTP and authentication machinery of the distribution API that pull
// (registry.cc, a Source) and push (push.cc) share.
//
//   auto c = RegistryClient::connect(ref, options, RegistryClient::Access::kPush);
//   HttpRequest r;  r.method = "HEAD";  r.url = c->repo_url("/blobs/" + digest);
//   auto resp = c->request(r);      // 401 -> authenticate once -> the same request again
//
// connect() loads --cert-dir, finds credentials (RegistryOptions::creds, else the auth files),
// pings https://REGISTRY/v2/ (with tls_verify=false, falling back to http://) and authenticates
// when the ping answers 401: basic, or a bearer token for scope repository:REPO:pull (kPull) or
// repository:REPO:pull,push (kPush) — a push asks for its token before the first upload, so that
// a body is not sent twice. A later 401 (an expired token) re-authenticates and retries once; a
// request body is then re-read from offset 0 (HttpBody::read_at). An Authorization header is never
// sent to another host than the registry's (redirects to blob storage, absolute upload Locations).
// Rejected credentials are EACCES naming the registry and user; missing ones EACCES asking for
// --creds; a 403 on a request is EACCES too.
//
// HttpStream is one request whose response body is read on demand (curl's multi interface driven
// from read(); the transfer pauses above 1 MiB buffered, so memory does not grow with a blob). A
// request body streams from HttpBody::read_at with Content-Length = size.
// Thread-safety: RegistryClient::request may be called from several threads at once (each request
// has its own curl handles; the credentials are guarded); one thread per HttpStream.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "strata/base/result.h"
#include "strata/oci/registry.h"
#include "strata/oci/source.h"
#include "strata/store/digest.h"

namespace strata::oci {

struct TlsConfig {
  bool verify = true;
  std::string ca_blob;  // PEM certificates from --cert-dir; empty: the system's
};

// A request body of `size` bytes, readable from any offset (an auth retry starts it again).
struct HttpBody {
  uint64_t size = 0;
  std::function<Result<size_t>(uint64_t offset, void* buf, size_t n)> read_at;
  static HttpBody of_string(std::string s);
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::optional<HttpBody> body;
  // Called with the body bytes sent so far, from the thread driving the request.
  std::function<void(uint64_t)> on_sent;
};

class HttpStream : public BlobReader {
 public:
  ~HttpStream() override;
  // Runs the request until the final response's headers are in.
  static Result<std::unique_ptr<HttpStream>> start(const HttpRequest& req, const TlsConfig& tls);

  long status() const { return status_; }
  const std::string& url() const { return url_; }
  // A response header by lowercase name; "" when absent.
  std::string header(const std::string& name) const;
  Result<size_t> read(void* out, size_t size) override;
  // The whole (remaining) body, at most `max` bytes (EFBIG beyond).
  Result<std::string> read_all(size_t max);

 private:
  HttpStream() = default;
  static size_t on_data(char* p, size_t, size_t n, void* self);
  static size_t on_header(char* p, size_t, size_t n, void* self);
  static size_t on_read(char* p, size_t, size_t n, void* self);
  Status pump();

  std::string url_, method_;
  void* easy_ = nullptr;     // CURL*
  void* multi_ = nullptr;    // CURLM*
  void* headers_ = nullptr;  // curl_slist*
  std::map<std::string, std::string> resp_headers_;
  std::string buf_;
  size_t pos_ = 0;
  long status_ = 0;
  bool done_ = false;
  bool paused_ = false;
  bool body_started_ = false;
  std::optional<HttpBody> body_;
  uint64_t sent_ = 0;
  std::optional<Error> body_error_;
  std::function<void(uint64_t)> on_sent_;
};

class RegistryClient {
 public:
  enum class Access { kPull, kPush };

  static Result<std::unique_ptr<RegistryClient>> connect(const Reference& ref,
                                                         const RegistryOptions& options,
                                                         Access access);

  // Sends req (adding Authorization for the registry's own host); a 401 authenticates and retries
  // once, a second 401 is the EACCES error. Other statuses are the caller's to judge.
  Result<std::unique_ptr<HttpStream>> request(const HttpRequest& req);

  // base/v2/REPO + path ("/blobs/sha256:...").
  std::string repo_url(std::string_view path) const;
  // "https://host[:port]" (or http:// after the fallback).
  const std::string& base() const { return base_; }
  const Reference& ref() const { return ref_; }
  // "REGISTRY/REPO".
  std::string where() const { return ref_.registry + "/" + ref_.repository; }
  // The error for a response the caller did not expect: errno from the status (401/403 EACCES,
  // 404 ENOENT), op, "what: HTTP 400 CODE: message" from the registry's error body.
  Error status_error(HttpStream& s, const std::string& op, const std::string& what);

 private:
  RegistryClient(Reference ref, RegistryOptions opts, Access access)
      : ref_(std::move(ref)), opts_(std::move(opts)), access_(access) {}
  Status start();
  Status authenticate(const std::string& challenge);
  Error unauthorized(HttpStream& s);
  bool same_host(const std::string& url) const;

  Reference ref_;
  RegistryOptions opts_;
  Access access_;
  std::optional<Credentials> creds_;
  TlsConfig tls_;
  std::string host_, base_;
  std::mutex auth_mu_;  // guards auth_; held across authenticate() so one thread fetches a token
  std::string auth_;    // "Basic ..." / "Bearer ..." / ""
};

// The registry's error text ({"errors":[{"code":..,"message":..}]}), else "HTTP <status>".
std::string describe_response(HttpStream& s);
// EACCES for 401/403, ENOENT for 404, ERANGE for 416, else EIO.
int errno_for_status(long status);

// Pure helpers, tested on their own.
std::string url_escape(std::string_view s);
std::string base64_encode(std::string_view in);
// The URL to finish an upload at: `location` (a Location header: absolute, or relative to `base`,
// possibly with a query such as "?_state=...") with "digest=<escaped digest>" appended with '?' or
// '&' as the query needs. EBADMSG for an empty location or one with a fragment.
Result<std::string> upload_url(std::string_view base, std::string_view location,
                               const store::Digest& digest);
// Scheme and authority of a URL ("https://h:5000/x" -> "https://h:5000"); "" when not absolute.
std::string url_origin(std::string_view url);

}  // namespace strata::oci
