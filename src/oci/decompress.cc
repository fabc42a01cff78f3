// SPDX-License-Identifier: Apache-2.0
#include "strata/oci/decompress.h"

#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace strata::oci {
namespace {
constexpr size_t kInBuf = 128 * 1024;
Error corrupt(const std::string& what) { return make_error(EBADMSG, "decompress", what); }
}  // namespace

Decompressor::Decompressor(InputFn input) : input_(std::move(input)), in_(new unsigned char[kInBuf]) {}

Decompressor::~Decompressor() {
  if (z_) {
    inflateEnd(static_cast<z_stream*>(z_));
    delete static_cast<z_stream*>(z_);
  }
  if (zstd_) ZSTD_freeDStream(static_cast<ZSTD_DStream*>(zstd_));
}

// Moves unread bytes to the front and reads more (one input call).
Status Decompressor::fill() {
  if (eof_) return {};
  if (in_pos_ > 0) {
    std::memmove(in_.get(), in_.get() + in_pos_, in_len_ - in_pos_);
    in_len_ -= in_pos_;
    in_pos_ = 0;
  }
  if (in_len_ == kInBuf) return {};
  auto n = input_(in_.get() + in_len_, kInBuf - in_len_);
  if (!n) return n.take_error();
  if (*n == 0) eof_ = true;
  in_len_ += *n;
  return {};
}

Status Decompressor::sniff() {
  sniffed_ = true;
  while (in_len_ < 4 && !eof_) STRATA_TRY(fill());
  const unsigned char* p = in_.get();
  if (in_len_ >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
    kind_ = Compression::kGzip;
    auto* zs = new z_stream{};
    if (inflateInit2(zs, 15 + 16) != Z_OK) {
      delete zs;
      return make_error(ENOMEM, "decompress", "inflateInit2");
    }
    z_ = zs;
  } else if (in_len_ >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) {
    kind_ = Compression::kZstd;
    zstd_ = ZSTD_createDStream();
    if (!zstd_) return make_error(ENOMEM, "decompress", "ZSTD_createDStream");
  }
  return {};
}

Result<size_t> Decompressor::read(void* buf, size_t size) {
  if (!sniffed_) STRATA_TRY(sniff());
  if (done_ || size == 0) return size_t{0};
  switch (kind_) {
    case Compression::kGzip: return read_gzip(buf, size);
    case Compression::kZstd: return read_zstd(buf, size);
    case Compression::kNone: break;
  }
  if (in_pos_ == in_len_) {
    if (eof_) return size_t{0};
    in_pos_ = in_len_ = 0;
    auto n = input_(buf, size);  // pass-through: no copy through our buffer
    if (n && *n == 0) eof_ = true;
    return n;
  }
  size_t n = std::min(size, in_len_ - in_pos_);
  std::memcpy(buf, in_.get() + in_pos_, n);
  in_pos_ += n;
  return n;
}

Result<size_t> Decompressor::read_gzip(void* buf, size_t size) {
  auto* zs = static_cast<z_stream*>(z_);
  zs->next_out = static_cast<Bytef*>(buf);
  zs->avail_out = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
  while (zs->avail_out > 0) {
    if (in_pos_ == in_len_) {
      if (eof_) {
        if (frame_open_) return corrupt("gzip stream truncated");
        done_ = true;
        break;
      }
      STRATA_TRY(fill());
      continue;
    }
    zs->next_in = in_.get() + in_pos_;
    zs->avail_in = static_cast<uInt>(in_len_ - in_pos_);
    frame_open_ = true;
    int rc = inflate(zs, Z_NO_FLUSH);
    in_pos_ = in_len_ - zs->avail_in;
    if (rc == Z_STREAM_END) {
      frame_open_ = false;
      // Another member may follow (concatenated gzip).
      if (inflateReset(zs) != Z_OK) return corrupt("inflateReset");
      continue;
    }
    if (rc == Z_BUF_ERROR) continue;  // needs more input
    if (rc != Z_OK) return corrupt(std::string("gzip: ") + (zs->msg ? zs->msg : "inflate failed"));
  }
  return size - zs->avail_out;
}

Result<size_t> Decompressor::read_zstd(void* buf, size_t size) {
  auto* ds = static_cast<ZSTD_DStream*>(zstd_);
  ZSTD_outBuffer out{buf, size, 0};
  while (out.pos < out.size) {
    if (in_pos_ == in_len_) {
      if (eof_) {
        if (frame_open_) return corrupt("zstd stream truncated");
        done_ = true;
        break;
      }
      STRATA_TRY(fill());
      continue;
    }
    ZSTD_inBuffer in{in_.get() + in_pos_, in_len_ - in_pos_, 0};
    size_t rc = ZSTD_decompressStream(ds, &out, &in);
    in_pos_ += in.pos;
    if (ZSTD_isError(rc)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(rc));
    frame_open_ = rc != 0;
    if (in.pos == 0 && out.pos == 0 && in_pos_ < in_len_ && !eof_) STRATA_TRY(fill());
  }
  return out.pos;
}

}  // namespace strata::oci
