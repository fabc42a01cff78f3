// SPDX-License-Identifier: Apache-2.0
// FUSE over io_uring under libfuse's custom I/O (see uring.h).
#include "uring.h"

#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/uio.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "strata/sys/io_uring.h"
#include "strata/sys/socket_io.h"
#include "uring_abi.h"

namespace strata::fuse {
namespace {

namespace abi = uring_abi;

// Numbers of the CPUs the kernel makes queues for (num_possible_cpus()), from "0-3,5" lists.
unsigned possible_cpus() {
  std::ifstream f("/sys/devices/system/cpu/possible");
  std::string s;
  if (!std::getline(f, s)) return 0;
  unsigned n = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    unsigned a = 0, b = 0;
    if (std::sscanf(part.c_str(), "%u-%u", &a, &b) == 2 && b >= a) n += b - a + 1;
    else if (std::sscanf(part.c_str(), "%u", &a) == 1) n += 1;
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return n;
}

// Room before the payload for the request's fuse_in_header and fixed argument, so that the request can be laid
// out contiguously in front of the payload without moving the payload.
constexpr size_t kHeadroom = 4096;

struct Worker;
thread_local Worker* tl_worker = nullptr;
// On /dev/fuse threads: the INIT request being answered, and whether the kernel offered io_uring in it.
thread_local uint64_t tl_init_unique = 0;
thread_local bool tl_init_offered = false;

}  // namespace

struct UringTransport::Impl {
  fuse_session* se = nullptr;
  int fuse_fd = -1;
  UringOptions opts;
  size_t payload_size = 0;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  std::mutex m;
  std::condition_variable cv;
  enum class Go { kWait, kRun, kStop };
  Go go = Go::kWait;
  unsigned rings_ok = 0, rings_failed = 0;  // rings set up by their threads (under m)
  std::atomic<bool> stopping{false};
  UniqueFd stop_fd;  // signalled with `stopping`: every ring has a poll on it, so its thread wakes and leaves
  std::atomic<unsigned> registered{0};
  std::atomic<unsigned> failed{0};
  bool prepared = false;

  bool prepare(size_t payload);  // rings, buffers and (waiting) threads for every queue; false: no io_uring
  void release(Go g);
  ssize_t write_init_reply(int fd, iovec* iov, int count);
};

namespace {

struct Worker {
  UringTransport::Impl* t = nullptr;
  unsigned qid = 0;
  sys::SqeRing ring;
  abi::ReqHeader* hdr = nullptr;
  char* buf = nullptr;  // kHeadroom + payload
  size_t payload_cap = 0;
  iovec reg[2]{};
  uint64_t unique = 0;
  bool in_request = false;
  bool replied = false;

  ~Worker() {
    std::free(hdr);
    std::free(buf);
  }
  char* payload() { return buf + kHeadroom; }

  Status init(UringTransport::Impl* owner, unsigned q, size_t payload_size) {
    t = owner;
    qid = q;
    payload_cap = payload_size;
    hdr = static_cast<abi::ReqHeader*>(std::aligned_alloc(4096, 4096));
    buf = static_cast<char*>(std::aligned_alloc(4096, kHeadroom + ((payload_size + 4095) & ~size_t{4095})));
    if (!hdr || !buf) return make_error(ENOMEM, "io_uring", "ring buffers");
    std::memset(hdr, 0, sizeof *hdr);
    reg[0] = {hdr, sizeof *hdr};
    reg[1] = {payload(), payload_cap};
    return {};
  }

  static constexpr uint64_t kStopTag = ~0ull;  // user_data of the poll on the transport's stop event

  void queue_stop_poll() {
    io_uring_sqe* sqe = ring.prepare();
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = t->stop_fd.get();
    sqe->poll32_events = POLLIN;
    sqe->user_data = kStopTag;
    ring.push();
  }

  void queue_cmd(uint32_t op, uint64_t commit_id) {
    io_uring_sqe* sqe = ring.prepare();
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = t->fuse_fd;
    sqe->cmd_op = op;
    if (op == abi::kRegister) {
      sqe->addr = reinterpret_cast<uint64_t>(reg);
      sqe->len = 2;
    }
    sqe->user_data = op;
    abi::CmdReq req{};
    req.commit_id = commit_id;
    req.qid = static_cast<uint16_t>(qid);
    std::memcpy(reinterpret_cast<char*>(sqe) + abi::kSqeCmdOffset, &req, sizeof req);
    ring.push();
  }

