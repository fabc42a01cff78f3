// SPDX-License-Identifier: Apache-2.0
#include "strata/store/ingest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "strata/store/layout.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::store {

namespace {

std::string partial_name(const Digest& d) {
  return d.hex + ".partial";
}
std::string record_name(const Digest& d) {
  return d.hex + ".json";
}

// The durable offset a previous run recorded for this blob; 0 when there is no usable record.
uint64_t recorded_offset(int ingestfd, const Digest& d) {
  auto text = detail::read_file_at(ingestfd, record_name(d).c_str(), 65536);
  if (!text) return 0;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  auto dig = j.find("digest");
  auto off = j.find("offset");
  if (dig == j.end() || !dig->is_string() || *dig != d.to_string()) return 0;
  if (off == j.end() || !off->is_number_unsigned()) return 0;
  return off->get<uint64_t>();
}

}  // namespace

Result<Ingest> Ingest::begin(const Store& store, const Digest& digest,
                             std::optional<uint64_t> expected_size, bool wait) {
  STRATA_TRY(detail::check_digest(digest, "ingest"));
  Ingest in;
  in.dirs_ = store.dirs();
  in.digest_ = digest;
  in.expected_size_ = expected_size;
  int ingestfd = in.dirs_->ingest.get();
  const std::string pname = partial_name(digest);
  // Lock, then check the locked file is still the one at that name: the previous owner may have
  // renamed it into blobs/ (committed) or unlinked it (aborted) while we waited.
  for (int attempt = 0;; ++attempt) {
    if (attempt == 1000)
      return make_error(EAGAIN, "ingest", digest.to_string() + ": partial keeps changing");
    if (store.has_blob(digest)) {
      in.complete_ = true;
      in.finished_ = true;
      return in;
    }
    auto fd = sys::open_at(ingestfd, pname.c_str(), O_RDWR | O_APPEND | O_CREAT, 0644);
    if (!fd) return fd.take_error();
    auto l = sys::flock_fd(fd->get(), LOCK_EX | (wait ? 0 : LOCK_NB));
    if (!l) {
      if (l.error().err == EWOULDBLOCK)
        return make_error(EWOULDBLOCK, "ingest",
                          digest.to_string() + ": being written by another strata");
      return l.take_error();
    }
    auto st_fd = sys::stat_fd(fd->get());
    if (!st_fd) return st_fd.take_error();
    auto st_path = sys::stat_at(ingestfd, pname.c_str());
    if (!st_path) {
      if (st_path.error().err == ENOENT) continue;
      return st_path.take_error();
    }
    if (st_path->st_ino != st_fd->st_ino || st_path->st_dev != st_fd->st_dev) continue;
    if (store.has_blob(digest)) {
      // Committed between our first check and our open, which then created a fresh partial: drop
      // it.
      (void)sys::unlink_at(ingestfd, pname.c_str(), 0);  // we hold its lock; cleanup_stale retries
      (void)sys::unlink_at(ingestfd, record_name(digest).c_str(), 0);
      in.complete_ = true;
      in.finished_ = true;
      return in;
    }
    in.fd_ = std::move(*fd);
    uint64_t have = static_cast<uint64_t>(st_fd->st_size);
    in.offset_ = std::min(have, recorded_offset(ingestfd, digest));
    if (expected_size && in.offset_ > *expected_size) in.offset_ = 0;
    break;
  }
  // Bytes past the recorded offset may not have reached the disk before a crash: drop them.
  STRATA_TRY(sys::truncate_fd(in.fd_.get(), static_cast<off_t>(in.offset_)));
  in.hash_ = std::make_unique<Sha256>();
  std::vector<char> buf(1u << 20);
  uint64_t pos = 0;
  while (pos < in.offset_) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), in.offset_ - pos));
    auto n = sys::pread_some(in.fd_.get(), buf.data(), want, static_cast<off_t>(pos));
    if (!n) return n.take_error();
    if (*n == 0)
      return make_error(EIO, "ingest resume",
                        digest.to_string() + ": partial shrank while re-hashing");
    in.hash_->update(buf.data(), *n);
    pos += *n;
  }
  in.checkpointed_ = in.offset_;
  return in;
}

