// SPDX-License-Identifier: Apache-2.0
// Internal to src/commit: the libarchive half of a committed layer. Entries (archive::Entry, as
// tree_walk.h produces them) become a PAX-restricted tar (ustar headers, PAX records only where
// ustar cannot say it: long names, big ids, xattrs as SCHILY.xattr.*), no owner names, mtime in
// whole seconds, no end padding beyond the two zero blocks. The tar stream goes to an output
// callback as it is written: the caller hashes and compresses it there.
// Lifecycle: create(), then per entry begin() [data()...] end(), then close() once.
// Errors: Status naming the entry; an error from the output callback is returned as is.
// Thread-safety: one writer, one thread; it switches the thread's LC_CTYPE to C.UTF-8 while alive
// (names are kept byte for byte), as archive/unpack does.
#pragma once

#include <cstdint>
#include <memory>

#include "strata/archive/layer_writer.h"
#include "strata/base/result.h"
#include "strata/commit/compress.h"

namespace strata::commit::detail {

class TarWriter {
 public:
  static Result<std::unique_ptr<TarWriter>> create(ByteSink out);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  Status begin(const archive::Entry& e);
  Status data(const void* buf, size_t size);
  Status end();
  // Writes the end-of-archive blocks.
  Status close();
  uint64_t bytes() const { return bytes_; }

 private:
  TarWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t bytes_ = 0;
};

}  // namespace strata::commit::detail