  // The reply libfuse writes while this thread processes the entry's request.
  ssize_t take_reply(const iovec* iov, int count) {
    if (count < 1 || iov[0].iov_len != sizeof(fuse_out_header)) {
      errno = EINVAL;
      return -1;
    }
    size_t off = 0;
    for (int i = 1; i < count; i++) {
      if (iov[i].iov_len > payload_cap - off) {
        log::error("io_uring: a reply of more than %zu bytes", payload_cap);
        errno = EINVAL;
        return -1;
      }
      if (iov[i].iov_base != payload() + off)  // built in place (uring_reply_buffer)
        std::memcpy(payload() + off, iov[i].iov_base, iov[i].iov_len);
      off += iov[i].iov_len;
    }
    std::memset(hdr->in_out, 0, sizeof hdr->in_out);
    std::memcpy(hdr->in_out, iov[0].iov_base, sizeof(fuse_out_header));
    hdr->ent_in_out.payload_sz = static_cast<uint32_t>(off);
    replied = true;
    return static_cast<ssize_t>(off + sizeof(fuse_out_header));
  }

  void reply_error(int err) {
    fuse_out_header oh{};
    oh.len = sizeof oh;
    oh.error = -err;
    oh.unique = unique;
    iovec iov{&oh, sizeof oh};
    take_reply(&iov, 1);
  }

  void handle_request() {
    fuse_in_header in;
    std::memcpy(&in, hdr->in_out, sizeof in);
    uint32_t psz = hdr->ent_in_out.payload_sz;
    unique = in.unique;
    replied = false;
    if (in.len < sizeof in + psz || psz > payload_cap || in.len - sizeof in - psz > sizeof hdr->op_in) {
      log::error("io_uring: malformed request (opcode %u, length %u, payload %u)", in.opcode, in.len, psz);
      reply_error(EIO);
      return;
    }
    size_t op = in.len - sizeof in - psz;
    char* start = payload() - op - sizeof in;
    std::memcpy(start, &in, sizeof in);
    std::memcpy(start + sizeof in, hdr->op_in, op);
    fuse_buf fb{};
    fb.size = in.len;
    fb.mem = start;
    in_request = true;
    fuse_session_process_buf(t->se, &fb);
    in_request = false;
    if (!replied) reply_error(EIO);  // every request on a ring gets an answer, or the entry is lost
  }

  void run() {
    tl_worker = this;
    if (qid < CPU_SETSIZE) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(qid, &set);
      (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // an offline CPU: run anywhere
    }
    // The ring is made here: a single-issuer ring belongs to the thread that makes it. INIT's reply waits
    // for every ring (a queue that never registers would hold every request).
    Status st = ring.setup(4);
    if (!st) log::warning("io_uring: %s; using /dev/fuse", st.error().message().c_str());
    {
      std::unique_lock lk(t->m);
      (st ? t->rings_ok : t->rings_failed)++;
      t->cv.notify_all();
      t->cv.wait(lk, [&] { return t->go != UringTransport::Impl::Go::kWait; });
      if (t->go != UringTransport::Impl::Go::kRun) return;
    }
    queue_cmd(abi::kRegister, 0);
    queue_stop_poll();
    bool registered = false;
    // No timeout: the kernel ends the commands at unmount, and the stop event wakes the thread otherwise.
    while (!t->stopping.load(std::memory_order_relaxed)) {
      if (!ring.submit_and_wait(-1)) {
        log::error("io_uring_enter: %s", std::strerror(errno));
        break;
      }
      io_uring_cqe cqe;
      if (!ring.pop(&cqe)) continue;
      if (cqe.user_data == kStopTag) break;
      if (cqe.res < 0) {
        bool teardown = cqe.res == -ENOTCONN || cqe.res == -ECONNABORTED || cqe.res == -ENODEV;
        if (!registered && !teardown) {
          if (t->failed.fetch_add(1) == 0)
            log::warning("io_uring: queue %u not registered (%s); requests go through /dev/fuse", qid,
                         std::strerror(-cqe.res));
        }
        break;  // ENOTCONN and friends: the connection is going away
      }
      if (!registered) {
        registered = true;
        t->registered.fetch_add(1);
      }
      try {
        handle_request();
      } catch (...) {  // process_buf catches in the callbacks; this is the last line
        log::error("io_uring: unexpected exception");
        if (!replied) reply_error(EIO);
        in_request = false;
      }
      queue_cmd(abi::kCommitAndFetch, hdr->ent_in_out.commit_id);
    }
  }
};

ssize_t custom_read(int fd, void* buf, size_t len, void*) {
  ssize_t n = ::read(fd, buf, len);
  if (n >= static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in))) {
    const auto* in = static_cast<const fuse_in_header*>(buf);
    if (in->opcode == abi::kOpInit) {
      fuse_init_in ii;
      std::memcpy(&ii, in + 1, sizeof ii);
      tl_init_unique = in->unique;
      tl_init_offered = (ii.flags & abi::kInitExt) && (ii.flags2 & abi::kOverIoUringFlags2);
    }
  }
  return n;
}

std::atomic<UringTransport::Impl*> g_transport{nullptr};

