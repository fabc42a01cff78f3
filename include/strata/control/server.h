// SPDX-License-Identifier: Apache-2.0
// Server: the stratafs control socket (DESIGN §1 "Control"); the wire format is in protocol.h.
//
// Commands, one per line, one JSON reply line each:
//   pause    close the WriteGate to new modifying operations, wait for the in-flight ones, sync the
//   upper
//            (hooks.sync), then reply {"ok":true,...}. The pause belongs to this connection: it
//            lasts until `resume` on the same connection or until the connection closes for any
//            reason (client exit, kill -9, crash) — a failed commit can never leave a container
//            frozen. A second `pause` on a connection that holds one only syncs again. Pauses of
//            different connections are counted: writes resume when the last holder resumes or goes
//            away. A pause whose client leaves while it is still waiting for in-flight operations
//            is abandoned; a pause whose sync fails is given back and answered with the error.
//   resume   give back this connection's pause ({"ok":false} if it holds none); "paused" in the
//   reply says
//            whether other connections still hold the mount paused.
//   sync     syncfs of the upper, paused or not.
//   stats    {"ok":true,"paused":...,"pauses":N,"in_flight":N,"blocked_writers":N,"connections":N,
//            "control_requests":N,"uptime_s":S,...} plus the engine's counters (hooks.stats).
//   ping     {"ok":true};  version  {"ok":true,"version":"X.Y.Z","protocol":1}.
// Anything else: {"ok":false,"error":"unknown command ..."}.
//
// Life cycle: listen() creates the socket (mode 0600; a stale socket file left by a dead daemon is
// replaced; a live one or a non-socket at the path is an error) without starting a thread, so it
// may run before the daemon forks; start() starts the accept thread (one more thread per
// connection, at most 64 connections). stop() (also the destructor) closes every connection —
// releasing their pauses — joins the threads and removes the socket file if it is still the one
// this server made. Threading: the hooks run on connection threads, concurrently with FUSE workers
// and each other. Errors: listen/start return Result/Status naming the path; connection errors end
// that connection only.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/control/protocol.h"
#include "strata/control/write_gate.h"

namespace strata::control {

struct ServerHooks {
  std::function<Status()> sync;  // syncfs of the upper; empty: nothing to sync (read-only mount)
  std::function<void(JsonLine&)>
      stats;  // add the engine's counters to a stats reply (cheap, no locks held)
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> listen(const std::string& path, WriteGate* gate,
                                                ServerHooks hooks);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  void stop();
  const std::string& path() const { return path_; }

  static constexpr size_t kMaxConnections = 64;

 private:
  struct Conn {
    UniqueFd fd;
    std::thread th;
    std::atomic<bool> done{false};
    bool holds_pause = false;  // only the connection's own thread touches it
    pid_t pid = -1;            // the peer, for the log
  };

  Server(std::string path, WriteGate* gate, ServerHooks hooks)
      : path_(std::move(path)), gate_(gate), hooks_(std::move(hooks)) {}
  void accept_loop();
  void serve(Conn* c);
  // The reply line; empty when the connection must close without one.
  std::string handle(Conn* c, const std::string& cmd);
  std::string pause(Conn* c);
  void release(Conn* c, const char* why);
  std::string stats();
  void reap(bool all);

  std::string path_;
  SocketPath where_;
  UniqueFd dir_;   // O_PATH of the socket's directory
  UniqueFd sock_;  // listening
  UniqueFd stop_;  // eventfd: readable once stop() begins
  dev_t dev_ = 0;  // the socket file this server made (removed at stop only if still the same)
  ino_t ino_ = 0;
  WriteGate* gate_;
  ServerHooks hooks_;
  std::thread acceptor_;
  std::mutex mu_;  // conns_; a leaf, never held while calling the gate or a hook
  std::list<std::unique_ptr<Conn>> conns_;
  std::atomic<uint64_t> requests_{0};
  std::chrono::steady_clock::time_point born_ = std::chrono::steady_clock::now();
  bool stopped_ = false;
};

}  // namespace strata::control
