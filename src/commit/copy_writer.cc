// SPDX-License-Identifier: Apache-2.0
#include "copy_writer.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "strata/archive/entry_path.h"
#include "strata/base/aligned_buffer.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::commit::detail {

namespace {
struct Job {
  int fd = -1;
  UniqueFd owned;       // sync_close: fsync, then close
  char* buf = nullptr;  // a write
  size_t n = 0;
  off_t off = 0;
  bool direct = false;
  std::string name;
};
}  // namespace

struct CopyWriter::Impl {
  std::vector<AlignedBuffer> buffers;
  std::mutex mu;
  std::condition_variable work_cv;  // writer: a job, or stop
  std::condition_variable done_cv;  // caller: a buffer free, the queue empty, or an error
  std::vector<char*> free;
  std::deque<Job> queue;
  bool busy = false;  // the writer holds a job
  bool stop = false;
  Status error;
  std::thread thread;

  void run() {
    bool direct = false;  // the current file's O_DIRECT state
    std::unique_lock<std::mutex> l(mu);
    while (true) {
      work_cv.wait(l, [&] { return stop || !queue.empty(); });
      if (stop) return;
      Job j = std::move(queue.front());
      queue.pop_front();
      bool ok = static_cast<bool>(error);
      busy = true;
      l.unlock();
      Status s;
      if (ok && j.owned.valid()) {
        if (auto f = sys::fsync_fd(j.owned.get(), false); !f)
          s = make_error(f.error().err, "commit",
                         archive::quote_name(j.name) + ": syncing the layer copy");
      } else if (ok) {
        if (j.off == 0) direct = j.direct;
        if (auto w = sys::pwrite_maybe_direct(j.fd, j.buf, j.n, j.off, &direct); !w)
          s = make_error(w.error().err, "commit",
                         archive::quote_name(j.name) + ": writing the layer copy");
      }
      j.owned.reset();
      l.lock();
      busy = false;
      if (j.buf) free.push_back(j.buf);
      if (!s && error) error = std::move(s);
      done_cv.notify_all();
    }
  }
};

Result<std::unique_ptr<CopyWriter>> CopyWriter::start() {
  std::unique_ptr<CopyWriter> w(new CopyWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  for (int i = 0; i < kBuffers; ++i) {
    im.buffers.push_back(AlignedBuffer::make(kChunk, sys::kDirectIoAlign));
    if (!im.buffers.back().valid()) return make_error(ENOMEM, "commit", "copy buffers");
    im.free.push_back(im.buffers.back().data());
  }
  try {
    im.thread = std::thread([p = &im] { p->run(); });
  } catch (const std::system_error&) {
    return make_error(EAGAIN, "commit", "starting the layer copy thread");
  }
  return w;
}

CopyWriter::~CopyWriter() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<char*> CopyWriter::acquire() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> l(im.mu);
  im.done_cv.wait(l, [&] { return !im.error || !im.free.empty(); });
  if (!im.error) return im.error.error();
  char* b = im.free.back();
  im.free.pop_back();
  return b;
}

void CopyWriter::release(char* buf) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->free.push_back(buf);
}

Status CopyWriter::submit(int fd, char* buf, size_t n, off_t off, bool direct,
                          const std::string& name) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> l(im.mu);
    if (!im.error) {
      im.free.push_back(buf);
      return im.error;
    }
    Job j;
    j.fd = fd;
    j.buf = buf;
    j.n = n;
    j.off = off;
    j.direct = direct;
    j.name = name;
    im.queue.push_back(std::move(j));
  }
  im.work_cv.notify_one();
  return {};
}

Status CopyWriter::sync_close(UniqueFd fd, const std::string& name) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> l(im.mu);
    if (!im.error) return im.error;
    Job j;
    j.owned = std::move(fd);
    j.name = name;
    im.queue.push_back(std::move(j));
  }
  im.work_cv.notify_one();
  return {};
}

Status CopyWriter::wait() {
  Impl& im = *impl_;
  std::unique_lock<std::mutex> l(im.mu);
  im.done_cv.wait(l, [&] { return !im.error || (im.queue.empty() && !im.busy); });
  return im.error;
}

}  // namespace strata::commit::detail
