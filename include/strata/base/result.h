// SPDX-License-Identifier: Apache-2.0
// Result<T>: a value or an Error, the std::expected subset the project uses.
//
// Contract: every fallible function in src/ returns Result<T> (or Status = Result<void>) instead of throwing
// across a module API. An Error carries the errno it came from (0 when none), the operation that failed and a
// human-readable detail. Callers either propagate (STRATA_TRY), map to an errno for a FUSE reply (to_errno), or
// log once. Ignoring a Result needs an explicit `(void)` plus a comment saying why.
// Thread-safety: plain values.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace strata {

struct Error {
  int err = 0;         // errno value, 0 if not from a syscall
  std::string op;      // what failed: "openat", "copy-up", "parse lowerdir"
  std::string detail;  // what it was applied to: a name, a path, an option

  // "op detail: strerror(err)"
  std::string message() const;
};

Error make_error(int err, std::string op, std::string detail = {});
// Error from the current errno.
Error errno_error(std::string op, std::string detail = {});

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(std::move(e)) {}      // NOLINT
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }
  Error&& take_error() { return std::get<1>(std::move(v_)); }
  T value_or(T other) const { return has_value() ? std::get<0>(v_) : std::move(other); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error e) : e_(std::move(e)), ok_(false) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return e_; }
  Error&& take_error() { return std::move(e_); }

 private:
  Error e_;
  bool ok_ = true;
};

using Status = Result<void>;

// The errno to put in a FUSE reply for this error: its own errno, else EIO.
inline int to_errno(const Error& e) { return e.err > 0 ? e.err : EIO; }

}  // namespace strata

// Propagate an error from an expression returning Result/Status; evaluates to nothing.
#define STRATA_TRY(expr)                              \
  do {                                                \
    auto strata_try_r_ = (expr);                      \
    if (!strata_try_r_) return strata_try_r_.take_error(); \
  } while (0)

// Declare `var` from a Result<T> expression, returning its error if any.
#define STRATA_ASSIGN_OR_RETURN(var, expr)            \
  auto var##_result_ = (expr);                        \
  if (!var##_result_) return var##_result_.take_error(); \
  auto var = std::move(*var##_result_)
