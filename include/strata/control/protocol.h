// SPDX-License-Identifier: Apache-2.0
// The control socket's wire format, shared by the server (stratafs) and the client (strata).
//
// A client sends one command per line (`pause`, `resume`, `sync`, `stats`, `ping`, `version`; at
// most kMaxLine bytes, '\n'-terminated) and gets exactly one reply line: a flat JSON object whose
// "ok" member says whether the command succeeded, e.g. {"ok":true} or
// {"ok":false,"error":"...","errno":5}. Replies never nest, so a flat parser (parse_flat_object)
// reads them all. Thread-safety: plain values; a LineReader belongs to one connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "strata/base/result.h"

namespace strata::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxLine = 4096;

std::string json_escape(std::string_view s);

// A socket path as (directory, last component): "/a/b/c.sock" -> {"/a/b", "c.sock"}, "c.sock" ->
// {".", "c.sock"}. The directory is opened and the socket reached through it (sys/socket_io.h), so
// its length is not limited.
struct SocketPath {
  std::string dir;
  std::string name;
};
SocketPath split_socket_path(const std::string& path);

// One reply line under construction: JsonLine().add("ok", true).add("x", 3).str() ==
// "{\"ok\":true,\"x\":3}\n".
class JsonLine {
 public:
  JsonLine& add(std::string_view key, bool v);
  JsonLine& add(std::string_view key, uint64_t v);
  JsonLine& add(std::string_view key, int64_t v);
  JsonLine& add(std::string_view key, int v) { return add(key, static_cast<int64_t>(v)); }
  JsonLine& add(std::string_view key, unsigned v) { return add(key, static_cast<uint64_t>(v)); }
  JsonLine& add(std::string_view key, double v);
  JsonLine& add(std::string_view key, std::string_view v);
  JsonLine& add(std::string_view key, const char* v) { return add(key, std::string_view(v)); }
  std::string str() const { return body_ + "}\n"; }

 private:
  void key(std::string_view k);
  std::string body_ = "{";
};

// {"ok":false,"error":MSG[,"errno":N]}\n
std::string error_reply(const Error& e);

struct JsonValue {
  enum Type { kString, kNumber, kBool, kNull } type = kNull;
  std::string text;  // strings decoded; numbers as written
  bool b = false;
};
// Parse one flat JSON object (values: strings, numbers, true, false, null). EPROTO when malformed.
Result<std::map<std::string, JsonValue>> parse_flat_object(std::string_view text);

// Reads '\n'-terminated lines from a socket, keeping what arrives past a line for the next call.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // The next line without its '\n' (and a trailing '\r'); nullopt at a clean end of stream. Errors:
  // ETIMEDOUT once `timeout_ms` (-1: none) passes, ECANCELED when `wake_fd` (>= 0) becomes
  // readable, EMSGSIZE for a line longer than kMaxLine, ECONNRESET for a stream ending inside a
  // line.
  Result<std::optional<std::string>> next(int timeout_ms, int wake_fd = -1);

 private:
  int fd_;
  std::string buf_;
};

}  // namespace strata::control
