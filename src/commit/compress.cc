// SPDX-License-Identifier: Apache-2.0
#include "strata/commit/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <new>
#include <string>

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
  z_stream z{};
  bool z_init = false;
  ZSTD_CCtx* zs = nullptr;
  bool done = false;

  ~State() {
    if (z_init) (void)deflateEnd(&z);  // the stream is abandoned or finished: nothing to report
    if (zs) ZSTD_freeCCtx(zs);
  }

  Status deflate_step(const void* data, size_t size, int flush) {
    z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
    z.avail_in = static_cast<uInt>(size);
    while (true) {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      int r = deflate(&z, flush);
      if (r == Z_STREAM_ERROR) return make_error(EIO, "gzip", z.msg ? z.msg : "deflate failed");
      size_t have = out.size() - z.avail_out;
      if (have) STRATA_TRY(sink(out.data(), have));
      if (flush == Z_FINISH) {
        if (r == Z_STREAM_END) return {};
        continue;
      }
      if (z.avail_in == 0 && z.avail_out != 0) return {};
    }
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
    // windowBits 15 + 16: a gzip wrapper with zlib's default header (no name, mtime 0, OS 3).
    if (deflateInit2(&s.z, lvl, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return make_error(ENOMEM, "gzip", "deflateInit2");
    s.z_init = true;
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
      // deflate takes at most 4 GiB at once (uInt).
      while (size > 0) {
        size_t n = size > (1u << 30) ? (1u << 30) : size;
        STRATA_TRY(s_->deflate_step(data, n, Z_NO_FLUSH));
        data = static_cast<const char*>(data) + n;
        size -= n;
      }
      return {};
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
      return s_->deflate_step(nullptr, 0, Z_FINISH);
    case Compression::kZstd:
      return s_->zstd_step(nullptr, 0, ZSTD_e_end);
  }
  return {};
}

}  // namespace strata::commit
