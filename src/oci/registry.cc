// SPDX-License-Identifier: Apache-2.0
// The docker:// transport: a libcurl client of the distribution API. See registry.h.
#include "strata/oci/registry.h"

#include <curl/curl.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxManifest = 4u << 20;
constexpr size_t kMaxSmallBody = 1u << 20;  // tokens, error bodies
constexpr size_t kHighWater = 1u << 20;     // pause the transfer above this much buffered data

const char* const kAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

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

struct TlsConfig {
  bool verify = true;
  std::string ca_blob;  // PEM certificates from --cert-dir; empty: the system's
};

// One HTTP GET whose body is read on demand: curl's multi interface is driven from read(), and the
// transfer is paused while more than kHighWater bytes wait, so memory does not grow with the blob.
class HttpStream : public BlobReader {
 public:
  ~HttpStream() override {
    if (multi_ && easy_) curl_multi_remove_handle(multi_, easy_);
    if (easy_) curl_easy_cleanup(easy_);
    if (multi_) curl_multi_cleanup(multi_);
    if (headers_) curl_slist_free_all(headers_);
  }

  static Result<std::unique_ptr<HttpStream>> start(const std::string& url,
                                                  const std::vector<std::string>& headers,
                                                  const TlsConfig& tls) {
    global_init();
    std::unique_ptr<HttpStream> s(new HttpStream());
    s->url_ = url;
    s->easy_ = curl_easy_init();
    s->multi_ = curl_multi_init();
    if (!s->easy_ || !s->multi_) return make_error(ENOMEM, "curl init", url);
    for (const auto& h : headers) s->headers_ = curl_slist_append(s->headers_, h.c_str());
    CURL* e = s->easy_;
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, tls.verify ? "https" : "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers_);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "strata/" STRATA_VERSION);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    // A stalled transfer (under 1 byte/s for 60 s) fails instead of hanging the pull.
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
    curl_multi_add_handle(s->multi_, e);
    // Run until the final response's headers are in (first body byte, or the end).
    while (!s->done_ && s->buf_.empty() && !s->body_started_) STRATA_TRY(s->pump());
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    s->status_ = code;
    return s;
  }

  long status() const { return status_; }
  const std::string& url() const { return url_; }
  std::string header(const std::string& name) const {
    auto it = resp_headers_.find(name);
    return it == resp_headers_.end() ? std::string() : it->second;
  }

  Result<size_t> read(void* out, size_t size) override {
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
        curl_easy_pause(easy_, CURLPAUSE_CONT);
      }
    }
    return n;
  }

  // The whole (remaining) body, at most `max` bytes.
  Result<std::string> read_all(size_t max) {
    std::string out;
    char tmp[65536];
    while (true) {
      STRATA_ASSIGN_OR_RETURN(n, read(tmp, sizeof tmp));
      if (n == 0) break;
      out.append(tmp, n);
      if (out.size() > max)
        return make_error(EFBIG, "GET",
                          url_ + ": response larger than " + std::to_string(max) + " bytes");
    }
    return out;
  }

 private:
  HttpStream() = default;

  static size_t on_data(char* p, size_t, size_t n, void* self_) {
    auto* self = static_cast<HttpStream*>(self_);
    self->body_started_ = true;
    if (self->buf_.size() - self->pos_ > kHighWater) {
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    self->buf_.append(p, n);
    return n;
  }

  static size_t on_header(char* p, size_t, size_t n, void* self_) {
    auto* self = static_cast<HttpStream*>(self_);
    std::string line(p, n);
    if (line.compare(0, 5, "HTTP/") == 0) {
      self->resp_headers_.clear();  // a new response (after a redirect or a 100 Continue)
    } else if (auto colon = line.find(':'); colon != std::string::npos) {
      self->resp_headers_[lowercase(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    }
    return n;
  }

  Status pump() {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK) return make_error(EIO, "GET", url_ + ": " + curl_multi_strerror(mc));
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg == CURLMSG_DONE) {
        done_ = true;
        if (m->data.result != CURLE_OK) {
          int err = m->data.result == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT
                    : m->data.result == CURLE_COULDNT_CONNECT  ? ECONNREFUSED
                                                               : EIO;
          return make_error(err, "GET", url_ + ": " + curl_easy_strerror(m->data.result));
        }
      }
    }
    if (!done_ && running == 0) done_ = true;
    if (!done_ && buf_.size() == pos_ && !(paused_)) {
      mc = curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
      if (mc != CURLM_OK) return make_error(EIO, "GET", url_ + ": " + curl_multi_strerror(mc));
    }
    return {};
  }

  std::string url_;
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::map<std::string, std::string> resp_headers_;
  std::string buf_;
  size_t pos_ = 0;
  long status_ = 0;
  bool done_ = false;
  bool paused_ = false;
  bool body_started_ = false;
};

