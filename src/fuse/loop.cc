// SPDX-License-Identifier: Apache-2.0
#include "loop.h"

#include "walk_affinity.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace strata::fuse {
namespace {

struct Loop;

struct Worker {
  Loop* loop = nullptr;
  pthread_t tid{};
  bool reader = false;          // holds one of the `readers` slots (only its own thread touches this)
  fuse_buf buf{};               // libfuse allocates the memory on first use; freed after the join
  std::condition_variable cv;   // signalled to unpark this worker
  bool woken = false;
};

struct Loop {
  fuse_session* se = nullptr;
  LoopOptions opts;
  std::mutex mu;
  std::list<std::unique_ptr<Worker>> workers;  // every live worker (joined at the end)
  std::vector<Worker*> parked;                 // LIFO: the most recently active worker is woken first
  std::atomic<unsigned> readers{0};            // slots held: workers waiting on the device (or about to)
  std::atomic<bool> ending{false};
  int error = 0;
  sem_t wake;  // the thread in run_loop: posted at the end, and to arm a deferred stand-in (see below)
  // A stand-in deferred (defers_stand_in): the CLOCK_MONOTONIC time (ns) at which the thread in run_loop
  // starts one if no worker waits on the device by then; 0: none due.
  std::atomic<int64_t> stand_in_due{0};
  std::atomic<bool> main_idle{false};  // that thread waits without a deadline: arming must post `wake`

  // With `mu` held: a worker must wait on the device, because none is left there.
  void add_reader_locked();
  // Take a slot if fewer than max_readers are held (lock-free: the hot path takes no lock).
  bool take_slot() {
    unsigned cur = readers.load(std::memory_order_relaxed);
    while (cur < opts.max_readers)
      if (readers.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) return true;
    return false;
  }
  void end_locked(int err) {
    if (ending) return;
    ending = true;
    error = err;
    for (Worker* w : parked) {
      w->woken = true;
      w->cv.notify_one();
    }
    parked.clear();
    sem_post(&wake);
  }
  // No worker waits on the device after a take: a stand-in must, now or (defer) after kStandInDelayNs.
  void need_stand_in(bool defer);
};

// READ is deferred: served from the page cache of the lower file it takes microseconds, and on 2 CPUs a
// third worker only competes with the two busy ones and the reader they serve (cached sequential read:
// 0.46 s with stand-ins at once, 0.42 s without). A READ that will wait for the disk says so first
// (about_to_block) and gets its stand-in at once; otherwise, past this delay, the thread in run_loop
// starts one.
constexpr int64_t kStandInDelayNs = 2 * 1000 * 1000;

int64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

bool defers_stand_in(const fuse_buf& buf) {
  if (buf.flags & FUSE_BUF_IS_FD) return false;
  return buf.size >= sizeof(fuse_in_header) && static_cast<const fuse_in_header*>(buf.mem)->opcode == FUSE_READ;
}

void Loop::need_stand_in(bool defer) {
  if (!defer) {
    std::lock_guard lk(mu);
    if (!ending) add_reader_locked();
    return;
  }
  int64_t none = 0;
  if (stand_in_due.compare_exchange_strong(none, now_ns() + kStandInDelayNs) && main_idle.load())
    sem_post(&wake);
}

// Requests the kernel sends without waiting for them (FORGET, RELEASE, ...) and that are answered in
// microseconds: the worker keeps its slot and no stand-in is woken for them, so the FORGET after every unlink
// or the RELEASE after every close wakes nobody else.
bool is_quick_async(const fuse_buf& buf) {
  if (buf.flags & FUSE_BUF_IS_FD) return false;  // spliced: large, so not one of these
  if (buf.size < sizeof(fuse_in_header)) return false;
  switch (static_cast<const fuse_in_header*>(buf.mem)->opcode) {
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR:
    case FUSE_INTERRUPT:
      return true;
    default:
      return false;
  }
}

void* worker_main(void* arg);

// Sent to workers at the end: its handler does nothing, but a wait on the device returns EINTR (no SA_RESTART).
// Workers are not cancelled: unwinding a cancelled thread skips the sanitizers' bookkeeping of its stack.
int wake_signal() { return SIGRTMIN + 3; }
void on_wake_signal(int) {}

thread_local Worker* tl_worker = nullptr;
thread_local bool tl_deferred = false;  // this worker's take left no one on the device; the stand-in waits

// A worker that has sent its reply is back on the device within microseconds: count it as waiting there
// already. Otherwise the caller's next request, sent as soon as the reply wakes it, finds the other reader
// busy and no one waiting, and wakes a stand-in for nothing (measured: a stand-in per few requests of rm -rf).
void replied() {
  tl_deferred = false;
  Worker* w = tl_worker;
  if (!w || w->reader) return;  // not a loop worker (an io_uring ring thread), or already counted
  w->reader = w->loop->take_slot();
}

}  // namespace

