// SPDX-License-Identifier: Apache-2.0
#include "strata/store/digest.h"

#include <openssl/evp.h>

#include <utility>

namespace strata::store {

bool Digest::valid_sha256_hex(std::string_view hex) {
  if (hex.size() != kSha256HexLen) return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<Digest> Digest::from_hex(std::string_view hex) {
  if (!valid_sha256_hex(hex))
    return make_error(EINVAL, "parse digest",
                      "'" + std::string(hex) + "': not 64 lowercase hex digits");
  return Digest{"sha256", std::string(hex)};
}

Result<Digest> Digest::parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos)
    return make_error(EINVAL, "parse digest", "'" + std::string(text) + "': no algorithm prefix");
  std::string_view alg = text.substr(0, colon);
  if (alg != "sha256")
    return make_error(
        EINVAL, "parse digest",
        "'" + std::string(text) + "': unsupported algorithm '" + std::string(alg) + "'");
  auto d = from_hex(text.substr(colon + 1));
  if (!d)
    return make_error(EINVAL, "parse digest",
                      "'" + std::string(text) + "': not sha256:<64 lowercase hex>");
  return d;
}

namespace {
EVP_MD_CTX* as_ctx(void* p) {
  return static_cast<EVP_MD_CTX*>(p);
}
}  // namespace

Sha256::Sha256() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) failed_ = true;
  ctx_ = ctx;
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(as_ctx(ctx_));
}

Sha256::Sha256(Sha256&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)),
      bytes_(o.bytes_),
      failed_(std::exchange(o.failed_, true)),
      finished_(o.finished_) {}

Sha256& Sha256::operator=(Sha256&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(as_ctx(ctx_));
    ctx_ = std::exchange(o.ctx_, nullptr);
    bytes_ = o.bytes_;
    failed_ = std::exchange(o.failed_, true);
    finished_ = o.finished_;
  }
  return *this;
}

void Sha256::update(const void* data, size_t size) {
  if (failed_ || finished_ || size == 0) {
    if (finished_) failed_ = true;
    return;
  }
  if (EVP_DigestUpdate(as_ctx(ctx_), data, size) != 1) failed_ = true;
  bytes_ += size;
}

Result<Digest> Sha256::finish() {
  if (finished_) return make_error(EINVAL, "sha256", "finish() called twice");
  finished_ = true;
  if (failed_ || ctx_ == nullptr) return make_error(EIO, "sha256", "OpenSSL EVP digest failed");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(as_ctx(ctx_), md, &len) != 1 || len != 32)
    return make_error(EIO, "sha256", "OpenSSL EVP digest failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * len, '0');
  for (unsigned i = 0; i < len; ++i) {
    hex[2 * i] = kHex[md[i] >> 4];
    hex[2 * i + 1] = kHex[md[i] & 0xf];
  }
  return Digest{"sha256", std::move(hex)};
}

Result<Digest> Sha256::of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

}  // namespace strata::store
