// SPDX-License-Identifier: Apache-2.0
#include "strata/store/blob_writer.h"

#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "strata/store/layout.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::store {

namespace {
constexpr size_t kGather = 4u << 20;
}

Result<BlobWriter> BlobWriter::begin(const Store& store) {
  BlobWriter w;
  w.dirs_ = store.dirs();
  // The store's temporary naming (owner pid inside), so cleanup_stale() removes it after a crash.
  std::string name = detail::temp_name("blob");
  auto fd = sys::open_at(w.dirs_->ingest.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (!fd) return make_error(fd.error().err, "create blob", "ingest/" + name);
  w.name_ = std::move(name);
  w.fd_ = std::move(*fd);
  w.hash_ = std::make_unique<Sha256>();
  w.buf_ = AlignedBuffer::make(kGather, sys::kDirectIoAlign);
  if (!w.buf_.valid()) return make_error(ENOMEM, "create blob", "a write buffer");
  // Refused (EINVAL) on filesystems without direct I/O: the page cache it is.
  w.direct_ = sys::set_direct_io(w.fd_.get(), true).has_value();
  return w;
}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : dirs_(std::move(o.dirs_)),
      name_(std::exchange(o.name_, std::string())),
      fd_(std::move(o.fd_)),
      hash_(std::move(o.hash_)),
      digest_(std::move(o.digest_)),
      size_(o.size_),
      buf_(std::move(o.buf_)),
      fill_(std::exchange(o.fill_, 0)),
      direct_(o.direct_),
      failed_(o.failed_),
      finished_(o.finished_) {}

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    discard();
    dirs_ = std::move(o.dirs_);
    name_ = std::exchange(o.name_, std::string());
    fd_ = std::move(o.fd_);
    hash_ = std::move(o.hash_);
    digest_ = std::move(o.digest_);
    size_ = o.size_;
    buf_ = std::move(o.buf_);
    fill_ = std::exchange(o.fill_, 0);
    direct_ = o.direct_;
    failed_ = o.failed_;
    finished_ = o.finished_;
  }
  return *this;
}

BlobWriter::~BlobWriter() {
  discard();
}

void BlobWriter::discard() {
  fd_.reset();
  if (dirs_ && !name_.empty()) {
    // Best effort: a leftover carries our pid and cleanup_stale() removes it once we are gone.
    (void)sys::unlink_at(dirs_->ingest.get(), name_.c_str(), 0);
  }
  name_.clear();
}

Status BlobWriter::write(const void* data, size_t size) {
  if (failed_)
    return make_error(failed_, "write blob", "ingest/" + name_ + ": an earlier write failed");
  if (finished_ || !fd_.valid()) return make_error(EINVAL, "write blob", "the blob is finished");
  hash_->update(data, size);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t n = std::min(size, buf_.size() - fill_);
    std::memcpy(buf_.data() + fill_, p, n);
    fill_ += n;
    size_ += n;
    p += n;
    size -= n;
    if (fill_ == buf_.size()) STRATA_TRY(flush());
  }
  return {};
}

Status BlobWriter::flush() {
  if (fill_ == 0) return {};
  off_t at = static_cast<off_t>(size_ - fill_);
  if (auto w = sys::pwrite_maybe_direct(fd_.get(), buf_.data(), fill_, at, &direct_); !w) {
    failed_ = w.error().err ? w.error().err : EIO;
    return make_error(failed_, "write blob", "ingest/" + name_);
  }
  fill_ = 0;
  return {};
}

Result<Digest> BlobWriter::finish() {
  if (failed_)
    return make_error(failed_, "finish blob", "ingest/" + name_ + ": an earlier write failed");
  if (finished_) return digest_;
  if (!fd_.valid()) return make_error(EINVAL, "finish blob", "discarded");
  STRATA_TRY(flush());
  if (auto s = sys::fsync_fd(fd_.get(), true); !s) {
    failed_ = s.error().err ? s.error().err : EIO;
    return make_error(failed_, "fsync blob", "ingest/" + name_);
  }
  STRATA_ASSIGN_OR_RETURN(d, hash_->finish());
  digest_ = std::move(d);
  finished_ = true;
  return digest_;
}

Status BlobWriter::publish() {
  if (!finished_) return make_error(EINVAL, "publish blob", "not finished");
  if (name_.empty()) return make_error(EINVAL, "publish blob", "already published or discarded");
  int ingestfd = dirs_->ingest.get();
  int blobsfd = dirs_->blobs.get();
  auto r = sys::rename_at(ingestfd, name_.c_str(), blobsfd, digest_.hex.c_str(), RENAME_NOREPLACE);
  if (!r && r.error().err == EINVAL) {
    // No RENAME_NOREPLACE on this filesystem: link(2) never replaces either.
    r = sys::link_at(ingestfd, name_.c_str(), blobsfd, digest_.hex.c_str());
    if (r || r.error().err == EEXIST) {
      (void)sys::unlink_at(ingestfd, name_.c_str(),
                           0);  // linked or redundant; cleanup_stale retries
      if (r) r = Status{};
    }
  }
  if (!r && r.error().err != EEXIST)
    return make_error(r.error().err, "publish blob", digest_.to_string());
  if (!r) discard();  // an identical blob is there already
  name_.clear();
  fd_.reset();
  return detail::fsync_dir(blobsfd);
}

}  // namespace strata::store
