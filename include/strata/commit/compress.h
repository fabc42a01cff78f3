// SPDX-License-Identifier: Apache-2.0
// commit/compress: the streaming compressor of a layer blob — gzip (zlib), zstd or none — that
// hands its output to a sink as it is produced.
//
// Deterministic: the same input, level and library version give the same bytes. gzip runs on every
// CPU in independent 1 MiB blocks (src/commit/pgzip.h), so its bytes do not depend on the CPU
// count either; its header carries no file name, mtime 0 and OS 3 (Unix): nothing of the machine
// or the moment. Levels: kDefaultLevel picks gzip 6 (what docker and containerd use) and zstd 3.
// Lifecycle: make(), feed() any number of times, finish() once; after finish() or an error the
// compressor is spent. Errors: Status (ENOMEM, EIO for a library failure) or whatever the sink
// returns, passed through. Thread-safety: one compressor, one thread. For gzip the sink runs on an
// internal thread (one call at a time, in order, none after finish() returns or the compressor is
// destroyed); for zstd and none on the caller's.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "strata/base/result.h"

namespace strata::commit {

enum class Compression { kGzip, kZstd, kNone };

// "gzip", "zstd", "none"; EINVAL otherwise.
Result<Compression> parse_compression(std::string_view name);
const char* compression_name(Compression c);

using ByteSink = std::function<Status(const void* data, size_t size)>;

class Compressor {
 public:
  static constexpr int kDefaultLevel = -1;

  static Result<Compressor> make(Compression c, int level, ByteSink sink);
  Compressor(Compressor&&) noexcept;
  Compressor& operator=(Compressor&&) noexcept;
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  ~Compressor();

  Status feed(const void* data, size_t size);
  Status finish();

 private:
  struct State;
  Compressor() = default;
  std::unique_ptr<State> s_;
};

}  // namespace strata::commit
