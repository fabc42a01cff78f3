// SPDX-License-Identifier: Apache-2.0
#include "strata/sys/socket_io.h"

#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace strata::sys {
namespace {

// sun_path for (dirfd, name). /proc/self/fd/N is a magic link to the directory: the kernel resolves
// it like any path, so bind and connect work in directories whose own path would not fit in
// sun_path.
Result<sockaddr_un> address_at(int dirfd, const std::string& name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (name.empty() || name.find('/') != std::string::npos)
    return make_error(EINVAL, "socket name", "'" + name + "' (one path component)");
  int n = snprintf(a.sun_path, sizeof a.sun_path, "/proc/self/fd/%d/%s", dirfd, name.c_str());
  if (n < 0 || static_cast<size_t>(n) >= sizeof a.sun_path)
    return make_error(ENAMETOOLONG, "socket name", name + " (at most ~90 bytes)");
  return a;
}

}  // namespace

Result<UniqueFd> unix_socket() {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket", "AF_UNIX");
  return UniqueFd(fd);
}

Status bind_unix_at(int sock, int dirfd, const std::string& name, mode_t mode) {
  auto a = address_at(dirfd, name);
  if (!a) return a.take_error();
  // Linux creates the socket file with the socket inode's mode minus the umask: set it first, no
  // window.
  if (::fchmod(sock, mode) < 0) return errno_error("fchmod socket", name);
  if (::bind(sock, reinterpret_cast<const sockaddr*>(&*a), sizeof *a) < 0)
    return errno_error("bind", name);
  return {};
}

Status connect_unix_at(int sock, int dirfd, const std::string& name) {
  auto a = address_at(dirfd, name);
  if (!a) return a.take_error();
  while (::connect(sock, reinterpret_cast<const sockaddr*>(&*a), sizeof *a) < 0) {
    if (errno != EINTR) return errno_error("connect", name);
  }
  return {};
}

Status listen_fd(int sock, int backlog) {
  if (::listen(sock, backlog) < 0) return errno_error("listen");
  return {};
}

Result<UniqueFd> accept_fd(int sock) {
  for (;;) {
    int fd = ::accept4(sock, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != EINTR) return errno_error("accept");
  }
}

Result<int> poll_fds(struct pollfd* fds, nfds_t n, int timeout_ms) {
  int r = ::poll(fds, n, timeout_ms);
  if (r < 0) {
    if (errno == EINTR) return 0;
    return errno_error("poll");
  }
  return r;
}

Result<size_t> recv_some(int fd, void* buf, size_t size) {
  for (;;) {
    ssize_t r = ::recv(fd, buf, size, 0);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return errno_error("recv");
  }
}

Status send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno_error("send");
    }
    data.remove_prefix(static_cast<size_t>(r));
  }
  return {};
}

Result<UniqueFd> stop_event() {
  int fd = ::eventfd(0, EFD_CLOEXEC);
  if (fd < 0) return errno_error("eventfd");
  return UniqueFd(fd);
}

Status signal_event(int fd) {
  uint64_t one = 1;
  if (::write(fd, &one, sizeof one) != static_cast<ssize_t>(sizeof one))
    return errno_error("eventfd write");
  return {};
}

Result<pid_t> peer_pid(int sock) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return errno_error("getsockopt SO_PEERCRED");
  return cred.pid;
}

Status sync_fs(int fd) {
  if (::syncfs(fd) < 0) return errno_error("syncfs");
  return {};
}

}  // namespace strata::sys