bool stand_in_deferred() { return tl_deferred; }

void about_to_block() {
  if (!tl_deferred) return;
  tl_deferred = false;
  Worker* w = tl_worker;
  if (w && w->loop->readers.load() == 0) w->loop->need_stand_in(false);
}

namespace {

ssize_t io_read(int fd, void* buf, size_t len, void*) { return ::read(fd, buf, len); }

ssize_t io_writev(int fd, iovec* iov, int count, void*) {
  ssize_t r = ::writev(fd, iov, count);
  replied();
  return r;
}

ssize_t io_splice_receive(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

ssize_t io_splice_send(int fdin, off_t* offin, int fdout, off_t* offout, size_t len, unsigned flags, void*) {
  ssize_t r = ::splice(fdin, offin, fdout, offout, len, flags);
  replied();
  return r;
}

void Loop::add_reader_locked() {
  if (!parked.empty()) {
    Worker* w = parked.back();
    parked.pop_back();
    w->woken = true;
    w->cv.notify_one();
    return;
  }
  if (workers.size() >= opts.max_threads) return;  // all busy: requests wait in the kernel's queue
  auto w = std::make_unique<Worker>();
  w->loop = this;
  // Workers take no signals: the thread in run_loop does (libfuse's handlers end the session).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&w->tid, nullptr, worker_main, w.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    log::warning("cannot start a FUSE worker thread: %s", std::strerror(rc));
    return;
  }
  workers.push_back(std::move(w));
}

void* worker_main(void* arg) {
  auto* self = static_cast<Worker*>(arg);
  Loop* l = self->loop;
  tl_worker = self;
  pthread_setname_np(pthread_self(), "stratafs-fuse");  // for top -H, and the tests count workers by it
  // The one signal a worker takes: it ends a wait on the device at the end (see run_loop).
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, wake_signal());
  pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
  bool& reader = self->reader;
  std::optional<WorkerPlacement> placement;
  if (l->opts.follow_walks) {
    placement.emplace();
    if (!placement->usable()) placement.reset();
  }
  while (true) {
    // Wait on the device only where too few workers do; park otherwise (or leave when enough are parked).
    if (!reader) reader = l->take_slot();
    if (!reader) {
      std::unique_lock lk(l->mu);
      while (!l->ending && !(reader = l->take_slot())) {
        if (l->parked.size() >= l->opts.max_parked) {
          // Not needed: leave. Detached, so the end does not join it; its buffer goes with it.
          for (auto it = l->workers.begin(); it != l->workers.end(); ++it) {
            if (it->get() != self) continue;
            std::unique_ptr<Worker> me = std::move(*it);
            l->workers.erase(it);
            pthread_detach(me->tid);
            lk.unlock();
            std::free(me->buf.mem);
            return nullptr;
          }
        }
        self->woken = false;
        l->parked.push_back(self);
        self->cv.wait(lk, [&] { return self->woken; });
      }
    }
    if (l->ending) {
      if (reader) l->readers.fetch_sub(1);
      return nullptr;
    }
    int res = fuse_session_receive_buf(l->se, &self->buf);
    if (placement && res >= static_cast<int>(sizeof(fuse_in_header)) && !(self->buf.flags & FUSE_BUF_IS_FD)) {
      auto* h = static_cast<const fuse_in_header*>(self->buf.mem);
      placement->on_request(h->opcode, h->pid);
    }
    if (res > 0 && !fuse_session_exited(l->se) && is_quick_async(self->buf)) {
      fuse_session_process_buf(l->se, &self->buf);  // keeps its slot
      continue;
    }
    reader = false;
    if (l->readers.fetch_sub(1, std::memory_order_acq_rel) == 1 && res > 0 && !fuse_session_exited(l->se)) {
      tl_deferred = defers_stand_in(self->buf);  // nobody waits on the device now: a stand-in does
      l->need_stand_in(tl_deferred);
    }
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0 || fuse_session_exited(l->se)) {
      std::lock_guard lk(l->mu);
      l->end_locked(res < 0 ? -res : 0);
      return nullptr;
    }
    fuse_session_process_buf(l->se, &self->buf);
  }
}

}  // namespace

