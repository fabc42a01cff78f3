// SPDX-License-Identifier: Apache-2.0
#include "strata/oci/reference.h"

#include <cctype>

namespace strata::oci {
namespace {

Error bad(std::string_view text, const char* why) {
  return make_error(EINVAL, "parse reference", std::string(text) + ": " + why);
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A repository path component: [a-z0-9]+ joined by '.', '_', '__' or '-'+ (the distribution grammar).
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch)) continue;
    if (ch == '.') {
      if (!is_lower_alnum(c[i + 1])) return false;
    } else if (ch == '_') {
      if (c[i + 1] == '_') ++i;
      if (!is_lower_alnum(c[i + 1])) return false;
    } else if (ch == '-') {
      while (c[i + 1] == '-') ++i;
      if (!is_lower_alnum(c[i + 1])) return false;
    } else {
      return false;
    }
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

bool valid_sha256(std::string_view d) {
  if (d.substr(0, 7) != "sha256:" || d.size() != 7 + 64) return false;
  for (char c : d.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// host[:port]: letters, digits, '-', '.', optional numeric port; or "localhost".
bool valid_host(std::string_view h) {
  auto colon = h.rfind(':');
  std::string_view host = h.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port)
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  if (host.empty()) return false;
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  return host.front() != '-' && host.front() != '.' && host.back() != '-' && host.back() != '.';
}

Result<Reference> parse_docker(std::string_view text, std::string_view full) {
  Reference r;
  r.transport = Transport::kDocker;
  if (text.empty()) return bad(full, "empty name");
  std::string_view rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    r.digest = std::string(rest.substr(at + 1));
    if (!valid_sha256(r.digest)) return bad(full, "digest must be sha256:<64 lowercase hex digits>");
    rest = rest.substr(0, at);
  }
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    if (!valid_tag(r.tag)) return bad(full, "invalid tag");
    rest = rest.substr(0, colon);
  }
  auto first = rest.find('/');
  std::string_view head = rest.substr(0, first);
  if (first != std::string_view::npos &&
      (head.find('.') != std::string_view::npos || head.find(':') != std::string_view::npos ||
       head == "localhost" || head.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos)) {
    if (!valid_host(head)) return bad(full, "invalid registry host");
    r.registry = std::string(head);
    rest = rest.substr(first + 1);
  } else {
    r.registry = "docker.io";
  }
  if (rest.empty()) return bad(full, "empty repository");
  size_t pos = 0;
  int components = 0;
  while (true) {
    auto next = rest.find('/', pos);
    std::string_view comp = rest.substr(pos, next == std::string_view::npos ? next : next - pos);
    if (!valid_component(comp)) return bad(full, "invalid repository name (lowercase letters, digits, separators)");
    ++components;
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  r.repository = std::string(rest);
  if (r.registry == "docker.io" && components == 1) r.repository = "library/" + r.repository;
  if (r.repository.size() > 255) return bad(full, "repository name too long");
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

Result<Reference> parse_local(Transport t, std::string_view rest, std::string_view full, bool tag_allowed) {
  Reference r;
  r.transport = t;
  std::string_view path = rest;
  if (tag_allowed) {
    if (auto colon = rest.find(':'); colon != std::string_view::npos) {
      path = rest.substr(0, colon);
      r.tag = std::string(rest.substr(colon + 1));
      if (r.tag.empty()) return bad(full, "empty tag after ':'");
      for (char c : r.tag)
        if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return bad(full, "invalid tag");
    }
  }
  if (path.empty()) return bad(full, "empty path");
  r.path = std::string(path);
  return r;
}

}  // namespace

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kDocker: return "docker";
    case Transport::kOciLayout: return "oci";
    case Transport::kOciArchive: return "oci-archive";
    case Transport::kDockerArchive: return "docker-archive";
  }
  return "?";
}

std::string Reference::to_string() const {
  if (transport == Transport::kDocker) {
    std::string s = registry + "/" + repository;
    if (!tag.empty()) s += ":" + tag;
    if (!digest.empty()) s += "@" + digest;
    return s;
  }
  std::string s = std::string(transport_name(transport)) + ":" + path;
  if (!tag.empty()) s += ":" + tag;
  return s;
}

Result<Reference> parse_reference(std::string_view text) {
  if (text.empty()) return bad(text, "empty reference");
  if (text.substr(0, 9) == "docker://") return parse_docker(text.substr(9), text);
  if (text.substr(0, 4) == "oci:") return parse_local(Transport::kOciLayout, text.substr(4), text, true);
  if (text.substr(0, 12) == "oci-archive:") return parse_local(Transport::kOciArchive, text.substr(12), text, true);
  if (text.substr(0, 15) == "docker-archive:") {
    return parse_local(Transport::kDockerArchive, text.substr(15), text, false);
  }
  auto colon = text.find(':');
  auto slash = text.find('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
    std::string_view prefix = text.substr(0, colon);
    // "host:port/repo" and "repo:tag" are docker names; an unknown word before ':' followed by
    // something that is not a port or tag is an unknown transport.
    static constexpr std::string_view kKnown[] = {"containers-storage", "dir", "docker-daemon", "sif"};
    for (auto k : kKnown)
      if (prefix == k) return bad(text, "transport not supported");
    if (text.substr(colon + 1, 2) == "//") return bad(text, "unknown transport");
  }
  return parse_docker(text, text);
}

}  // namespace strata::oci
