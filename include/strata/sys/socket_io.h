// SPDX-License-Identifier: Apache-2.0
// sys (continued): the unix-socket, poll and sync calls of the control socket (control/).
//
// Socket paths are (dirfd, name): bind and connect go through the magic link
// /proc/self/fd/DIRFD/NAME, so a directory of any length works although sockaddr_un::sun_path holds
// 108 bytes; only NAME must be short (ENAMETOOLONG otherwise). Every fd is O_CLOEXEC; sends never
// raise SIGPIPE (MSG_NOSIGNAL). Errors: Result/Status with errno and the operation; nothing is
// thrown or logged. Thread-safety: reentrant.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <string>
#include <string_view>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::sys {

// socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC).
Result<UniqueFd> unix_socket();
// Bind `sock` to (dirfd, name), the socket file created with `mode` (set on the socket before bind,
// so it is never more open than that, whatever the umask).
Status bind_unix_at(int sock, int dirfd, const std::string& name, mode_t mode);
Status connect_unix_at(int sock, int dirfd, const std::string& name);
Status listen_fd(int sock, int backlog);
Result<UniqueFd> accept_fd(int sock);  // accept4(SOCK_CLOEXEC)
// poll(2); EINTR counts as "nothing ready" (returns 0) so callers recompute their deadline and poll
// again.
Result<int> poll_fds(struct pollfd* fds, nfds_t n, int timeout_ms);
// recv(2) of at most `size` bytes; 0 at end of stream. EINTR is retried.
Result<size_t> recv_some(int fd, void* buf, size_t size);
// send(2) all of `data` (MSG_NOSIGNAL); EINTR is retried.
Status send_all(int fd, std::string_view data);
// An eventfd used as a level-triggered "stop" flag: once signalled it stays readable.
Result<UniqueFd> stop_event();
Status signal_event(int fd);
// The pid of the process at the other end of a connected unix socket (SO_PEERCRED).
Result<pid_t> peer_pid(int sock);
// syncfs(2) of the filesystem holding `fd` (not an O_PATH fd).
Status sync_fs(int fd);

}  // namespace strata::sys
