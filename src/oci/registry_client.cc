// SPDX-License-Identifier: Apache-2.0
// HTTP (libcurl) and authentication for the distribution API. See registry_client.h.
#include "strata/oci/registry_client.h"

#include <curl/curl.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxSmallBody = 1u << 20;  // tokens, error bodies
constexpr size_t kHighWater = 1u << 20;     // pause the transfer above this much buffered data

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lowercase(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() &&
         (s.back() == '\r' || s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

Result<std::string> load_ca_dir(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& ent : std::filesystem::directory_iterator(dir, ec)) {
    auto p = ent.path();
    if (p.extension() == ".crt") files.push_back(p.string());
  }
  if (ec) return make_error(ec.value(), "open --cert-dir", dir);
  std::sort(files.begin(), files.end());
  std::string pem;
  for (const auto& f : files) {
    auto fd = sys::open_path(f.c_str(), O_RDONLY);
    if (!fd) return make_error(fd.error().err, "open", f);
    char buf[65536];
    while (true) {
      auto n = sys::read_some(fd->get(), buf, sizeof buf);
      if (!n) return make_error(n.error().err, "read", f);
      if (*n == 0) break;
      pem.append(buf, *n);
      if (pem.size() > (16u << 20)) return make_error(EFBIG, "read", f);
    }
    pem.push_back('\n');
  }
  if (files.empty()) return make_error(ENOENT, "--cert-dir", dir + ": no *.crt file");
  return pem;
}

}  // namespace

// ---- HttpBody, HttpStream ----

HttpBody HttpBody::of_string(std::string s) {
  auto data = std::make_shared<const std::string>(std::move(s));
  HttpBody b;
  b.size = data->size();
  b.read_at = [data](uint64_t off, void* buf, size_t n) -> Result<size_t> {
    if (off >= data->size()) return size_t{0};
    size_t k = std::min<uint64_t>(n, data->size() - off);
    std::memcpy(buf, data->data() + off, k);
    return k;
  };
  return b;
}

HttpStream::~HttpStream() {
  auto* multi = static_cast<CURLM*>(multi_);
  auto* easy = static_cast<CURL*>(easy_);
  if (multi && easy) curl_multi_remove_handle(multi, easy);
  if (easy) curl_easy_cleanup(easy);
  if (multi) curl_multi_cleanup(multi);
  if (headers_) curl_slist_free_all(static_cast<curl_slist*>(headers_));
}

Result<std::unique_ptr<HttpStream>> HttpStream::start(const HttpRequest& req,
                                                      const TlsConfig& tls) {
  global_init();
  std::unique_ptr<HttpStream> s(new HttpStream());
  s->url_ = req.url;
  s->method_ = req.method;
  CURL* e = curl_easy_init();
  s->easy_ = e;
  s->multi_ = curl_multi_init();
  if (!e || !s->multi_) return make_error(ENOMEM, "curl init", req.url);
  curl_slist* hl = nullptr;
  for (const auto& h : req.headers) hl = curl_slist_append(hl, h.c_str());
  s->headers_ = hl;
  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  bool idempotent_read = req.method == "GET" || req.method == "HEAD";
  if (idempotent_read) {
    // Blobs are often redirected to storage elsewhere. Uploads are not followed: a 3xx there is an
    // answer to judge, and a body cannot be re-sent to a new place by curl.
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, tls.verify ? "https" : "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
  }
  if (req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (req.body || req.method == "PUT" || req.method == "PATCH") {
    s->body_ = req.body ? *req.body : HttpBody::of_string("");
    s->on_sent_ = req.on_sent;
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(s->body_->size));
    curl_easy_setopt(e, CURLOPT_READFUNCTION, &HttpStream::on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, s.get());
    if (req.method != "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
  } else if (req.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "strata/" STRATA_VERSION);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for 60 s) fails instead of hanging.
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
  if (!tls.ca_blob.empty()) {
    curl_blob blob{const_cast<char*>(tls.ca_blob.data()), tls.ca_blob.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &HttpStream::on_data);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, s.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &HttpStream::on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, s.get());
  curl_multi_add_handle(static_cast<CURLM*>(s->multi_), e);
  // Run until the final response's headers are in (first body byte, or the end).
  while (!s->done_ && s->buf_.empty() && !s->body_started_) STRATA_TRY(s->pump());
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  s->status_ = code;
  return s;
}

