// SPDX-License-Identifier: Apache-2.0
// The kernel ABI of FUSE over io_uring (Linux 6.14+, include/uapi/linux/fuse.h, protocol 7.42). Debian 12's
// kernel headers (6.1) predate it, so it is spelled out here, checked against the kernel's own static_asserts.
// The io_uring instance itself is sys::SqeRing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace strata::fuse::uring_abi {

constexpr uint32_t kInitExt = 1u << 30;           // FUSE_INIT_EXT: flags2 is meaningful
constexpr uint32_t kOverIoUringFlags2 = 1u << 9;  // FUSE_OVER_IO_URING (1ULL << 41), as a flags2 bit
constexpr uint32_t kOpInit = 26;                  // FUSE_INIT

// One ring entry's header buffer (iovec 0 of REGISTER). The kernel fills in_out with the fuse_in_header,
// op_in with the request's fixed per-opcode argument (in_args[0], possibly empty), and ent_in_out with the
// commit id and the size of the rest of the arguments, which it copies into the payload buffer (iovec 1).
// A reply puts its fuse_out_header in in_out and all its arguments, concatenated, in the payload.
struct EntInOut {
  uint64_t flags;
  uint64_t commit_id;
  uint32_t payload_sz;
  uint32_t padding;
  uint64_t reserved;
};
static_assert(sizeof(EntInOut) == 32);

struct ReqHeader {
  char in_out[128];
  char op_in[128];
  EntInOut ent_in_out;
};
static_assert(offsetof(ReqHeader, ent_in_out) == 256);

enum Cmd : uint32_t { kRegister = 1, kCommitAndFetch = 2 };

// In the 80-byte command area of a 128-byte SQE.
struct CmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
static_assert(sizeof(CmdReq) == 24);  // 40 from 7.46 on: the tail is a union the kernel wants zeroed

// Offset of the command area in a 128-byte SQE (struct io_uring_sqe's cmd[]).
constexpr size_t kSqeCmdOffset = 48;

}  // namespace strata::fuse::uring_abi
