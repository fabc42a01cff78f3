// SPDX-License-Identifier: Apache-2.0
// Client: talks to a stratafs control socket (server.h has the commands and their semantics).
//
// Used by `strata commit --pause`: connect, pause() (returns once new modifying operations are
// held, the in-flight ones have finished and the upper is synced), read the upper, resume(). The
// pause belongs to the connection: destroying the Client (or the process dying) resumes the mount,
// so a failed commit never leaves a container frozen. Timeouts: every reply is awaited at most
// kPauseTimeout (pause, sync: they wait for writes and syncfs) or kReplyTimeout (the rest); on a
// timeout or a malformed reply the connection is closed (which gives back a pause the daemon may
// still grant) and later calls fail with ENOTCONN. Errors: connect() names the path: "no stratafs
// control socket at PATH" for ENOENT and ECONNREFUSED (a stale socket of a dead daemon); a command
// the daemon refused carries its message (and errno when it sent one). Thread-safety: one Client
// per thread (it is a connection); move-only.
#pragma once

#include <chrono>
#include <string>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/control/protocol.h"

namespace strata::control {

// The default socket of a stratafs mount whose workdir is `workdir`.
std::string default_socket_path(const std::string& workdir);  // workdir + "/strata-control.sock"

class Client {
 public:
  static constexpr std::chrono::seconds kPauseTimeout{60};
  static constexpr std::chrono::seconds kReplyTimeout{10};

  static Result<Client> connect(const std::string& socket_path);
  // Returns once paused and the upper synced; lasts until resume() or until the Client is
  // destroyed.
  Status pause();
  Status resume();
  Status sync();
  Result<std::string> stats();  // the JSON reply line: {"ok":true,"paused":...,"nodes":...}

  Client(Client&&) noexcept = default;
  Client& operator=(Client&&) noexcept = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() = default;  // closes the connection (which resumes a pause it holds)

 private:
  Client(UniqueFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)), in_(fd_.get()) {}
  // Send `cmd`, wait for its reply line, check "ok"; returns the line.
  Result<std::string> call(const std::string& cmd, std::chrono::milliseconds timeout);

  UniqueFd fd_;
  std::string path_;
  LineReader in_;  // on fd_ (the number survives a move)
};

}  // namespace strata::control
