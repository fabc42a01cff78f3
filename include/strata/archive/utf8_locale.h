// SPDX-License-Identifier: Apache-2.0
// archive/utf8_locale: a scoped C.UTF-8 LC_CTYPE for the calling thread, for the code that drives
// libarchive (the unpacker and the commit's tar writer).
//
// PAX names and link targets are UTF-8 by definition; libarchive converts them to and from the
// current locale's charset. In the C locale every non-ASCII name then costs a warning when read and
// is marked hdrcharset=BINARY when written (its bytes are kept either way). Under C.UTF-8 the
// conversion is the identity. uselocale() is per thread: only the thread that holds a Utf8Locale
// sees it, and only while it lives. If C.UTF-8 is missing the locale is left alone (libarchive
// then warns, nothing fails). Not copyable; construct and destroy on the same thread.
#pragma once

#include <locale.h>

namespace strata::archive {

class Utf8Locale {
 public:
  Utf8Locale() {
    loc_ = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (loc_) old_ = ::uselocale(loc_);
  }
  ~Utf8Locale() {
    if (!loc_) return;
    ::uselocale(old_);
    ::freelocale(loc_);
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;

 private:
  locale_t loc_ = static_cast<locale_t>(0);
  locale_t old_ = static_cast<locale_t>(0);
};

}  // namespace strata::archive
