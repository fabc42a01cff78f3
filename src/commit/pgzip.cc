// SPDX-License-Identifier: Apache-2.0
#include "pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace strata::commit::detail {
namespace {

constexpr size_t kDict = 32 * 1024;
using Bytes = std::vector<unsigned char>;

// Whether a block looks incompressible, decided by its data alone (so the output stays
// deterministic). Already compressed files and random data cost zlib as long as text and gain
// nothing; a stored block costs a copy. Two cheap looks at the first 64 KiB:
//   - byte entropy: below 7.9 bits a byte, Huffman coding alone saves over 1%: compress;
//   - else an LZ probe of the first 8 KiB at level 1 (repeats of random-looking runs, which the
//     entropy cannot see): it must save under 2%.
// (The previous probe deflated all 64 KiB at level 1: for random data it cost more than storing.)
bool incompressible(const Bytes& in) {
  constexpr size_t kProbe = 64 * 1024;
  constexpr size_t kLzProbe = 8 * 1024;
  if (in.size() < kProbe) return false;
  std::array<std::array<uint32_t, 256>, 4> counts{};
  for (size_t i = 0; i < kProbe; i += 4) {
    ++counts[0][in[i]];
    ++counts[1][in[i + 1]];
    ++counts[2][in[i + 2]];
    ++counts[3][in[i + 3]];
  }
  double bits = 0;
  for (int b = 0; b < 256; ++b) {
    uint32_t c = counts[0][b] + counts[1][b] + counts[2][b] + counts[3][b];
    if (c) bits -= c * std::log2(static_cast<double>(c) / kProbe);
  }
  if (bits < 7.9 * kProbe) return false;
  z_stream z{};
  if (deflateInit2(&z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  unsigned char out[kLzProbe + 1024];
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(kLzProbe);
  z.next_out = out;
  z.avail_out = static_cast<uInt>(sizeof out);
  int r = deflate(&z, Z_FINISH);
  size_t produced = sizeof out - z.avail_out;
  (void)deflateEnd(&z);  // a probe: nothing to report
  return r == Z_STREAM_END && produced * 50 >= kLzProbe * 49;
}

// One block as raw deflate: the previous 32 KiB as dictionary, ended by a sync flush (byte
// aligned, not final) or, for the last block, by the final block.
Result<Bytes> deflate_block(int level, const Bytes& dict, const Bytes& in, bool last) {
  if (level > 0 && incompressible(in)) level = 0;
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return make_error(ENOMEM, "gzip", "deflateInit2");
  struct End {
    z_stream* z;
    ~End() { (void)deflateEnd(z); }  // the block is done or failed: nothing left to report
  } end{&z};
  // A stored block refers to nothing before it: the dictionary would only be hashed for nothing.
  if (level > 0 && !dict.empty() &&
      deflateSetDictionary(&z, dict.data(), static_cast<uInt>(dict.size())) != Z_OK)
    return make_error(EIO, "gzip", "deflateSetDictionary");
  Bytes out;
  out.reserve(deflateBound(&z, in.size()) + 64);
  // resize() without zero-filling a MiB per block: reserve, then grow in place as zlib writes.
  out.resize(out.capacity());
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

struct Job {
  Bytes in;
  Bytes dict;
  bool last = false;
  bool done = false;
  Result<Bytes> out = Bytes{};
  uLong crc = 0;
};

}  // namespace

// Threads: `threads` workers take blocks from `queue` (oldest first) and deflate them; one emitter
// hands finished blocks to the sink strictly in order. The feeding thread waits while `in_flight`
// blocks (queued, deflating or waiting to be emitted) reach the limit. The first error (a block's
// or the sink's) is kept in `error`; from then on nothing more reaches the sink and feed/finish
// return it.
struct ParallelGzip::Impl {
  int level = 6;
  unsigned threads = 1;
  ByteSink sink;
  Bytes block;  // input not yet submitted
  Bytes dict;   // the last 32 KiB submitted
  uint64_t total = 0;

  std::mutex mu;
  std::condition_variable work_cv;         // workers: a job queued, or stop
  std::condition_variable emit_cv;         // emitter: the oldest job done, or stop/finish
  std::condition_variable room_cv;         // feeder: a block emitted (room), or an error
  std::deque<Job*> queue;                  // submitted, not yet taken by a worker
  std::deque<std::unique_ptr<Job>> order;  // submitted, not yet emitted (oldest first)
  bool stop = false;
  bool finished = false;  // no more blocks will be submitted
  bool emitter_done = false;
  Status error;
  uLong crc = crc32(0, nullptr, 0);  // of what was emitted (emitter only, then finish())
  std::vector<std::thread> workers;
  std::thread emitter;

  ~Impl() {
    {
      std::lock_guard<std::mutex> l(mu);
      stop = true;
    }
    work_cv.notify_all();
    emit_cv.notify_all();
    for (auto& t : workers) t.join();
    if (emitter.joinable()) emitter.join();
  }

  void fail(Status s) {  // mu held
    if (error) error = std::move(s);
    room_cv.notify_all();
  }

  void work() {
    std::unique_lock<std::mutex> l(mu);
    while (true) {
      work_cv.wait(l, [&] { return stop || !queue.empty(); });
      if (stop) return;
      Job* j = queue.front();
      queue.pop_front();
      l.unlock();
      Result<Bytes> r = make_error(EIO, "gzip", "worker failed");
      uLong c = 0;
      try {
        c = crc32_z(0, j->in.data(), j->in.size());
        r = deflate_block(level, j->dict, j->in, j->last);
      } catch (const std::bad_alloc&) {
        r = make_error(ENOMEM, "gzip", "out of memory");
      }
      l.lock();
      j->out = std::move(r);
      j->crc = c;
      j->done = true;
      if (order.front().get() == j) emit_cv.notify_one();
    }
  }

  void emit() {
    bool header_done = false;
    std::unique_lock<std::mutex> l(mu);
    while (true) {
      emit_cv.wait(l, [&] {
        return stop || (!order.empty() && order.front()->done) || (finished && order.empty());
      });
      if (stop || order.empty()) break;
      std::unique_ptr<Job> j = std::move(order.front());
      order.pop_front();
      bool ok = static_cast<bool>(error);
      l.unlock();
      // The sink runs unlocked: it may block on disk while workers go on.
      Status s;
      if (ok) {
        if (!header_done) {
          // No name, mtime 0, XFL 0, OS 3 (Unix): nothing of the machine or the moment.
          static const unsigned char kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
          s = sink(kHeader, sizeof kHeader);
          header_done = true;
        }
        if (s && !j->out) s = j->out.take_error();
        if (s) {
          crc = crc32_combine(crc, j->crc, static_cast<z_off_t>(j->in.size()));
          if (!j->out->empty()) s = sink(j->out->data(), j->out->size());
        }
      }
      j.reset();
      l.lock();
      if (!s) fail(std::move(s));
      room_cv.notify_all();
    }
    emitter_done = true;
    room_cv.notify_all();
  }

  Status start() {
    try {
      emitter = std::thread([this] { emit(); });
      for (unsigned i = 0; i < threads; ++i) workers.emplace_back([this] { work(); });
    } catch (const std::system_error&) {
      return make_error(EAGAIN, "gzip", "starting threads");
    }
    return {};
  }

  Status submit(bool last) {
    auto j = std::make_unique<Job>();
    j->in.swap(block);
    block.reserve(kBlock);
    j->dict = dict;
    j->last = last;
    if (j->in.size() >= kDict) {
      dict.assign(j->in.end() - static_cast<std::ptrdiff_t>(kDict), j->in.end());
    } else {
      dict.insert(dict.end(), j->in.begin(), j->in.end());
      if (dict.size() > kDict)
        dict.erase(dict.begin(), dict.end() - static_cast<std::ptrdiff_t>(kDict));
    }
    std::unique_lock<std::mutex> l(mu);
    // Bounded memory: at most threads + 2 blocks between the feeder and the sink.
    room_cv.wait(l, [&] { return !error || order.size() < threads + 2; });
    if (!error) return error;
    queue.push_back(j.get());
    order.push_back(std::move(j));
    if (last) finished = true;
    l.unlock();
    work_cv.notify_one();
    if (last) emit_cv.notify_one();
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
  if (im.workers.empty() && !im.emitter.joinable()) STRATA_TRY(im.start());
  {
    std::lock_guard<std::mutex> l(im.mu);
    if (!im.error) return im.error;
  }
  const auto* p = static_cast<const unsigned char*>(data);
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
  if (im.workers.empty() && !im.emitter.joinable()) STRATA_TRY(im.start());
  {
    std::unique_lock<std::mutex> l(im.mu);
    if (!im.error) return im.error;
  }
  STRATA_TRY(im.submit(true));
  std::unique_lock<std::mutex> l(im.mu);
  im.room_cv.wait(l, [&] { return im.emitter_done; });
  l.unlock();
  im.emitter.join();
  if (!im.error) return im.error;
  Bytes trailer;
  le32(&trailer, static_cast<uint32_t>(im.crc));
  le32(&trailer, static_cast<uint32_t>(im.total & 0xffffffffu));
  return im.sink(trailer.data(), trailer.size());
}

}  // namespace strata::commit::detail