std::string HttpStream::header(const std::string& name) const {
  auto it = resp_headers_.find(name);
  return it == resp_headers_.end() ? std::string() : it->second;
}

Result<size_t> HttpStream::read(void* out, size_t size) {
  while (buf_.size() == pos_ && !done_) STRATA_TRY(pump());
  if (buf_.size() == pos_) return size_t{0};
  size_t n = std::min(size, buf_.size() - pos_);
  std::memcpy(out, buf_.data() + pos_, n);
  pos_ += n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
    if (paused_) {
      paused_ = false;
      curl_easy_pause(static_cast<CURL*>(easy_), CURLPAUSE_CONT);
    }
  }
  return n;
}

Result<std::string> HttpStream::read_all(size_t max) {
  std::string out;
  char tmp[65536];
  while (true) {
    STRATA_ASSIGN_OR_RETURN(n, read(tmp, sizeof tmp));
    if (n == 0) break;
    out.append(tmp, n);
    if (out.size() > max)
      return make_error(EFBIG, method_,
                        url_ + ": response larger than " + std::to_string(max) + " bytes");
  }
  return out;
}

size_t HttpStream::on_data(char* p, size_t, size_t n, void* self_) {
  auto* self = static_cast<HttpStream*>(self_);
  self->body_started_ = true;
  if (self->buf_.size() - self->pos_ > kHighWater) {
    self->paused_ = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  self->buf_.append(p, n);
  return n;
}

size_t HttpStream::on_header(char* p, size_t, size_t n, void* self_) {
  auto* self = static_cast<HttpStream*>(self_);
  std::string line(p, n);
  if (line.compare(0, 5, "HTTP/") == 0) {
    self->resp_headers_.clear();  // a new response (after a redirect or a 100 Continue)
  } else if (auto colon = line.find(':'); colon != std::string::npos) {
    self->resp_headers_[lowercase(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return n;
}

size_t HttpStream::on_read(char* p, size_t, size_t n, void* self_) {
  auto* self = static_cast<HttpStream*>(self_);
  auto got = self->body_->read_at(self->sent_, p, n);
  if (!got) {
    self->body_error_ = got.take_error();
    return CURL_READFUNC_ABORT;
  }
  if (*got == 0 && self->sent_ < self->body_->size) {
    self->body_error_ =
        make_error(EIO, self->method_,
                   self->url_ + ": request body ended after " + std::to_string(self->sent_) +
                       " of " + std::to_string(self->body_->size) + " bytes");
    return CURL_READFUNC_ABORT;
  }
  self->sent_ += *got;
  if (self->on_sent_) self->on_sent_(self->sent_);
  return *got;
}

Status HttpStream::pump() {
  auto* multi = static_cast<CURLM*>(multi_);
  int running = 0;
  CURLMcode mc = curl_multi_perform(multi, &running);
  if (mc != CURLM_OK) return make_error(EIO, method_, url_ + ": " + curl_multi_strerror(mc));
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
    if (m->msg == CURLMSG_DONE) {
      done_ = true;
      if (body_error_) return *body_error_;
      if (m->data.result != CURLE_OK) {
        int err = m->data.result == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                  : m->data.result == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
                                                             : EIO;
        return make_error(err, method_, url_ + ": " + curl_easy_strerror(m->data.result));
      }
    }
  }
  if (!done_ && running == 0) done_ = true;
  if (!done_ && buf_.size() == pos_ && !paused_) {
    mc = curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    if (mc != CURLM_OK) return make_error(EIO, method_, url_ + ": " + curl_multi_strerror(mc));
  }
  return {};
}

// ---- helpers ----

std::string url_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static const char* hex = "0123456789ABCDEF";
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string base64_encode(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out.push_back(tbl[(v >> k) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {tbl[(v >> 18) & 63], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
  }
  return out;
}

std::string url_origin(std::string_view url) {
  auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return "";
  for (char c : url.substr(0, sep))
    if (!std::isalpha(static_cast<unsigned char>(c))) return "";
  auto end = url.find_first_of("/?#", sep + 3);
  return lowercase(std::string(url.substr(0, end)));
}

Result<std::string> upload_url(std::string_view base, std::string_view location,
                               const store::Digest& digest) {
  if (location.empty())
    return make_error(EBADMSG, "upload", std::string(base) + ": 202 without a Location");
  if (location.find('#') != std::string_view::npos)
    return make_error(EBADMSG, "upload", "Location with a fragment: " + std::string(location));
  std::string url;
  if (!url_origin(location).empty()) {
    url = std::string(location);
  } else {
    url = std::string(base);
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (location.front() != '/') url.push_back('/');
    url += location;
  }
  auto q = url.find('?');
  if (q == std::string::npos)
    url += '?';
  else if (q + 1 != url.size() && url.back() != '&')
    url += '&';
  url += "digest=" + url_escape(digest.to_string());
  return url;
}

std::string describe_response(HttpStream& s) {
  std::string what = "HTTP " + std::to_string(s.status());
  auto body = s.read_all(kMaxSmallBody);
  if (body) {
    auto j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
      const auto& e = j["errors"][0];
      if (e.is_object()) {
        if (e.contains("code") && e["code"].is_string()) what += " " + e["code"].get<std::string>();
        if (e.contains("message") && e["message"].is_string())
          what += ": " + e["message"].get<std::string>();
      }
    }
  }
  return what;
}

int errno_for_status(long status) {
  switch (status) {
    case 401:
    case 403:
      return EACCES;
    case 404:
      return ENOENT;
    case 416:
      return ERANGE;
    default:
      return EIO;
  }
}

// ---- RegistryClient ----

Result<std::unique_ptr<RegistryClient>> RegistryClient::connect(const Reference& ref,
                                                                const RegistryOptions& options,
                                                                Access access) {
  if (ref.transport != Transport::kDocker)
    return make_error(EINVAL, "open registry", ref.to_string());
  std::unique_ptr<RegistryClient> c(new RegistryClient(ref, options, access));
  STRATA_TRY(c->start());
  return c;
}

Status RegistryClient::start() {
  tls_.verify = opts_.tls_verify;
  if (!opts_.cert_dir.empty()) {
    STRATA_ASSIGN_OR_RETURN(pem, load_ca_dir(opts_.cert_dir));
    tls_.ca_blob = std::move(pem);
  }
  if (!opts_.creds) {
    STRATA_ASSIGN_OR_RETURN(c, find_credentials(ref_.registry));
    creds_ = std::move(c);
  } else {
    creds_ = opts_.creds;
  }
  // docker.io's API lives elsewhere.
  host_ = ref_.registry == "docker.io" ? "registry-1.docker.io" : ref_.registry;
  base_ = "https://" + host_;
  HttpRequest ping;
  ping.url = base_ + "/v2/";
  auto p = HttpStream::start(ping, tls_);
  if (!p && !opts_.tls_verify) {
    // A test registry without TLS: skopeo's --tls-verify=false falls back to http the same way.
    base_ = "http://" + host_;
    ping.url = base_ + "/v2/";
    p = HttpStream::start(ping, tls_);
  }
  if (!p) return make_error(p.error().err, "ping registry " + ref_.registry, p.error().detail);
  if ((*p)->status() == 401) {
    std::lock_guard<std::mutex> g(auth_mu_);
    return authenticate((*p)->header("www-authenticate"));
  }
  if ((*p)->status() != 200) {
    return make_error(EIO, "ping registry",
                      base_ + "/v2/: " + describe_response(**p) + " (not a registry?)");
  }
  return {};
}

std::string RegistryClient::repo_url(std::string_view path) const {
  return base_ + "/v2/" + ref_.repository + std::string(path);
}

bool RegistryClient::same_host(const std::string& url) const {
  return url_origin(url) == lowercase(base_);
}

Result<std::unique_ptr<HttpStream>> RegistryClient::request(const HttpRequest& req) {
  std::string used;
  for (int attempt = 0;; ++attempt) {
    HttpRequest r = req;
    if (same_host(r.url)) {
      std::lock_guard<std::mutex> g(auth_mu_);
      used = auth_;
      if (!auth_.empty()) r.headers.push_back("Authorization: " + auth_);
    }
    STRATA_ASSIGN_OR_RETURN(s, HttpStream::start(r, tls_));
    if (s->status() != 401) return s;
    if (attempt > 0 || !same_host(r.url)) return unauthorized(*s);
    std::string challenge = s->header("www-authenticate");
    if (challenge.empty()) return unauthorized(*s);
    std::lock_guard<std::mutex> g(auth_mu_);
    // Another thread may have renewed the token meanwhile: then just retry with it.
    if (auth_ == used) STRATA_TRY(authenticate(challenge));
  }
}

Error RegistryClient::status_error(HttpStream& s, const std::string& op, const std::string& what) {
  if (s.status() == 401 || s.status() == 403) {
    std::string why = describe_response(s);
    std::string who = creds_ ? "user '" + creds_->user + "'" : "anonymous access";
    return make_error(EACCES, op,
                      what + ": " + why + " (" + who + " is not allowed to do this on " +
                          ref_.registry + (creds_ ? ")" : "; give --creds USER:PASS or log in)"));
  }
  return make_error(errno_for_status(s.status()), op, what + ": " + describe_response(s));
}

Error RegistryClient::unauthorized(HttpStream& s) {
  std::string why = describe_response(s);
  if (creds_) {
    return make_error(
        EACCES, "authenticate",
        ref_.registry + ": credentials for user '" + creds_->user + "' rejected (" + why + ")");
  }
  return make_error(
      EACCES, "authenticate",
      ref_.registry + ": authentication required (" + why + "); give --creds USER:PASS or log in");
}

// Called with auth_mu_ held.
Status RegistryClient::authenticate(const std::string& header) {
  auto c = parse_www_authenticate(header);
  if (!c) return make_error(EACCES, "authenticate", ref_.registry + ": " + c.error().detail);
  if (c->scheme == "basic") {
    if (!creds_) {
      return make_error(
          EACCES, "authenticate",
          ref_.registry + ": authentication required; give --creds USER:PASS or log in");
    }
    auth_ = "Basic " + base64_encode(creds_->user + ":" + creds_->password);
    return {};
  }
  if (c->scheme != "bearer") {
    return make_error(ENOTSUP, "authenticate",
                      ref_.registry + ": unsupported scheme '" + c->scheme + "'");
  }
  auto realm = c->params.find("realm");
  if (realm == c->params.end() || realm->second.empty()) {
    return make_error(EACCES, "authenticate", ref_.registry + ": bearer challenge without realm");
  }
  std::string scope =
      "repository:" + ref_.repository + (access_ == Access::kPush ? ":pull,push" : ":pull");
  // A challenge naming a scope (a 401 on a request) says what that request needs; a push keeps
  // asking for push on its own repository.
  if (auto sc = c->params.find("scope"); sc != c->params.end() && !sc->second.empty()) {
    if (access_ != Access::kPush ||
        sc->second.find(":" + ref_.repository + ":") == std::string::npos)
      scope = sc->second;
  }
  std::string url = realm->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  if (auto sv = c->params.find("service"); sv != c->params.end()) {
    url += sep + std::string("service=") + url_escape(sv->second);
    sep = '&';
  }
  url += sep + std::string("scope=") + url_escape(scope);
  HttpRequest tr;
  tr.url = url;
  if (creds_)
    tr.headers.push_back("Authorization: Basic " +
                         base64_encode(creds_->user + ":" + creds_->password));
  STRATA_ASSIGN_OR_RETURN(s, HttpStream::start(tr, tls_));
  if (s->status() != 200) {
    if (s->status() == 401 || s->status() == 403) return unauthorized(*s);
    return make_error(errno_for_status(s->status()), "get token",
                      realm->second + ": " + describe_response(*s));
  }
  STRATA_ASSIGN_OR_RETURN(body, s->read_all(kMaxSmallBody));
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    for (const char* k : {"token", "access_token"}) {
      if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) {
        token = j[k].get<std::string>();
        break;
      }
    }
  }
  if (token.empty())
    return make_error(EBADMSG, "get token", realm->second + ": no token in the answer");
  auth_ = "Bearer " + token;
  return {};
}

}  // namespace strata::oci