Ingest::Ingest(Ingest&& o) noexcept
    : dirs_(std::move(o.dirs_)),
      digest_(std::move(o.digest_)),
      expected_size_(o.expected_size_),
      fd_(std::move(o.fd_)),
      hash_(std::move(o.hash_)),
      offset_(o.offset_),
      checkpointed_(o.checkpointed_),
      complete_(o.complete_),
      finished_(std::exchange(o.finished_, true)) {}

Ingest& Ingest::operator=(Ingest&& o) noexcept {
  if (this != &o) {
    this->~Ingest();
    new (this) Ingest(std::move(o));
  }
  return *this;
}

Ingest::~Ingest() {
  // Best effort: without the record a later run restarts from 0, which is slower but still correct.
  if (!finished_ && fd_.valid()) {
    try {
      (void)checkpoint();
    } catch (...) {
      // Out of memory building the record: the partial stays and a later run restarts it from 0.
    }
  }
}

void Ingest::close() {
  finished_ = true;
  hash_.reset();
  fd_.reset();  // releases the flock: waiters re-check and find the blob (or no partial)
}

Status Ingest::checkpoint() {
  if (!fd_.valid()) return {};
  STRATA_TRY(sys::fsync_fd(fd_.get(), true));
  nlohmann::json j = {{"digest", digest_.to_string()}, {"offset", offset_}};
  if (expected_size_) j["size"] = *expected_size_;
  STRATA_TRY(detail::write_file_atomic(dirs_->ingest.get(), record_name(digest_), j.dump(), 0644));
  checkpointed_ = offset_;
  return {};
}

Status Ingest::fail_and_remove(Error e) {
  int ingestfd = dirs_->ingest.get();
  // We hold the flock, so nobody else uses these names; failing to remove them only costs disk
  // space until the next run resumes (and fails the check again) or cleanup_stale.
  (void)sys::unlink_at(ingestfd, partial_name(digest_).c_str(), 0);
  (void)sys::unlink_at(ingestfd, record_name(digest_).c_str(), 0);
  close();
  return e;
}

Status Ingest::write(const void* data, size_t size) {
  if (finished_)
    return make_error(EINVAL, "ingest write", digest_.to_string() + ": ingest already finished");
  if (expected_size_ && offset_ + size > *expected_size_)
    return fail_and_remove(make_error(EBADMSG, "ingest",
                                      "blob " + digest_.to_string() +
                                          ": more data than the expected " +
                                          std::to_string(*expected_size_) + " bytes"));
  if (auto w = sys::write_all(fd_.get(), data, size); !w) {
    // Keep file and hash in step: drop whatever part of this chunk reached the file.
    (void)sys::truncate_fd(fd_.get(),
                           static_cast<off_t>(offset_));  // a failure shows at commit as a mismatch
    return w;
  }
  hash_->update(data, size);
  offset_ += size;
  if (offset_ - checkpointed_ >= kCheckpointBytes) STRATA_TRY(checkpoint());
  return {};
}

Result<size_t> Ingest::read_at(uint64_t pos, void* buf, size_t size) const {
  if (!fd_.valid()) return make_error(EBADF, "ingest read", digest_.to_string());
  if (pos >= offset_) return size_t{0};
  size = static_cast<size_t>(std::min<uint64_t>(size, offset_ - pos));
  return sys::pread_some(fd_.get(), buf, size, static_cast<off_t>(pos));
}

Status Ingest::reset() {
  if (finished_)
    return make_error(EINVAL, "ingest reset", digest_.to_string() + ": ingest already finished");
  STRATA_TRY(sys::truncate_fd(fd_.get(), 0));
  hash_ = std::make_unique<Sha256>();
  offset_ = 0;
  checkpointed_ = 0;
  return {};
}

Status Ingest::discard() {
  if (finished_) return {};
  int ingestfd = dirs_->ingest.get();
  auto u = sys::unlink_at(ingestfd, partial_name(digest_).c_str(), 0);
  (void)sys::unlink_at(ingestfd, record_name(digest_).c_str(),
                       0);  // without its partial it is ignored
  close();
  if (!u && u.error().err != ENOENT) return u;
  return {};
}