int run_loop(fuse_session* se, const LoopOptions& opts) {
  Loop l;
  l.se = se;
  l.opts = opts;
  l.opts.max_threads = std::max(1u, opts.max_threads);
  l.opts.max_readers = std::clamp(opts.max_readers, 1u, l.opts.max_threads);
  sem_init(&l.wake, 0, 0);
  struct sigaction sa {};
  sa.sa_handler = on_wake_signal;  // no SA_RESTART: the interrupted read returns EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(wake_signal(), &sa, nullptr);
  if (opts.own_io) {
    // Plain system calls, plus the reply hook above (splice kept: libfuse splices only through both hooks).
    fuse_custom_io io{};
    io.read = io_read;
    io.writev = io_writev;
    io.splice_receive = io_splice_receive;
    io.splice_send = io_splice_send;
    if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) != 0)
      log::warning("libfuse refused custom I/O: FUSE workers start stand-ins more often");
  }
  {
    std::lock_guard lk(l.mu);
    for (unsigned i = 0; i < l.opts.max_readers; ++i) l.add_reader_locked();
    if (l.workers.empty()) l.end_locked(EAGAIN);
  }
  // Signals land here (workers block them; sem_wait returns EINTR); libfuse's handlers mark the session
  // exited. Between those, this thread starts the deferred stand-ins that come due.
  while (!fuse_session_exited(se) && !l.ending) {
    int64_t due = l.stand_in_due.load();
    if (due == 0) {
      l.main_idle.store(true);
      if (l.stand_in_due.load() == 0 && !l.ending) sem_wait(&l.wake);  // a worker arming it posts
      l.main_idle.store(false);
      continue;
    }
    timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    int64_t left = due - now_ns();
    if (left > 0) {
      abs.tv_sec += left / 1000000000;
      abs.tv_nsec += left % 1000000000;
      if (abs.tv_nsec >= 1000000000) abs.tv_sec += 1, abs.tv_nsec -= 1000000000;
      sem_clockwait(&l.wake, CLOCK_MONOTONIC, &abs);
      continue;  // woken early (the end, a signal) or due now: looked at again
    }
    l.stand_in_due.store(0);
    if (l.readers.load() == 0) {
      std::lock_guard lk(l.mu);
      if (!l.ending) l.add_reader_locked();
    }
  }
  std::list<std::unique_ptr<Worker>> all;
  {
    std::lock_guard lk(l.mu);
    l.end_locked(0);
    all.swap(l.workers);
  }
  // Workers see `ending` when they come back from a request; one waiting on the device is interrupted by the
  // wake signal, sent again until it has left (it may have been just about to wait when the first arrived).
  for (auto& w : all) pthread_kill(w->tid, wake_signal());
  for (auto& w : all) {
    while (true) {
      timespec deadline;
      clock_gettime(CLOCK_REALTIME, &deadline);
      deadline.tv_nsec += 20 * 1000 * 1000;
      if (deadline.tv_nsec >= 1000000000) deadline.tv_sec += 1, deadline.tv_nsec -= 1000000000;
      int rc = pthread_timedjoin_np(w->tid, nullptr, &deadline);
      if (rc == 0) break;
      if (rc != ETIMEDOUT) {
        pthread_join(w->tid, nullptr);
        break;
      }
      pthread_kill(w->tid, wake_signal());
    }
    std::free(w->buf.mem);
  }
  sem_destroy(&l.wake);
  return l.error == 0 || l.error == ENODEV ? 0 : 1;
}

}  // namespace strata::fuse
