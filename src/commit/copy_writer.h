// SPDX-License-Identifier: Apache-2.0
// Internal to src/commit: writes the data of the layers/ copy on a thread of its own, so that its
// disk writes (direct I/O, sys/store_io.h: synchronous) overlap reading, hashing and compressing on
// the caller's thread; and fsyncs finished files there too.
//
//   auto w = CopyWriter::start();
//   char* b = w->acquire();            // one of kBuffers buffers of kChunk bytes, aligned
//   ... read into b, use it ...;
//   w->submit(fd, b, n, off, direct, name);   // b goes back to the pool once written
//   w->wait();                         // everything submitted is done: fd may be finished, closed
//   w->sync_close(std::move(fd), name);  // fsync'ed and closed on the writer thread, in order
//
// A file's writes are submitted front to back, its first at offset 0; `direct` says whether the
// caller put O_DIRECT on it (pwrite_maybe_direct drops it for an unaligned tail). The fd of a
// submitted write is borrowed: keep it open until wait() returns.
// Memory: kBuffers * kChunk. Errors: the first failure is kept (naming the file); from then on
// nothing more is written and every call returns it. Thread-safety: one caller thread; the writer
// thread is internal. The destructor stops and joins it: pending writes are dropped, fds handed to
// sync_close() are closed.
#pragma once

#include <memory>
#include <string>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"

namespace strata::commit::detail {

class CopyWriter {
 public:
  static constexpr size_t kChunk = 1u << 20;
  static constexpr int kBuffers = 4;

  static Result<std::unique_ptr<CopyWriter>> start();
  ~CopyWriter();
  CopyWriter(const CopyWriter&) = delete;
  CopyWriter& operator=(const CopyWriter&) = delete;

  // A free buffer (waits for one).
  Result<char*> acquire();
  // Give back a buffer that is not to be written.
  void release(char* buf);
  Status submit(int fd, char* buf, size_t n, off_t off, bool direct, const std::string& name);
  Status sync_close(UniqueFd fd, const std::string& name);
  // Everything submitted so far (writes and syncs) is done.
  Status wait();

 private:
  CopyWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::commit::detail
