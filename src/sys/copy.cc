// SPDX-License-Identifier: Apache-2.0
// Data copy for copy-up: reflink when the filesystem can, else an in-kernel copy that keeps holes, else
// read/write.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "strata/sys/fs.h"

namespace strata::sys {
namespace {

// Copies go in chunks. When the copy is to be fsynced, each finished chunk is handed to writeback by a helper
// thread: sync_file_range(SYNC_FILE_RANGE_WRITE) is only a hint, but it submits the I/O itself and blocks while
// the device queue is full (10 ms per 32 MiB chunk here, as long as the copy of the chunk), so called inline it
// would add the disk time to the copy instead of overlapping it.
constexpr off_t kChunk = 32 << 20;
constexpr off_t kPushMin = 2 * kChunk;  // smaller copies: the fsync alone, no thread

class WritebackPusher {
 public:
  explicit WritebackPusher(int fd) : fd_(fd) {
    try {
      th_ = std::thread([this] { loop(); });
    } catch (const std::system_error&) {  // no thread: the fsync does all the writing
    }
  }
  ~WritebackPusher() {
    {
      std::lock_guard lk(m_);
      done_ = true;
    }
    cv_.notify_one();
    if (th_.joinable()) th_.join();
  }
  WritebackPusher(const WritebackPusher&) = delete;
  WritebackPusher& operator=(const WritebackPusher&) = delete;

  void push(off_t off, off_t len) {
    if (!th_.joinable()) return;
    {
      std::lock_guard lk(m_);
      if (!ranges_.empty() && ranges_.back().first + ranges_.back().second == off)
        ranges_.back().second += len;
      else
        ranges_.emplace_back(off, len);
    }
    cv_.notify_one();
  }

 private:
  void loop() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return done_ || !ranges_.empty(); });
      if (ranges_.empty()) return;  // done
      auto [off, len] = ranges_.front();
      ranges_.pop_front();
      lk.unlock();
      (void)::sync_file_range(fd_, off, len, SYNC_FILE_RANGE_WRITE);  // a hint; the fsync guarantees
      lk.lock();
    }
  }

  int fd_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::pair<off_t, off_t>> ranges_;
  bool done_ = false;
  std::thread th_;
};

void push_writeback(WritebackPusher* wb, off_t off, off_t len) {
  if (wb) wb->push(off, len);
}

Status copy_range_rw(int in, int out, off_t off, off_t end, WritebackPusher* wb) {
  std::vector<char> buf(1 << 20);
  while (off < end) {
    size_t want = static_cast<size_t>(std::min<off_t>(end - off, static_cast<off_t>(buf.size())));
    ssize_t n = ::pread(in, buf.data(), want, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error("pread");
    }
    if (n == 0) break;  // the source shrank: copy what there is
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::pwrite(out, buf.data() + done, static_cast<size_t>(n - done), off + done);
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno_error("pwrite");
      }
      done += w;
    }
    push_writeback(wb, off, n);
    off += n;
  }
  return {};
}

// Returns false (and no error) when copy_file_range is not usable between these files.
Result<bool> copy_range_kernel(int in, int out, off_t off, off_t end, WritebackPusher* wb) {
  while (off < end) {
    loff_t ioff = off, ooff = off;
    size_t want = static_cast<size_t>(std::min<off_t>(end - off, kChunk));
    ssize_t n = ::copy_file_range(in, &ioff, out, &ooff, want, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) return false;
      return errno_error("copy_file_range");
    }
    if (n == 0) break;
    push_writeback(wb, off, n);
    off += n;
  }
  return true;
}

}  // namespace

Status copy_data(int in, int out, off_t size, bool will_fsync) {
  if (size == 0) return {};
  if (::ioctl(out, FICLONE, in) == 0) return {};
  std::optional<WritebackPusher> wb;
  if (will_fsync && size >= kPushMin) wb.emplace(out);
  bool kernel_copy = true;
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      data = pos;                 // SEEK_DATA unsupported: treat all as data
    }
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0 || hole > size) hole = size;
    if (data >= size) break;
    if (kernel_copy) {
      auto r = copy_range_kernel(in, out, data, hole, wb ? &*wb : nullptr);
      if (!r) return r.take_error();
      kernel_copy = *r;
    }
    if (!kernel_copy) STRATA_TRY(copy_range_rw(in, out, data, hole, wb ? &*wb : nullptr));
    pos = hole;
  }
  // Trailing hole: extend the size without writing data.
  if (::ftruncate(out, size) < 0) return errno_error("ftruncate");
  return {};
}

}  // namespace strata::sys
