// SPDX-License-Identifier: Apache-2.0
// Data copy for copy-up: reflink when the filesystem can, else an in-kernel copy that keeps holes, else
// read/write.
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include <vector>

#include "strata/sys/fs.h"

namespace strata::sys {
namespace {

Status copy_range_rw(int in, int out, off_t off, off_t end) {
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
    off += n;
  }
  return {};
}

// Copies go in chunks, each handed to writeback as soon as it is written, so that the fsync that makes a
// copy-up durable finds most of the data on disk already (the copy and the disk writes overlap).
constexpr off_t kChunk = 32 << 20;

void start_writeback(int out, off_t off, off_t len) {
  // Only a hint to start I/O early; the caller's fsync is what guarantees durability.
  (void)::sync_file_range(out, off, len, SYNC_FILE_RANGE_WRITE);
}

// Returns false (and no error) when copy_file_range is not usable between these files.
Result<bool> copy_range_kernel(int in, int out, off_t off, off_t end) {
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
    start_writeback(out, off, n);
    off += n;
  }
  return true;
}

}  // namespace

Status copy_data(int in, int out, off_t size) {
  if (size == 0) return {};
  if (::ioctl(out, FICLONE, in) == 0) return {};
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
      auto r = copy_range_kernel(in, out, data, hole);
      if (!r) return r.take_error();
      kernel_copy = *r;
    }
    if (!kernel_copy) STRATA_TRY(copy_range_rw(in, out, data, hole));
    pos = hole;
  }
  // Trailing hole: extend the size without writing data.
  if (::ftruncate(out, size) < 0) return errno_error("ftruncate");
  return {};
}

}  // namespace strata::sys
