// SPDX-License-Identifier: Apache-2.0
// commit: layer compression (compress.h, pgzip.h). The contract under test: gzip, zstd and none
// round-trip through their standard decoders, across many blocks; the parallel gzip stream is one
// gzip member whose bytes do not depend on the number of threads; the header has no name and mtime
// 0.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <atomic>
#include <memory>
#include <random>
#include <string>

#include "../../src/commit/pgzip.h"
#include "strata/commit/compress.h"
#include "tree.h"

namespace {

using strata::Status;
using strata::commit::Compression;
using strata::commit::Compressor;

std::string mixed(size_t n) {
  std::mt19937 rng(7);
  std::string s;
  s.reserve(n);
  while (s.size() < n) {
    if (rng() % 20 == 0) {  // mostly text, some random runs
      for (int i = 0; i < 400 && s.size() < n; ++i) s.push_back(static_cast<char>(rng()));
    } else {
      s += "the quick brown fox " + std::to_string(rng() % 1000) + " jumps\n";
    }
  }
  s.resize(n);
  return s;
}

std::string compress(Compression c, const std::string& in, size_t chunk) {
  std::string out;
  auto comp =
      Compressor::make(c, Compressor::kDefaultLevel, [&](const void* d, size_t n) -> Status {
        out.append(static_cast<const char*>(d), n);
        return {};
      });
  if (!comp) throw std::runtime_error(comp.error().message());
  for (size_t i = 0; i < in.size(); i += chunk) {
    auto r = comp->feed(in.data() + i, std::min(chunk, in.size() - i));
    if (!r) throw std::runtime_error(r.error().message());
  }
  auto r = comp->finish();
  if (!r) throw std::runtime_error(r.error().message());
  return out;
}

std::string gunzip(const std::string& in) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  std::string out;
  char buf[65536];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int r;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    r = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  } while (r == Z_OK);
  EXPECT_EQ(r, Z_STREAM_END);
  EXPECT_EQ(z.avail_in, 0u) << "data after the gzip member";
  inflateEnd(&z);
  return out;
}

TEST(Compress, GzipRoundTripsAcrossBlocks) {
  for (size_t n : {size_t(0), size_t(10), size_t(1) << 20, (size_t(7) << 19) + 123}) {
    std::string in = mixed(n);
    std::string gz = compress(Compression::kGzip, in, 7777);
    ASSERT_GE(gz.size(), 18u);
    EXPECT_EQ(gz.substr(0, 10), std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10))
        << "header";
    EXPECT_EQ(gunzip(gz), in) << n;
    // Chunking of the input does not matter.
    EXPECT_EQ(compress(Compression::kGzip, in, 1u << 20), gz);
  }
}

TEST(Compress, ParallelGzipIndependentOfThreads) {
  std::string in = mixed(5u << 20);
  std::string outs[3];
  unsigned threads[3] = {1, 2, 7};
  for (int i = 0; i < 3; ++i) {
    strata::commit::detail::ParallelGzip pg(6, threads[i],
                                            [&, i](const void* d, size_t n) -> Status {
                                              outs[i].append(static_cast<const char*>(d), n);
                                              return {};
                                            });
    ASSERT_OK(pg.feed(in.data(), in.size()));
    ASSERT_OK(pg.finish());
  }
  EXPECT_EQ(outs[0], outs[1]);
  EXPECT_EQ(outs[0], outs[2]);
  EXPECT_EQ(gunzip(outs[0]), in);
  EXPECT_LT(outs[0].size(), in.size() / 2);
}

TEST(Compress, IncompressibleBlocksAreStored) {
  std::mt19937 rng(3);
  std::string in(3u << 20, '\0');
  for (auto& c : in) c = static_cast<char>(rng());
  in += mixed(2u << 20);  // then compressible blocks again
  std::string gz = compress(Compression::kGzip, in, 65536);
  EXPECT_EQ(gunzip(gz), in);
  EXPECT_LT(gz.size(), (3u << 20) + (1u << 20)) << "stored blocks add only their headers";
}

TEST(Compress, SinkErrorStops) {
  int calls = 0;
  auto comp = Compressor::make(Compression::kGzip, Compressor::kDefaultLevel,
                               [&](const void*, size_t) -> Status {
                                 ++calls;
                                 return strata::make_error(ENOSPC, "write", "full");
                               });
  ASSERT_OK(comp);
  std::string in = mixed(3u << 20);
  auto r = comp->feed(in.data(), in.size());
  if (r) r = comp->finish();
  EXPECT_ERRNO(r, ENOSPC);
}

TEST(Compress, SinkFailingMidwayStopsTheThreads) {
  // The sink (on the emitter thread) fails on its 4th call: feed() or finish() reports it, nothing
  // reaches the sink afterwards, and the workers are stopped and joined (no hang, no late call).
  std::atomic<int> calls{0};
  auto comp = Compressor::make(Compression::kGzip, Compressor::kDefaultLevel,
                               [&](const void*, size_t) -> Status {
                                 if (++calls == 4) return strata::make_error(EIO, "write", "bad");
                                 return {};
                               });
  ASSERT_OK(comp);
  std::string in = mixed(12u << 20);
  Status r;
  for (size_t i = 0; r && i < in.size(); i += 100000)
    r = comp->feed(in.data() + i, std::min<size_t>(100000, in.size() - i));
  if (r) r = comp->finish();
  EXPECT_ERRNO(r, EIO);
  EXPECT_EQ(calls.load(), 4);
  EXPECT_FALSE(comp->feed("x", 1).has_value());  // spent
}

TEST(Compress, AbandonedMidStreamJoinsItsThreads) {
  // A commit that fails elsewhere destroys the compressor between feeds: it must not call the sink
  // afterwards (its target is gone) nor hang.
  auto alive = std::make_shared<std::atomic<bool>>(true);
  std::atomic<int> late{0};
  {
    auto comp = Compressor::make(Compression::kGzip, Compressor::kDefaultLevel,
                                 [&, alive](const void*, size_t) -> Status {
                                   if (!*alive) ++late;
                                   return {};
                                 });
    ASSERT_OK(comp);
    std::string in = mixed(6u << 20);
    ASSERT_OK(comp->feed(in.data(), in.size()));
    Compressor gone = std::move(*comp);
  }
  *alive = false;
  EXPECT_EQ(late.load(), 0);
}

TEST(Compress, ZstdAndNone) {
  std::string in = mixed(3u << 20);
  std::string z = compress(Compression::kZstd, in, 100000);
  std::string back(in.size(), '\0');
  EXPECT_EQ(ZSTD_decompress(back.data(), back.size(), z.data(), z.size()), in.size());
  EXPECT_EQ(back, in);
  EXPECT_EQ(compress(Compression::kNone, in, 5000), in);
  EXPECT_ERRNO(strata::commit::parse_compression("lz4"), EINVAL);
}

}  // namespace