ssize_t custom_writev(int fd, iovec* iov, int count, void*) {
  Worker* w = tl_worker;
  if (w && w->in_request && count >= 1 && iov[0].iov_len == sizeof(fuse_out_header) &&
      static_cast<const fuse_out_header*>(iov[0].iov_base)->unique == w->unique)
    return w->take_reply(iov, count);
  if (tl_init_unique != 0 && count >= 2 && iov[0].iov_len == sizeof(fuse_out_header) &&
      static_cast<const fuse_out_header*>(iov[0].iov_base)->unique == tl_init_unique) {
    tl_init_unique = 0;
    UringTransport::Impl* t = g_transport.load();
    if (t && tl_init_offered) return t->write_init_reply(fd, iov, count);
    if (t)
      log::warning("io_uring: the kernel does not offer FUSE over io_uring (Linux 6.14+ with the fuse module "
                   "parameter enable_uring=Y); using /dev/fuse");
  }
  return ::writev(fd, iov, count);
}

}  // namespace

char* uring_reply_buffer(size_t size) {
  Worker* w = tl_worker;
  if (!w || !w->in_request || size > w->payload_cap) return nullptr;
  return w->payload();
}

bool UringTransport::Impl::prepare(size_t payload) {
  unsigned n = possible_cpus();
  if (n == 0 || n > 4096) {
    log::warning("io_uring: cannot read the possible CPUs; using /dev/fuse");
    return false;
  }
  payload_size = payload;
  for (unsigned q = 0; q < n; q++) {
    for (unsigned i = 0; i < std::max(1u, opts.threads_per_cpu); i++) {
      auto w = std::make_unique<Worker>();
      auto st = w->init(this, q, payload_size);
      if (!st) {
        log::warning("io_uring: %s; using /dev/fuse", st.error().message().c_str());
        return false;
      }
      workers.push_back(std::move(w));
    }
  }
  try {
    for (auto& w : workers) threads.emplace_back([p = w.get()] { p->run(); });
  } catch (const std::system_error& e) {
    log::warning("io_uring: cannot start ring threads (%s); using /dev/fuse", e.what());
    return false;
  }
  std::unique_lock lk(m);
  cv.wait(lk, [&] { return rings_ok + rings_failed == workers.size(); });
  return rings_failed == 0;
}

void UringTransport::Impl::release(Go g) {
  {
    std::lock_guard lk(m);
    go = g;
  }
  cv.notify_all();
}

ssize_t UringTransport::Impl::write_init_reply(int fd, iovec* iov, int count) {
  const auto* oh = static_cast<const fuse_out_header*>(iov[0].iov_base);
  if (oh->error != 0 || iov[1].iov_len < offsetof(fuse_init_out, unused) || prepared)
    return ::writev(fd, iov, count);
  prepared = true;
  fuse_init_out out{};
  std::memcpy(&out, iov[1].iov_base, std::min(sizeof out, iov[1].iov_len));
  // The kernel wants each entry's payload to hold the largest request or reply (fuse_uring_create).
  size_t payload = std::max<size_t>({8192, out.max_write, size_t{out.max_pages} * static_cast<size_t>(::sysconf(_SC_PAGESIZE))});
  if (!prepare(payload)) {
    release(Go::kStop);
    return ::writev(fd, iov, count);
  }
  out.flags |= abi::kInitExt;
  out.flags2 |= abi::kOverIoUringFlags2;
  std::vector<iovec> v(iov, iov + count);
  std::vector<char> patched(static_cast<char*>(iov[1].iov_base),
                            static_cast<char*>(iov[1].iov_base) + iov[1].iov_len);
  std::memcpy(patched.data(), &out, std::min(sizeof out, patched.size()));
  v[1].iov_base = patched.data();
  ssize_t r = ::writev(fd, v.data(), count);
  // The kernel has processed INIT (fc->initialized) once the write returns: the rings may register now.
  release(r >= 0 ? Go::kRun : Go::kStop);
  return r;
}

UringTransport::UringTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

UringTransport::~UringTransport() {
  impl_->stopping = true;
  if (impl_->stop_fd) (void)sys::signal_event(impl_->stop_fd.get());
  impl_->release(Impl::Go::kStop);
  for (auto& th : impl_->threads) th.join();
  g_transport.store(nullptr);
}

bool UringTransport::active() const {
  return impl_->registered.load() > 0 && impl_->failed.load() == 0;
}

std::unique_ptr<UringTransport> UringTransport::install(fuse_session* se, const UringOptions& opts) {
  auto impl = std::make_unique<Impl>();
  impl->se = se;
  impl->fuse_fd = fuse_session_fd(se);
  impl->opts = opts;
  auto stop = sys::stop_event();
  if (!stop) {
    log::warning("io_uring: %s; using /dev/fuse", stop.error().message().c_str());
    return nullptr;
  }
  impl->stop_fd = std::move(*stop);
  fuse_custom_io io{};
  io.read = custom_read;
  io.writev = custom_writev;
  int r = fuse_session_custom_io(se, &io, impl->fuse_fd);
  if (r != 0) {
    log::warning("io_uring: libfuse refused custom I/O (%s); using /dev/fuse", std::strerror(-r));
    return nullptr;
  }
  g_transport.store(impl.get());
  return std::unique_ptr<UringTransport>(new UringTransport(std::move(impl)));
}

}  // namespace strata::fuse
