// SPDX-License-Identifier: Apache-2.0
// The parts of registry authentication that need no network: WWW-Authenticate, --creds, auth files.
#include <fcntl.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "strata/oci/registry.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::oci {
namespace {

constexpr size_t kMaxAuthFile = 4u << 20;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
bool is_space(char c) {
  return c == ' ' || c == '\t';
}
bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

Error bad_header(std::string_view h, const std::string& why) {
  return make_error(EINVAL, "parse WWW-Authenticate", std::string(h) + ": " + why);
}

Result<std::string> read_file(const std::string& path) {
  auto fd = sys::open_path(path.c_str(), O_RDONLY);
  if (!fd) return fd.take_error();
  std::string out;
  char buf[65536];
  while (true) {
    auto n = sys::read_some(fd->get(), buf, sizeof buf);
    if (!n) return make_error(n.error().err, "read", path);
    if (*n == 0) break;
    out.append(buf, *n);
    if (out.size() > kMaxAuthFile) return make_error(EFBIG, "read", path);
  }
  return out;
}

// "https://host:5000/v1/" -> "host:5000"; a bare key is returned as it is.
std::string key_host(std::string key) {
  for (const char* scheme : {"https://", "http://"}) {
    std::string_view s(scheme);
    if (key.compare(0, s.size(), s) == 0) {
      key.erase(0, s.size());
      break;
    }
  }
  auto slash = key.find('/');
  if (slash != std::string::npos) key.resize(slash);
  return key;
}

bool key_matches(const std::string& key, std::string_view registry) {
  std::string host = key_host(key);
  if (host == registry) return true;
  if (registry == "docker.io") return host == "index.docker.io" || host == "registry-1.docker.io";
  return false;
}

}  // namespace

Result<AuthChallenge> parse_www_authenticate(std::string_view h) {
  size_t i = 0;
  while (i < h.size() && is_space(h[i])) ++i;
  AuthChallenge c;
  while (i < h.size() && is_token_char(h[i])) c.scheme.push_back(lower(h[i++]));
  if (c.scheme.empty()) return bad_header(h, "no scheme");
  while (i < h.size()) {
    while (i < h.size() && (is_space(h[i]) || h[i] == ',')) ++i;
    if (i >= h.size()) break;
    std::string name;
    size_t start = i;
    while (i < h.size() && is_token_char(h[i])) name.push_back(lower(h[i++]));
    if (name.empty())
      return bad_header(h, "expected a parameter at offset " + std::to_string(start));
    while (i < h.size() && is_space(h[i])) ++i;
    if (i >= h.size() || h[i] != '=') {
      // "Bearer realm=..., Basic realm=..." - a second challenge starts: keep the first only.
      if (!c.params.empty() || i >= h.size()) break;
      return bad_header(h, "expected '=' after " + name);
    }
    ++i;
    while (i < h.size() && is_space(h[i])) ++i;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char ch = h[i++];
        if (ch == '\\' && i < h.size()) {
          value.push_back(h[i++]);
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value.push_back(ch);
        }
      }
      if (!closed) return bad_header(h, "unterminated quoted value of " + name);
    } else {
      while (i < h.size() && h[i] != ',' && !is_space(h[i])) value.push_back(h[i++]);
    }
    c.params[name] = value;
    while (i < h.size() && is_space(h[i])) ++i;
    if (i < h.size() && h[i] != ',') return bad_header(h, "expected ',' after " + name);
  }
  return c;
}

Result<Credentials> parse_creds(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return make_error(EINVAL, "parse credentials", "expected USER:PASSWORD");
  }
  return Credentials{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

Result<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return make_error(EINVAL, "base64", "bad length");
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) return make_error(EINVAL, "base64", "bad character");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<std::optional<Credentials>> parse_auth_file(std::string_view json,
                                                   std::string_view registry) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error(EINVAL, "parse auth file", "not a JSON object");
  auto auths = j.find("auths");
  if (auths == j.end()) return std::optional<Credentials>();
  if (!auths->is_object())
    return make_error(EINVAL, "parse auth file", "\"auths\" is not an object");
  // An exact key wins over a URL-shaped one naming the same host.
  const nlohmann::json* entry = nullptr;
  std::string entry_key;
  for (auto it = auths->begin(); it != auths->end(); ++it) {
    if (it.key() == registry) {
      entry = &it.value();
      entry_key = it.key();
      break;
    }
    if (!entry && key_matches(it.key(), registry)) {
      entry = &it.value();
      entry_key = it.key();
    }
  }
  if (!entry) return std::optional<Credentials>();
  auto bad = [&](const std::string& why) {
    return make_error(EINVAL, "parse auth file", entry_key + ": " + why);
  };
  if (!entry->is_object()) return bad("not an object");
  auto a = entry->find("auth");
  if (a == entry->end() || !a->is_string() || a->get<std::string>().empty()) {
    // An entry without "auth" (a credential helper's placeholder): nothing usable here.
    return std::optional<Credentials>();
  }
  auto decoded = base64_decode(a->get<std::string>());
  if (!decoded) return bad("\"auth\" is not base64");
  auto c = parse_creds(*decoded);
  if (!c) return bad("\"auth\" is not base64 of USER:PASSWORD");
  return std::optional<Credentials>(std::move(*c));
}

Result<std::optional<Credentials>> find_credentials(std::string_view registry) {
  std::vector<std::string> files;
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) files.emplace_back(f);
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
    files.push_back(std::string(x) + "/containers/auth.json");
  if (const char* h = std::getenv("HOME"); h && *h)
    files.push_back(std::string(h) + "/.docker/config.json");
  for (const auto& f : files) {
    auto body = read_file(f);
    if (!body) {
      if (body.error().err == ENOENT || body.error().err == ENOTDIR) continue;
      return make_error(body.error().err, "read auth file", f);
    }
    auto c = parse_auth_file(*body, registry);
    if (!c) return make_error(EINVAL, "auth file " + f, c.error().detail);
    if (*c) return c;
  }
  return std::optional<Credentials>();
}

}  // namespace strata::oci
