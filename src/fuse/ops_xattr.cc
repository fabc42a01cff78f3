// SPDX-License-Identifier: Apache-2.0
// Extended attributes: the union's private names are invisible and cannot be set through the mount.
#include <string>

#include "daemon.h"

namespace strata::fuse {
namespace {

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  guarded(req, "getxattr", [&] {
    std::string buf(size, '\0');
    auto n = daemon_of(req)->ov->getxattr(node_of(req, ino), name, size ? buf.data() : nullptr, size);
    if (!n) return reply_error(req, n.error());
    if (size == 0) return (void)fuse_reply_xattr(req, *n);
    fuse_reply_buf(req, buf.data(), *n);
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  guarded(req, "listxattr", [&] {
    std::string buf(size, '\0');
    auto n = daemon_of(req)->ov->listxattr(node_of(req, ino), size ? buf.data() : nullptr, size);
    if (!n) return reply_error(req, n.error());
    if (size == 0) return (void)fuse_reply_xattr(req, *n);
    fuse_reply_buf(req, buf.data(), *n);
  });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  gated(req, "setxattr", [&] {
    auto r = daemon_of(req)->ov->setxattr(node_of(req, ino), name, std::string_view(value, size), flags);
    reply_status(req, r);
  });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  gated(req, "removexattr", [&] {
    auto r = daemon_of(req)->ov->removexattr(node_of(req, ino), name);
    reply_status(req, r);
  });
}

}  // namespace

void add_xattr_ops(fuse_lowlevel_ops* ops) {
  ops->getxattr = op_getxattr;
  ops->listxattr = op_listxattr;
  ops->setxattr = op_setxattr;
  ops->removexattr = op_removexattr;
}

}  // namespace strata::fuse
