// SPDX-License-Identifier: Apache-2.0
#include "strata/control/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <exception>

#include "strata/base/log.h"
#include "strata/sys/fs.h"
#include "strata/sys/socket_io.h"

#ifndef STRATA_VERSION
#define STRATA_VERSION "unknown"
#endif

namespace strata::control {
namespace {

// How often a pause waiting for in-flight operations looks whether its client is still there.
constexpr auto kDrainPoll = std::chrono::milliseconds(100);

std::string ok_reply() {
  return JsonLine().add("ok", true).str();
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(const std::string& path, WriteGate* gate,
                                               ServerHooks hooks) {
  std::unique_ptr<Server> s(new Server(path, gate, std::move(hooks)));
  s->where_ = split_socket_path(path);
  if (s->where_.name.empty() || s->where_.name == "." || s->where_.name == "..")
    return make_error(EINVAL, "control socket", path + " (needs a file name)");
  auto dir = sys::open_path(s->where_.dir.c_str(), O_PATH | O_DIRECTORY);
  if (!dir) return make_error(dir.error().err, "control socket directory", s->where_.dir);
  s->dir_ = std::move(*dir);
  const char* name = s->where_.name.c_str();
  if (auto st = sys::stat_at(s->dir_.get(), name)) {
    if (!S_ISSOCK(st->st_mode))
      return make_error(EEXIST, "control socket", path + " exists and is not a socket");
    // A socket file outlives a daemon killed with -9. Replace it only if nobody answers there.
    auto probe = sys::unix_socket();
    if (!probe) return probe.take_error();
    auto c = sys::connect_unix_at(probe->get(), s->dir_.get(), s->where_.name);
    if (c)
      return make_error(EADDRINUSE, "control socket", path + " is in use by a running stratafs");
    if (c.error().err != ECONNREFUSED)
      return make_error(c.error().err, "control socket", path + " (probing the existing socket)");
    auto u = sys::unlink_at(s->dir_.get(), name, 0);
    if (!u && u.error().err != ENOENT)
      return make_error(u.error().err, "remove stale control socket", path);
  } else if (st.error().err != ENOENT) {
    return make_error(st.error().err, "control socket", path);
  }
  auto sock = sys::unix_socket();
  if (!sock) return sock.take_error();
  s->sock_ = std::move(*sock);
  auto b = sys::bind_unix_at(s->sock_.get(), s->dir_.get(), s->where_.name, 0600);
  if (!b) return make_error(b.error().err, "control socket", path + " (" + b.error().op + ")");
  auto st = sys::stat_at(s->dir_.get(), name);
  if (!st) return make_error(st.error().err, "control socket", path);
  s->dev_ = st->st_dev;
  s->ino_ = st->st_ino;
  auto l = sys::listen_fd(s->sock_.get(), 16);
  if (!l) return make_error(l.error().err, "listen on control socket", path);
  auto ev = sys::stop_event();
  if (!ev) return ev.take_error();
  s->stop_ = std::move(*ev);
  return s;
}

Server::~Server() {
  stop();
}

Status Server::start() {
  try {
    acceptor_ = std::thread([this] { accept_loop(); });
  } catch (const std::exception& e) {
    return make_error(EAGAIN, "control socket thread", e.what());
  }
  return {};
}

void Server::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (stop_) {
    // Best effort: if the eventfd write failed the threads would not see the stop; it cannot fail
    // for a counter this small, and there is nothing better to do at exit.
    (void)sys::signal_event(stop_.get());
  }
  if (acceptor_.joinable()) acceptor_.join();
  reap(true);
  sock_.reset();
  if (dir_ && ino_) {
    auto st = sys::stat_at(dir_.get(), where_.name.c_str());
    if (st && st->st_dev == dev_ && st->st_ino == ino_) {
      auto u = sys::unlink_at(dir_.get(), where_.name.c_str(), 0);
      if (!u)
        log::warning("cannot remove control socket %s: %s", path_.c_str(),
                     u.error().message().c_str());
    }
  }
}

void Server::reap(bool all) {
  std::list<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard lk(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished)
    if (c->th.joinable()) c->th.join();
}

void Server::accept_loop() {
  for (;;) {
    struct pollfd p[2] = {{sock_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    auto r = sys::poll_fds(p, 2, 1000);
    if (!r) {
      log::error("control socket %s: %s", path_.c_str(), r.error().message().c_str());
      return;
    }
    if (p[1].revents & POLLIN) return;
    reap(false);
    if (!(p[0].revents & POLLIN)) continue;
    auto fd = sys::accept_fd(sock_.get());
    if (!fd) {
      // ECONNABORTED and friends concern one client; EMFILE should pass. Keep serving either way.
      log::warning("control socket %s: %s", path_.c_str(), fd.error().message().c_str());
      if (fd.error().err == EMFILE || fd.error().err == ENFILE) {
        struct pollfd q = {stop_.get(), POLLIN, 0};
        (void)sys::poll_fds(&q, 1,
                            100);  // back off; the stop flag is checked at the top of the loop
      }
      continue;
    }
    std::lock_guard lk(mu_);
    if (conns_.size() >= kMaxConnections) {
      (void)sys::send_all(fd->get(),
                          error_reply(make_error(EBUSY, "too many control connections")));
      continue;  // best effort: the client learns why, or sees the connection close
    }
    auto c = std::make_unique<Conn>();
    c->fd = std::move(*fd);
    c->pid = sys::peer_pid(c->fd.get()).value_or(-1);
    Conn* raw = c.get();
    try {
      c->th = std::thread([this, raw] { serve(raw); });
    } catch (const std::exception& e) {
      log::warning("control socket %s: no thread for a connection: %s", path_.c_str(), e.what());
      continue;
    }
    conns_.push_back(std::move(c));
  }
}

void Server::serve(Conn* c) {
  try {
    LineReader in(c->fd.get());
    for (;;) {
      auto line = in.next(-1, stop_.get());
      if (!line || !*line) break;
      requests_.fetch_add(1, std::memory_order_relaxed);
      std::string reply = handle(c, trim(**line));
      if (reply.empty() || !sys::send_all(c->fd.get(), reply)) break;
    }
  } catch (const std::exception& e) {
    log::error("control connection: %s", e.what());
  } catch (...) {
    log::error("control connection: unknown exception");
  }
  if (c->holds_pause) release(c, "its connection closed");
  c->fd.reset();  // the peer sees the end now, not when the thread is reaped
  c->done.store(true);
}

void Server::release(Conn* c, const char* why) {
  c->holds_pause = false;
  gate_->resume();  // true: this connection held one
  log::info("control: pause of pid %d released (%s); %u still held", static_cast<int>(c->pid), why,
            gate_->pauses());
}

std::string Server::handle(Conn* c, const std::string& cmd) {
  if (cmd == "pause") return pause(c);
  if (cmd == "resume") {
    if (!c->holds_pause)
      return error_reply(make_error(EINVAL, "resume:", "this connection holds no pause"));
    release(c, "resume");
    return JsonLine().add("ok", true).add("paused", gate_->paused()).str();
  }
  if (cmd == "sync") {
    if (hooks_.sync) {
      auto s = hooks_.sync();
      if (!s) return error_reply(s.error());
    }
    return ok_reply();
  }
  if (cmd == "stats") return stats();
  if (cmd == "ping") return ok_reply();
  if (cmd == "version")
    return JsonLine()
        .add("ok", true)
        .add("version", STRATA_VERSION)
        .add("protocol", kProtocolVersion)
        .str();
  return error_reply(make_error(EINVAL, "unknown command", "'" + cmd.substr(0, 64) + "'"));
}

std::string Server::pause(Conn* c) {
  if (!c->holds_pause) {
    if (!gate_->begin_pause())
      return error_reply(make_error(ESHUTDOWN, "pause:", "the daemon is stopping"));
    c->holds_pause = true;
    while (!gate_->wait_drained(kDrainPoll)) {
      if (gate_->is_shut()) {
        release(c, "the daemon is stopping");
        return error_reply(make_error(ESHUTDOWN, "pause:", "the daemon is stopping"));
      }
      // The pause must not outlive its owner, even before it is granted: a client that timed out or
      // died while in-flight writes drain takes its pause with it.
      struct pollfd p[2] = {{c->fd.get(), 0, 0}, {stop_.get(), POLLIN, 0}};
      auto r = sys::poll_fds(p, 2, 0);
      if (r && ((p[0].revents & (POLLHUP | POLLERR)) || (p[1].revents & POLLIN))) {
        release(c, "abandoned while waiting for in-flight operations");
        return {};
      }
    }
    log::info("control: paused by pid %d (%u held, %llu writers waiting)", static_cast<int>(c->pid),
              gate_->pauses(), static_cast<unsigned long long>(gate_->blocked()));
  }
  if (hooks_.sync) {
    auto s = hooks_.sync();
    if (!s) {
      release(c, "the sync failed");
      return error_reply(s.error());
    }
  }
  return JsonLine().add("ok", true).add("paused", true).add("pauses", gate_->pauses()).str();
}

std::string Server::stats() {
  size_t conns;
  {
    std::lock_guard lk(mu_);
    conns = conns_.size();
  }
  double up = std::chrono::duration<double>(std::chrono::steady_clock::now() - born_).count();
  JsonLine j;
  j.add("ok", true)
      .add("version", STRATA_VERSION)
      .add("pid", static_cast<int64_t>(getpid()))
      .add("paused", gate_->paused())
      .add("pauses", gate_->pauses())
      .add("in_flight", gate_->in_flight())
      .add("blocked_writers", gate_->blocked())
      .add("connections", static_cast<uint64_t>(conns))
      .add("control_requests", requests_.load(std::memory_order_relaxed))
      .add("uptime_s", up);
  if (hooks_.stats) hooks_.stats(j);
  return j.str();
}

}  // namespace strata::control
