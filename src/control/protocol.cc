// SPDX-License-Identifier: Apache-2.0
#include "strata/control/protocol.h"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "strata/sys/socket_io.h"

namespace strata::control {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += b;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

SocketPath split_socket_path(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

void JsonLine::key(std::string_view k) {
  if (body_.size() > 1) body_ += ',';
  body_ += json_escape(k);
  body_ += ':';
}

JsonLine& JsonLine::add(std::string_view k, bool v) {
  key(k);
  body_ += v ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, uint64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, int64_t v) {
  key(k);
  body_ += std::to_string(v);
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, double v) {
  key(k);
  if (!std::isfinite(v)) {
    body_ += "null";
  } else {
    char b[64];
    std::snprintf(b, sizeof b, "%.3f", v);
    body_ += b;
  }
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, std::string_view v) {
  key(k);
  body_ += json_escape(v);
  return *this;
}

std::string error_reply(const Error& e) {
  JsonLine j;
  j.add("ok", false).add("error", e.message());
  if (e.err > 0) j.add("errno", e.err);
  return j.str();
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<std::map<std::string, JsonValue>> object() {
    std::map<std::string, JsonValue> out;
    ws();
    if (!eat('{')) return bad("expected '{'");
    ws();
    if (eat('}')) return end(std::move(out));
    for (;;) {
      ws();
      auto k = string();
      if (!k) return k.take_error();
      ws();
      if (!eat(':')) return bad("expected ':'");
      ws();
      auto v = value();
      if (!v) return v.take_error();
      out[std::move(*k)] = std::move(*v);
      ws();
      if (eat('}')) return end(std::move(out));
      if (!eat(',')) return bad("expected ',' or '}'");
    }
  }

 private:
  Result<std::map<std::string, JsonValue>> end(std::map<std::string, JsonValue> out) {
    ws();
    if (i_ != s_.size()) return bad("text after the object");
    return out;
  }
  Error bad(const char* what) const {
    return make_error(EPROTO, "control reply",
                      std::string(what) + " at byte " + std::to_string(i_));
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  static void utf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  Result<std::string> string() {
    if (!eat('"')) return bad("expected a string");
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) return bad("short \\u escape");
          unsigned cp = 0;
          for (int k = 0; k < 4; ++k) {
            char h = s_[i_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
              cp |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              cp |= static_cast<unsigned>(h - 'A' + 10);
            else
              return bad("bad \\u escape");
          }
          utf8(cp, &out);  // surrogate pairs are not produced by the server; kept as two code units
          break;
        }
        default:
          return bad("bad escape");
      }
    }
    return bad("unterminated string");
  }
  Result<JsonValue> value() {
    JsonValue v;
    if (i_ < s_.size() && s_[i_] == '"') {
      auto s = string();
      if (!s) return s.take_error();
      v.type = JsonValue::kString;
      v.text = std::move(*s);
    } else if (word("true")) {
      v.type = JsonValue::kBool;
      v.b = true;
    } else if (word("false")) {
      v.type = JsonValue::kBool;
    } else if (word("null")) {
      v.type = JsonValue::kNull;
    } else {
      size_t start = i_;
      while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                                s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E'))
        ++i_;
      if (start == i_) return bad("expected a value");
      v.type = JsonValue::kNumber;
      v.text = std::string(s_.substr(start, i_ - start));
    }
    return v;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

Result<std::map<std::string, JsonValue>> parse_flat_object(std::string_view text) {
  return Parser(text).object();
}

Result<std::optional<std::string>> LineReader::next(int timeout_ms, int wake_fd) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms);
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return std::optional<std::string>(std::move(line));
    }
    if (buf_.size() > kMaxLine)
      return make_error(EMSGSIZE, "control line", "longer than 4096 bytes");
    int wait = -1;
    if (timeout_ms >= 0) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return make_error(ETIMEDOUT, "control reply", "wait");
      wait = static_cast<int>(left);
    }
    struct pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    auto r = sys::poll_fds(p, wake_fd >= 0 ? 2 : 1, wait);
    if (!r) return r.take_error();
    if (wake_fd >= 0 && (p[1].revents & POLLIN))
      return make_error(ECANCELED, "control connection", "stopping");
    if (*r == 0 || !(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    char chunk[1024];
    auto n = sys::recv_some(fd_, chunk, sizeof chunk);
    if (!n) return n.take_error();
    if (*n == 0) {
      if (buf_.empty()) return std::optional<std::string>();
      return make_error(ECONNRESET, "control connection", "closed inside a line");
    }
    buf_.append(chunk, *n);
  }
}

}  // namespace strata::control
