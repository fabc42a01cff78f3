// SPDX-License-Identifier: Apache-2.0
// Internal to src/commit: gzip compressed on several threads, with output that does not depend on
// how many (the pigz technique). The input is cut into fixed 1 MiB blocks; each block is deflated
// on its own (raw deflate, primed with the previous 32 KiB as dictionary, ended with a sync flush,
// the last one with the final block), and the pieces, concatenated in order, form one deflate
// stream inside one gzip member: header without name, mtime 0, OS 3; trailer CRC-32 and size.
// A block whose start does not compress (random data, compressed files; pgzip.cc says how that is
// told) is stored instead (level 0): decided by the data alone. Any gzip reader reads it; the same
// input and level give the same bytes on any machine. Each worker also takes its block's CRC-32
// (combined in order). Threads: `threads` workers deflate; one emitter thread calls the sink, in
// order, one call at a time, so hashing and writing the blob overlap reading and deflating. The
// sink is called only from the emitter (never after finish() returns or the destructor ran);
// whatever it touches, the feeding thread must leave alone until then. Memory: at most `threads` +
// 2 blocks in flight (a few MiB); feed() waits for room. Errors: Status (ENOMEM, EIO from zlib,
// EAGAIN if threads cannot start, or the sink's); after the first one nothing more reaches the sink
// and feed()/finish() return it. Thread-safety: feed/finish from one thread. The destructor stops
// and joins every thread, also mid-stream (a failed commit).
#pragma once

#include <cstddef>
#include <memory>

#include "strata/base/result.h"
#include "strata/commit/compress.h"

namespace strata::commit::detail {

class ParallelGzip {
 public:
  static constexpr size_t kBlock = 1u << 20;
  ParallelGzip(int level, unsigned threads, ByteSink sink);
  ~ParallelGzip();
  ParallelGzip(const ParallelGzip&) = delete;
  ParallelGzip& operator=(const ParallelGzip&) = delete;

  Status feed(const void* data, size_t size);
  Status finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::commit::detail
