// SPDX-License-Identifier: Apache-2.0
#include "strata/control/client.h"

#include <string.h>

#include <cstdlib>

#include "strata/sys/fs.h"
#include "strata/sys/socket_io.h"

namespace strata::control {

std::string default_socket_path(const std::string& workdir) {
  return workdir + "/strata-control.sock";
}

Result<Client> Client::connect(const std::string& socket_path) {
  SocketPath where = split_socket_path(socket_path);
  auto not_there = [&](int err, const char* why) {
    return make_error(err, "no stratafs control socket at", socket_path + why);
  };
  auto dir = sys::open_path(where.dir.c_str(), O_PATH | O_DIRECTORY);
  if (!dir) {
    if (dir.error().err == ENOENT) return not_there(ENOENT, "");
    return make_error(dir.error().err, "control socket directory", where.dir);
  }
  auto sock = sys::unix_socket();
  if (!sock) return sock.take_error();
  auto c = sys::connect_unix_at(sock->get(), dir->get(), where.name);
  if (!c) {
    int e = c.error().err;
    if (e == ENOENT) return not_there(e, "");
    if (e == ECONNREFUSED) return not_there(e, " (a stale socket: its daemon is gone)");
    return make_error(e, "connect to stratafs control socket", socket_path);
  }
  return Client(std::move(*sock), socket_path);
}

Result<std::string> Client::call(const std::string& cmd, std::chrono::milliseconds timeout) {
  if (!fd_)
    return make_error(ENOTCONN, "stratafs control " + cmd,
                      path_ + " (connection closed after an error)");
  auto fail = [&](Error e) {
    fd_.reset();  // unknown state: close, which also gives back anything the daemon grants later
    e.op = "stratafs control " + cmd + ": " + e.op;
    e.detail += " (" + path_ + ")";
    return e;
  };
  auto s = sys::send_all(fd_.get(), cmd + "\n");
  if (!s) return fail(s.take_error());
  auto r = in_.next(static_cast<int>(timeout.count()));
  if (!r) {
    if (r.error().err == ETIMEDOUT)
      return fail(
          make_error(ETIMEDOUT, "no reply within", std::to_string(timeout.count() / 1000) + " s"));
    return fail(r.take_error());
  }
  if (!*r) return fail(make_error(ECONNRESET, "the daemon closed the connection"));
  const std::string& line = **r;
  auto obj = parse_flat_object(line);
  if (!obj) return fail(obj.take_error());
  auto ok = obj->find("ok");
  if (ok == obj->end() || ok->second.type != JsonValue::kBool)
    return fail(make_error(EPROTO, "reply without \"ok\"", line.substr(0, 200)));
  if (!ok->second.b) {
    auto msg = obj->find("error");
    auto no = obj->find("errno");
    int err = no != obj->end() && no->second.type == JsonValue::kNumber
                  ? std::atoi(no->second.text.c_str())
                  : 0;
    std::string text = msg != obj->end() ? msg->second.text : line;
    if (err > 0) {
      // The daemon's message already ends in strerror(errno); Error::message() adds it again.
      char buf[128];
      std::string tail = std::string(": ") + strerror_r(err, buf, sizeof buf);
      if (text.size() > tail.size() &&
          text.compare(text.size() - tail.size(), tail.size(), tail) == 0)
        text.resize(text.size() - tail.size());
    }
    return make_error(err, "stratafs control " + cmd + " at " + path_ + ":", text);
  }
  return line;
}

Status Client::pause() {
  auto r = call("pause", kPauseTimeout);
  if (!r) return r.take_error();
  return {};
}

Status Client::resume() {
  auto r = call("resume", kReplyTimeout);
  if (!r) return r.take_error();
  return {};
}

Status Client::sync() {
  auto r = call("sync", kPauseTimeout);
  if (!r) return r.take_error();
  return {};
}

Result<std::string> Client::stats() {
  auto r = call("stats", kReplyTimeout);
  if (!r) return r.take_error();
  std::string s = std::move(*r);
  return s;
}

}  // namespace strata::control
