// SPDX-License-Identifier: Apache-2.0
// Content digests: the "sha256:<64 lowercase hex>" names of blobs and layers, and a streaming
// SHA-256.
//
// Digest is a plain value. parse() accepts exactly one algorithm, "sha256", followed by ':' and 64
// lowercase hex digits — the only form the store ever writes and the canonical form the OCI spec
// requires for sha256; anything else (uppercase, other lengths, other algorithms, stray bytes) is
// an EINVAL error naming the input. A default-constructed Digest is empty (valid() == false).
//
// Sha256 hashes data as it streams (OpenSSL EVP). update() any number of times, then finish() once;
// after finish() the hasher is spent (a further update()/finish() is an error). EVP cannot
// serialize its state, so resuming a hash means re-feeding the data (see ingest.h). Thread-safety:
// Digest is a value; one Sha256 must not be used from two threads at once.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "strata/base/result.h"

namespace strata::store {

struct Digest {
  std::string algorithm;  // "sha256"
  std::string hex;        // 64 lowercase hex digits

  static constexpr size_t kSha256HexLen = 64;

  // "sha256:<hex>".
  static Result<Digest> parse(std::string_view text);
  // A bare sha256 hex string (as used for file names in blobs/sha256/ and layers/).
  static Result<Digest> from_hex(std::string_view hex);
  static bool valid_sha256_hex(std::string_view hex);

  bool valid() const { return !hex.empty(); }
  std::string to_string() const { return algorithm + ":" + hex; }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&& o) noexcept;
  Sha256& operator=(Sha256&& o) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Bytes fed so far.
  uint64_t bytes() const { return bytes_; }
  // The digest of everything fed; an error if OpenSSL failed at any point or finish() was called
  // before.
  Result<Digest> finish();

  // One-shot digest of `data`.
  static Result<Digest> of(std::string_view data);

 private:
  void* ctx_ = nullptr;  // EVP_MD_CTX*, kept opaque so that users need no OpenSSL headers
  uint64_t bytes_ = 0;
  bool failed_ = false;
  bool finished_ = false;
};

}  // namespace strata::store
