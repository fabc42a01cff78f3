// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "strata/base/result.h"

namespace strata {

std::string Error::message() const {
  std::string m = op;
  if (!detail.empty()) m += (m.empty() ? "" : " ") + detail;
  if (err > 0) {
    char buf[128];
    m += ": ";
    m += strerror_r(err, buf, sizeof buf);
  }
  return m;
}

Error make_error(int err, std::string op, std::string detail) {
  return Error{err, std::move(op), std::move(detail)};
}

Error errno_error(std::string op, std::string detail) {
  return Error{errno, std::move(op), std::move(detail)};
}

}  // namespace strata
