// SPDX-License-Identifier: Apache-2.0
// AlignedBuffer: a fixed-size heap buffer whose address is a multiple of an alignment (direct I/O,
// sys/store_io.h, needs kDirectIoAlign). Move-only; freed on destruction. Not zero-filled.
// Errors: make() returns an empty buffer (data() == nullptr) when out of memory; callers check
// valid(). Thread-safety: like any value.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace strata {

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // `size` is rounded up to a multiple of `align` (a power of two).
  static AlignedBuffer make(size_t size, size_t align) {
    AlignedBuffer b;
    size_t rounded = (size + align - 1) & ~(align - 1);
    b.p_.reset(static_cast<char*>(std::aligned_alloc(align, rounded)));
    if (b.p_) b.size_ = rounded;
    return b;
  }
  bool valid() const { return p_ != nullptr; }
  char* data() const { return p_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> p_;
  size_t size_ = 0;
};

}  // namespace strata
