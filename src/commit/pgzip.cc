// SPDX-License-Identifier: Apache-2.0
#include "pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <deque>
#include <future>
#include <new>
#include <string>
#include <vector>

namespace strata::commit::detail {
namespace {

constexpr size_t kDict = 32 * 1024;
using Bytes = std::vector<unsigned char>;

// One block as raw deflate: the previous 32 KiB as dictionary, ended by a sync flush (byte
// aligned, not final) or, for the last block, by the final block.
// Whether a block looks incompressible: its first 64 KiB deflated at level 1 save under 2%.
// (Already compressed files, random data: zlib spends as long on them as on text and gains nothing;
// stored blocks cost a copy.) Decided by the data alone, so the output stays deterministic.
bool incompressible(const Bytes& in) {
  constexpr size_t kProbe = 64 * 1024;
  if (in.size() < kProbe) return false;
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  Bytes out(deflateBound(&z, kProbe));
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(kProbe);
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int r = deflate(&z, Z_FINISH);
  size_t produced = out.size() - z.avail_out;
  (void)deflateEnd(&z);  // a probe: nothing to report
  return r == Z_STREAM_END && produced * 50 >= kProbe * 49;
}

Result<Bytes> deflate_block(int level, const Bytes& dict, const Bytes& in, bool last) {
  if (level > 0 && incompressible(in)) level = 0;
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return make_error(ENOMEM, "gzip", "deflateInit2");
  struct End {
    z_stream* z;
    ~End() { (void)deflateEnd(z); }  // the block is done or failed: nothing left to report
  } end{&z};
  if (!dict.empty() &&
      deflateSetDictionary(&z, dict.data(), static_cast<uInt>(dict.size())) != Z_OK)
    return make_error(EIO, "gzip", "deflateSetDictionary");
  Bytes out(deflateBound(&z, in.size()) + 64);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  int r = deflate(&z, last ? Z_FINISH : Z_SYNC_FLUSH);
  if (r == Z_STREAM_ERROR || z.avail_in != 0 || (last && r != Z_STREAM_END))
    return make_error(EIO, "gzip", "deflate of a block failed");
  out.resize(out.size() - z.avail_out);
  return out;
}

void le32(Bytes* b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b->push_back(static_cast<unsigned char>(v >> (8 * i)));
}

}  // namespace

struct ParallelGzip::Impl {
  int level;
  unsigned threads;
  ByteSink sink;
  Bytes block;  // input not yet submitted
  Bytes dict;   // the last 32 KiB submitted
  uLong crc = crc32(0, nullptr, 0);
  uint64_t total = 0;
  bool header_done = false;
  std::deque<std::future<Result<Bytes>>> pending;

  ~Impl() {
    for (auto& f : pending) f.wait();  // workers borrow nothing, but do not outlive us
  }

  Status emit_one() {
    Result<Bytes> piece = make_error(EIO, "gzip", "lost block");
    try {
      piece = pending.front().get();
    } catch (const std::bad_alloc&) {
      piece = make_error(ENOMEM, "gzip", "out of memory");
    } catch (...) {
      piece = make_error(EIO, "gzip", "worker failed");
    }
    pending.pop_front();
    if (!piece) return piece.take_error();
    return piece->empty() ? Status{} : sink(piece->data(), piece->size());
  }

  Status submit(bool last) {
    if (!header_done) {
      // No name, mtime 0, XFL 0, OS 3 (Unix): nothing of the machine or the moment.
      static const unsigned char kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
      STRATA_TRY(sink(kHeader, sizeof kHeader));
      header_done = true;
    }
    Bytes in;
    in.swap(block);
    Bytes d = dict;
    if (in.size() >= kDict) {
      dict.assign(in.end() - static_cast<std::ptrdiff_t>(kDict), in.end());
    } else {
      dict.insert(dict.end(), in.begin(), in.end());
      if (dict.size() > kDict)
        dict.erase(dict.begin(), dict.end() - static_cast<std::ptrdiff_t>(kDict));
    }
    int lvl = level;
    pending.push_back(
        std::async(std::launch::async, [lvl, d = std::move(d), in = std::move(in), last]() {
          try {
            return deflate_block(lvl, d, in, last);
          } catch (const std::bad_alloc&) {
            return Result<Bytes>(make_error(ENOMEM, "gzip", "out of memory"));
          }
        }));
    while (pending.size() > threads) STRATA_TRY(emit_one());
    return {};
  }
};

ParallelGzip::ParallelGzip(int level, unsigned threads, ByteSink sink)
    : impl_(std::make_unique<Impl>()) {
  impl_->level = level;
  impl_->threads = std::max(1u, threads);
  impl_->sink = std::move(sink);
  impl_->block.reserve(kBlock);
}

ParallelGzip::~ParallelGzip() = default;

Status ParallelGzip::feed(const void* data, size_t size) {
  Impl& im = *impl_;
  const auto* p = static_cast<const unsigned char*>(data);
  im.crc = crc32_z(im.crc, p, size);
  im.total += size;
  while (size > 0) {
    size_t n = std::min(size, kBlock - im.block.size());
    im.block.insert(im.block.end(), p, p + n);
    p += n;
    size -= n;
    if (im.block.size() == kBlock) STRATA_TRY(im.submit(false));
  }
  return {};
}

Status ParallelGzip::finish() {
  Impl& im = *impl_;
  STRATA_TRY(im.submit(true));
  while (!im.pending.empty()) STRATA_TRY(im.emit_one());
  Bytes trailer;
  le32(&trailer, static_cast<uint32_t>(im.crc));
  le32(&trailer, static_cast<uint32_t>(im.total & 0xffffffffu));
  return im.sink(trailer.data(), trailer.size());
}

}  // namespace strata::commit::detail
