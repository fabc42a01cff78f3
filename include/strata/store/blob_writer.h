// SPDX-License-Identifier: Apache-2.0
// BlobWriter: writes one blob whose digest is not known until its last byte (a layer being
// produced by `strata commit`), where Ingest (ingest.h) needs the digest up front.
//
//   auto w = BlobWriter::begin(store);     // ROOT/ingest/.tmp-blob-<pid>-<n>, created empty
//   w->write(...) any number of times;     // hashed (SHA-256) as it is written
//   auto d = w->finish();                  // fdatasync; the digest of everything written
//   w->publish();                          // rename into oci/blobs/sha256/<hex>, fsync blobs/
//
// Invariants: nothing is visible in blobs/ before publish(), and what publish() puts there is
// complete, durable and named by its own SHA-256 (computed here, never taken from the caller).
// publish() never replaces an existing blob: if blobs/<hex> exists (the same bytes, by its name),
// ours is dropped and publish() succeeds. A BlobWriter destroyed before publish() removes its
// temporary (also after a failed write: ENOSPC leaves nothing behind); after a crash the temporary
// carries the dead writer's pid and Store::cleanup_stale() removes it. Publishing an unreferenced
// blob races with gc: hold the StoreLock from publish() until something references it.
//
// Writing: bytes are gathered in a 4 MiB buffer and written in big pieces with direct I/O where the
// filesystem allows (sys/store_io.h: the blob is not read back by this process, so it is not copied
// into the page cache; the tail goes through it). So a write error (ENOSPC, EFBIG) may surface at a
// later write() or at finish() rather than at the write() whose bytes failed.
// Errors: Result/Status with errno naming the blob or the temporary; a failed write() or finish()
// makes the writer unusable (later calls fail with the same errno). Nothing is thrown or logged.
// Thread-safety: one thread per BlobWriter; several writers (threads or processes) may write the
// same content concurrently and all publish() successfully.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "strata/base/aligned_buffer.h"
#include "strata/base/result.h"
#include "strata/base/unique_fd.h"
#include "strata/store/digest.h"
#include "strata/store/store.h"

namespace strata::store {

class BlobWriter {
 public:
  static Result<BlobWriter> begin(const Store& store);

  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;
  ~BlobWriter();

  Status write(const void* data, size_t size);
  // Bytes written so far.
  uint64_t size() const { return size_; }
  // Sync the data and return the digest; no write() after this.
  Result<Digest> finish();
  // Make the blob visible in blobs/ (after finish()).
  Status publish();
  // Name of the temporary inside ROOT/ingest (empty once published or discarded).
  const std::string& temp_name() const { return name_; }
  // Remove the temporary (also done by the destructor).
  void discard();

 private:
  BlobWriter() = default;
  Status flush();  // the gathered bytes to the file
  std::shared_ptr<const detail::Dirs> dirs_;
  std::string name_;
  UniqueFd fd_;
  std::unique_ptr<Sha256> hash_;
  Digest digest_;
  uint64_t size_ = 0;  // bytes accepted by write()
  AlignedBuffer buf_;  // gathered, not yet in the file: the last fill_ bytes of size_
  size_t fill_ = 0;
  bool direct_ = false;  // fd_ has O_DIRECT
  int failed_ = 0;       // errno of the first failure
  bool finished_ = false;
};

}  // namespace strata::store
