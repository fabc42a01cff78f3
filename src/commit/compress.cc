// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <new>
#include <string>
#include <thread>

#include "pgzip.h"

namespace strata::commit {

namespace {
constexpr size_t kOutBuf = 256 * 1024;
}

Result<Compression> parse_compression(std::string_view name) {
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  if (name == "none") return Compression::kNone;
  return make_error(EINVAL, "compression", "'" + std::string(name) + "': not gzip, zstd or none");
}

const char* compression_name(Compression c) {
  switch (c) {
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
    case Compression::kNone:
      return "none";
  }
  return "?";
}

struct Compressor::State {
  Compression kind = Compression::kNone;
  ByteSink sink;
  std::vector<unsigned char> out;
  std::unique_ptr<detail::ParallelGzip> gz;
  ZSTD_CCtx* zs = nullptr;
  bool done = false;

  ~State() {
    if (zs) ZSTD_freeCCtx(zs);
  }

  Status zstd_step(const void* data, size_t size, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data, size, 0};
    while (true) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      size_t r = ZSTD_compressStream2(zs, &ob, &in, mode);
      if (ZSTD_isError(r)) return make_error(EIO, "zstd", ZSTD_getErrorName(r));
      if (ob.pos) STRATA_TRY(sink(out.data(), ob.pos));
      if (mode == ZSTD_e_end ? r == 0 : in.pos == in.size) return {};
    }
  }
};

Compressor::Compressor(Compressor&&) noexcept = default;
Compressor& Compressor::operator=(Compressor&&) noexcept = default;
Compressor::~Compressor() = default;

Result<Compressor> Compressor::make(Compression c, int level, ByteSink sink) {
  Compressor out;
  try {
    out.s_ = std::make_unique<State>();
    out.s_->out.resize(kOutBuf);
  } catch (const std::bad_alloc&) {
    return make_error(ENOMEM, "compress", "buffers");
  }
  State& s = *out.s_;
  s.kind = c;
  s.sink = std::move(sink);
  if (c == Compression::kGzip) {
    int lvl = level == kDefaultLevel ? 6 : level;
    if (lvl < 0 || lvl > 9)
      return make_error(EINVAL, "gzip", "level " + std::to_string(lvl) + " (0-9)");
    // On every CPU: deflate dominates the cost of a commit; the output does not depend on it.
    unsigned n = std::thread::hardware_concurrency();
    s.gz = std::make_unique<detail::ParallelGzip>(lvl, n ? std::min(n, 16u) : 2u, s.sink);
  } else if (c == Compression::kZstd) {
    int lvl = level == kDefaultLevel ? 3 : level;
    if (lvl < 1 || lvl > ZSTD_maxCLevel())
      return make_error(EINVAL, "zstd", "level " + std::to_string(lvl));
    s.zs = ZSTD_createCCtx();
    if (!s.zs) return make_error(ENOMEM, "zstd", "ZSTD_createCCtx");
    if (ZSTD_isError(ZSTD_CCtx_setParameter(s.zs, ZSTD_c_compressionLevel, lvl)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(s.zs, ZSTD_c_checksumFlag, 1)))
      return make_error(EIO, "zstd", "setting parameters");
  }
  return out;
}

Status Compressor::feed(const void* data, size_t size) {
  if (!s_ || s_->done) return make_error(EINVAL, "compress", "already finished");
  if (size == 0) return {};
  switch (s_->kind) {
    case Compression::kNone:
      return s_->sink(data, size);
    case Compression::kGzip:
      return s_->gz->feed(data, size);
    case Compression::kZstd:
      return s_->zstd_step(data, size, ZSTD_e_continue);
  }
  return {};
}

Status Compressor::finish() {
  if (!s_ || s_->done) return make_error(EINVAL, "compress", "already finished");
  s_->done = true;
  switch (s_->kind) {
    case Compression::kNone:
      return {};
    case Compression::kGzip:
      return s_->gz->finish();
    case Compression::kZstd:
      return s_->zstd_step(nullptr, 0, ZSTD_e_end);
  }
  return {};
}

}  // namespace strata::commit
