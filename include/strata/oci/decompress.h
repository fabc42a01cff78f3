// SPDX-License-Identifier: Apache-2.0
// oci/decompress: a pull-style reader that turns a layer blob (gzip, zstd or plain tar, recognised
// by its magic bytes, not trusted from the media type) into the uncompressed tar stream, so that
// the caller can hash exactly the bytes it unpacks (the diff_id).
//
// gzip may have several members (concatenated streams, as pigz and some registries produce);
// zstd several frames. A stream that ends inside a member or frame is an error (EBADMSG,
// "truncated"); so is corrupt data (EBADMSG with zlib's / zstd's message). Errors of the input
// function are passed on unchanged. Thread-safety: one thread per Decompressor.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "strata/base/result.h"

namespace strata::oci {

// Fill up to `size` bytes at `buf`; 0 at the end of the input.
using InputFn = std::function<Result<size_t>(void* buf, size_t size)>;

enum class Compression { kNone, kGzip, kZstd };

class Decompressor {
 public:
  explicit Decompressor(InputFn input);
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // Up to `size` uncompressed bytes; 0 at the end of the stream.
  Result<size_t> read(void* buf, size_t size);
  // Known after the first read().
  Compression compression() const { return kind_; }

 private:
  Status fill();
  Status sniff();
  Result<size_t> read_gzip(void* buf, size_t size);
  Result<size_t> read_zstd(void* buf, size_t size);

  InputFn input_;
  std::unique_ptr<unsigned char[]> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool eof_ = false, sniffed_ = false, done_ = false;
  Compression kind_ = Compression::kNone;
  void* z_ = nullptr;     // z_stream*
  void* zstd_ = nullptr;  // ZSTD_DStream*
  bool frame_open_ = false;
};

}  // namespace strata::oci