std::string url_escape(const std::string& s) {
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

// The registry's error text ({"errors":[{"code":..,"message":..}]}), else the status.
std::string describe(HttpStream& s) {
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

int errno_for(long status) {
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

class RegistrySource : public Source {
 public:
  RegistrySource(Reference ref, RegistryOptions opts)
      : ref_(std::move(ref)), opts_(std::move(opts)) {}

  Status connect() {
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
    auto ping = HttpStream::start(base_ + "/v2/", {}, tls_);
    if (!ping && !opts_.tls_verify) {
      // A test registry without TLS: skopeo's --tls-verify=false falls back to http the same way.
      base_ = "http://" + host_;
      ping = HttpStream::start(base_ + "/v2/", {}, tls_);
    }
    if (!ping)
      return make_error(ping.error().err, "ping registry " + ref_.registry, ping.error().detail);
    HttpStream& p = **ping;
    if (p.status() == 401) {
      STRATA_TRY(authenticate(p.header("www-authenticate")));
    } else if (p.status() != 200) {
      return make_error(EIO, "ping registry",
                        base_ + "/v2/: " + describe(p) + " (not a registry?)");
    }
    return {};
  }

  Result<FetchedManifest> get_manifest() override {
    std::string ref = ref_.digest.empty() ? ref_.tag : ref_.digest;
    STRATA_ASSIGN_OR_RETURN(m, fetch_manifest(ref));
    if (!ref_.digest.empty()) {
      Descriptor d;
      STRATA_ASSIGN_OR_RETURN(dg, store::Digest::parse(ref_.digest));
      d.digest = dg;
      d.size = -1;
      d.media_type = m.media_type;
      m.descriptor = d;
    }
    return m;
  }

  Result<FetchedManifest> get_manifest(const Descriptor& d) override {
    STRATA_ASSIGN_OR_RETURN(m, fetch_manifest(d.digest.to_string()));
    if (m.media_type.empty()) m.media_type = d.media_type;
    m.descriptor = d;
    return m;
  }

  Result<std::unique_ptr<BlobReader>> get_blob(const Descriptor& d) override {
    STRATA_ASSIGN_OR_RETURN(r, get_blob_from(d, 0));
    return std::move(r.reader);
  }

  Result<RangedBlob> get_blob_from(const Descriptor& d, uint64_t offset) override {
    std::vector<std::string> h;
    if (offset > 0) h.push_back("Range: bytes=" + std::to_string(offset) + "-");
    STRATA_ASSIGN_OR_RETURN(s, request("/blobs/" + d.digest.to_string(), h));
    if (s->status() == 206 && offset > 0) {
      // A partial answer must start where we asked, or the stream would be spliced at the wrong
      // byte.
      std::string want = "bytes " + std::to_string(offset) + "-";
      if (s->header("content-range").compare(0, want.size(), want) != 0) {
        return make_error(EIO, "GET blob",
                          d.digest.to_string() + ": asked for " + want + ", got Content-Range '" +
                              s->header("content-range") + "'");
      }
      return RangedBlob{std::move(s), offset};
    }
    if (s->status() == 200) return RangedBlob{std::move(s), 0};
    return make_error(
        errno_for(s->status()), "GET blob",
        ref_.registry + "/" + ref_.repository + " " + d.digest.to_string() + ": " + describe(*s));
  }

 private:
  Result<FetchedManifest> fetch_manifest(const std::string& ref) {
    STRATA_ASSIGN_OR_RETURN(s, request("/manifests/" + ref, {std::string("Accept: ") + kAccept}));
    if (s->status() != 200) {
      return make_error(errno_for(s->status()), "GET manifest",
                        ref_.registry + "/" + ref_.repository + ":" + ref + ": " + describe(*s));
    }
    FetchedManifest m;
    STRATA_ASSIGN_OR_RETURN(body, s->read_all(kMaxManifest));
    m.body = std::move(body);
    std::string ct = s->header("content-type");
    if (auto semi = ct.find(';'); semi != std::string::npos) ct = trim(ct.substr(0, semi));
    // distribution answers application/json or text/plain for manifests it stores untyped.
    if (ct != "application/json" && ct != "text/plain") m.media_type = ct;
    if (std::string dcd = s->header("docker-content-digest"); !dcd.empty()) {
      auto dg = store::Digest::parse(dcd);
      if (dg && dg->algorithm == "sha256") {
        Descriptor d;
        d.digest = *dg;
        d.size = -1;
        d.media_type = m.media_type;
        m.descriptor = d;
      }
    }
    return m;
  }

  // GET base/v2/REPO + path; a 401 runs the challenge once and retries.
  Result<std::unique_ptr<HttpStream>> request(const std::string& path,
                                              const std::vector<std::string>& extra) {
    std::string url = base_ + "/v2/" + ref_.repository + path;
    for (int attempt = 0;; ++attempt) {
      std::vector<std::string> h = extra;
      if (!auth_.empty()) h.push_back("Authorization: " + auth_);
      auto s = HttpStream::start(url, h, tls_);
      if (!s) return s.take_error();
      if ((*s)->status() != 401 || attempt > 0) {
        if ((*s)->status() == 401) return unauthorized(**s);
        return s;
      }
      std::string challenge = (*s)->header("www-authenticate");
      if (challenge.empty()) return unauthorized(**s);
      STRATA_TRY(authenticate(challenge));
    }
  }

  Error unauthorized(HttpStream& s) {
    std::string why = describe(s);
    if (creds_) {
      return make_error(
          EACCES, "authenticate",
          ref_.registry + ": credentials for user '" + creds_->user + "' rejected (" + why + ")");
    }
    return make_error(EACCES, "authenticate",
                      ref_.registry + ": authentication required (" + why +
                          "); give --creds USER:PASS or log in");
  }

  Status authenticate(const std::string& header) {
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
    std::string scope = "repository:" + ref_.repository + ":pull";
    if (auto sc = c->params.find("scope"); sc != c->params.end() && !sc->second.empty())
      scope = sc->second;
    std::string url = realm->second;
    char sep = url.find('?') == std::string::npos ? '?' : '&';
    if (auto sv = c->params.find("service"); sv != c->params.end()) {
      url += sep + std::string("service=") + url_escape(sv->second);
      sep = '&';
    }
    url += sep + std::string("scope=") + url_escape(scope);
    std::vector<std::string> h;
    if (creds_)
      h.push_back("Authorization: Basic " + base64_encode(creds_->user + ":" + creds_->password));
    STRATA_ASSIGN_OR_RETURN(s, HttpStream::start(url, h, tls_));
    if (s->status() != 200) {
      if (s->status() == 401 || s->status() == 403) return unauthorized(*s);
      return make_error(errno_for(s->status()), "get token", realm->second + ": " + describe(*s));
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

  Reference ref_;
  RegistryOptions opts_;
  std::optional<Credentials> creds_;
  TlsConfig tls_;
  std::string host_, base_, auth_;
};

}  // namespace

Result<std::unique_ptr<Source>> open_registry(const Reference& ref,
                                              const RegistryOptions& options) {
  if (ref.transport != Transport::kDocker)
    return make_error(EINVAL, "open registry", ref.to_string());
  auto src = std::make_unique<RegistrySource>(ref, options);
  STRATA_TRY(src->connect());
  return std::unique_ptr<Source>(std::move(src));
}

}  // namespace strata::oci
