// SPDX-License-Identifier: Apache-2.0
// Ingest: the resumable, verified writer of one blob of known digest (and optionally size).
//
//   auto in = Ingest::begin(store, digest, size);   // creates or resumes ingest/<hex>.partial
//   if (in->complete()) done;                       // the blob is already in blobs/
//   request bytes from in->offset() (HTTP "Range: bytes=OFFSET-"), in->write(...) each chunk;
//   in->commit();                                   // size + digest checked, fsync, rename into
//   blobs/
//
// Data goes to ingest/<hex>.partial; ingest/<hex>.json records how many bytes are durable (the
// partial is fdatasynced before the record is rewritten, every 8 MiB and when an uncommitted
// Ingest is destroyed), so a later run resumes from there: it truncates the partial to that length
// and re-hashes it (OpenSSL cannot serialize a hash state). A partial with no record restarts from
// 0.
//
// commit() checks the size (against the expected size, if given) and the digest; on a mismatch the
// partial and its record are removed and the error (EBADMSG) names the blob and both digests or
// sizes. On success the partial is fsynced and renamed into oci/blobs/sha256/<hex> (never replacing
// an existing blob), and the directory fsynced: a blob in blobs/ is always complete and correct.
// write() past the expected size fails at once the same way. discard() drops the partial data (no
// resume).
//
// Concurrency: the partial is flock'ed while an Ingest owns it. begin() on a blob someone else
// (thread or process) is writing waits for them (or, wait=false, fails with EWOULDBLOCK); if they
// committed, the new Ingest is complete(), if they gave up it resumes their data. Lifetime: keeps
// the store's directory fds alive itself. Thread-safety: one thread per Ingest.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/store/digest.h"
#include "strata/store/store.h"

namespace strata::store {

class Ingest {
 public:
  // Small enough that a pull killed (-9, no destructor) mid-layer loses little; the data is synced
  // at commit anyway, so a checkpoint only moves part of that fsync earlier.
  static constexpr uint64_t kCheckpointBytes = 8u << 20;

  static Result<Ingest> begin(const Store& store, const Digest& digest,
                              std::optional<uint64_t> expected_size = std::nullopt,
                              bool wait = true);

  Ingest(Ingest&&) noexcept;
  Ingest& operator=(Ingest&&) noexcept;
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;
  // Uncommitted: records the durable offset for a later resume (best effort).
  ~Ingest();

  const Digest& digest() const { return digest_; }
  // The blob is in blobs/ (found there by begin(), or committed): nothing more to write.
  bool complete() const { return complete_; }
  // Bytes already written: resume the download from here.
  uint64_t offset() const { return offset_; }

  // Bytes of the data written so far, from `pos` (below offset()): a resumed download re-reads its
  // prefix from here to hash and unpack the whole blob. 0 at offset().
  Result<size_t> read_at(uint64_t pos, void* buf, size_t size) const;
  Status write(const void* data, size_t size);
  Status write(std::string_view data) { return write(data.data(), data.size()); }
  // Discard the data so far and start again at offset 0 (a server that ignored the Range request).
  Status reset();
  // Verify and publish; see the contract above. Complete already: no-op.
  Status commit();
  // Remove the partial data and the record; the Ingest is then finished.
  Status discard();

 private:
  Ingest() = default;
  Status checkpoint();
  Status fail_and_remove(Error e);
  void close();

  std::shared_ptr<const detail::Dirs> dirs_;
  Digest digest_;
  std::optional<uint64_t> expected_size_;
  UniqueFd fd_;  // the partial, O_RDWR|O_APPEND, flock'ed
  std::unique_ptr<Sha256> hash_;
  uint64_t offset_ = 0;
  uint64_t checkpointed_ = 0;
  bool complete_ = false;
  bool finished_ = false;  // committed, aborted or failed: nothing to record on destruction
};

}  // namespace strata::store