Status Ingest::commit() {
  if (complete_) return {};
  if (finished_)
    return make_error(EINVAL, "ingest commit", digest_.to_string() + ": ingest already finished");
  const std::string blob = "blob " + digest_.to_string();
  if (expected_size_ && offset_ != *expected_size_)
    return fail_and_remove(make_error(EBADMSG, "ingest",
                                      blob + ": size mismatch: expected " +
                                          std::to_string(*expected_size_) + " bytes, got " +
                                          std::to_string(offset_)));
  auto got = hash_->finish();
  if (!got) return fail_and_remove(got.take_error());
  if (*got != digest_)
    return fail_and_remove(make_error(EBADMSG, "ingest",
                                      blob + ": digest mismatch: expected " + digest_.to_string() +
                                          ", got " + got->to_string() + " (" +
                                          std::to_string(offset_) + " bytes)"));
  STRATA_TRY(sys::fsync_fd(fd_.get(), false));
  int ingestfd = dirs_->ingest.get();
  int blobsfd = dirs_->blobs.get();
  const std::string pname = partial_name(digest_);
  auto r = sys::rename_at(ingestfd, pname.c_str(), blobsfd, digest_.hex.c_str(), RENAME_NOREPLACE);
  if (!r && r.error().err == EINVAL) {
    // Filesystems without RENAME_NOREPLACE: replacing a verified blob with identical bytes is
    // harmless.
    r = sys::rename_at(ingestfd, pname.c_str(), blobsfd, digest_.hex.c_str(), 0);
  }
  if (!r) {
    if (r.error().err != EEXIST) {
      // The data is verified and durable: record it so a retry only re-hashes.
      (void)checkpoint();  // the rename error is the one to report
      close();
      return r;
    }
    // Written by a writer outside the ingest lock (a concurrent write_blob of the same bytes): same
    // content.
    (void)sys::unlink_at(ingestfd, pname.c_str(), 0);  // ours is redundant; cleanup_stale retries
  }
  STRATA_TRY(detail::fsync_dir(blobsfd));
  (void)sys::unlink_at(ingestfd, record_name(digest_).c_str(),
                       0);  // a stale record without partial is inert
  complete_ = true;
  close();
  return {};
}

// ---- Store's blob functions ----

bool Store::has_blob(const Digest& digest) const {
  if (!detail::check_digest(digest, "has_blob")) return false;
  auto st = sys::stat_at(dirs_->blobs.get(), digest.hex.c_str());
  return st && S_ISREG(st->st_mode);
}

Result<UniqueFd> Store::open_blob(const Digest& digest) const {
  STRATA_TRY(detail::check_digest(digest, "open blob"));
  auto fd = sys::open_at(dirs_->blobs.get(), digest.hex.c_str(), O_RDONLY);
  if (!fd) return make_error(fd.error().err, "open blob", digest.to_string());
  return fd;
}

Result<uint64_t> Store::blob_size(const Digest& digest) const {
  STRATA_TRY(detail::check_digest(digest, "stat blob"));
  auto st = sys::stat_at(dirs_->blobs.get(), digest.hex.c_str());
  if (!st) return make_error(st.error().err, "stat blob", digest.to_string());
  return static_cast<uint64_t>(st->st_size);
}

Result<std::string> Store::read_blob(const Digest& digest, size_t max_size) const {
  STRATA_TRY(detail::check_digest(digest, "read blob"));
  auto r = detail::read_file_at(dirs_->blobs.get(), digest.hex.c_str(), max_size);
  if (!r) return make_error(r.error().err, "read blob", digest.to_string());
  return r;
}

Result<Digest> Store::write_blob(std::string_view bytes) const {
  STRATA_ASSIGN_OR_RETURN(d, Sha256::of(bytes));
  if (has_blob(d)) return d;
  STRATA_ASSIGN_OR_RETURN(in, Ingest::begin(*this, d, bytes.size()));
  if (in.complete()) return d;
  if (in.offset() != 0) STRATA_TRY(in.reset());
  STRATA_TRY(in.write(bytes));
  STRATA_TRY(in.commit());
  return d;
}

std::string Store::blob_path(const Digest& digest) const {
  return dirs_->root_path + "/" + detail::kOciDir + "/" + detail::kBlobsDir + "/" +
         detail::kSha256Dir + "/" + digest.hex;
}

}  // namespace strata::store
