// SPDX-License-Identifier: Apache-2.0
// The libarchive half of unpack_layer(): decode entries and stream data; layer_writer.cc does the
// file system.
#include "strata/archive/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <string.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "strata/archive/layer_writer.h"
#include "strata/archive/utf8_locale.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"

namespace strata::archive {
namespace {

constexpr size_t kReadBlock = 128 * 1024;
constexpr int64_t kMaxId = 0xfffffffeLL;  // (uid_t)-1 means "leave unchanged" to chown

struct ArchiveFree {
  // Freeing closes the stream: nothing is left to report by then.
  void operator()(struct archive* a) const { (void)archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

struct Source {
  const ReadFn* read;
  std::vector<char> buf;
  bool eof = false;
  int error = 0;  // errno of a failed read: the cause of whatever libarchive reports next
};

// Returns bytes read, 0 at the end, -1 with errno set.
ssize_t pull(Source* s) {
  ssize_t n;
  try {
    errno = 0;
    n = (*s->read)(s->buf.data(), s->buf.size());
  } catch (const std::bad_alloc&) {
    errno = ENOMEM;
    return -1;
  } catch (...) {
    errno = EIO;
    return -1;
  }
  if (n < 0) {
    if (errno == 0) errno = EIO;
    return -1;
  }
  if (static_cast<size_t>(n) > s->buf.size()) {
    errno = EINVAL;  // a reader claiming more than it was given room for
    return -1;
  }
  if (n == 0) s->eof = true;
  return n;
}

la_ssize_t read_cb(struct archive* a, void* data, const void** out) {
  auto* s = static_cast<Source*>(data);
  ssize_t n = pull(s);
  if (n < 0) {
    int err = errno;
    s->error = err;
    char buf[128];
    archive_set_error(a, err, "reading the layer stream: %s", strerror_r(err, buf, sizeof buf));
    return -1;
  }
  *out = s->buf.data();
  return n;
}

// libarchive's own errno values say little (bad input comes as EILSEQ, EINVAL or -1): a failed read
// of the source keeps its errno, memory is ENOMEM, everything else is bad input, EBADMSG.
Error archive_failure(struct archive* a, const Source& src, const std::string& what) {
  int err = src.error ? src.error : archive_errno(a) == ENOMEM ? ENOMEM : EBADMSG;
  const char* msg = archive_error_string(a);
  return make_error(err, "unpack", what + ": " + (msg ? msg : "libarchive failed"));
}

Error bad_entry(const std::string& name, const std::string& why) {
  return make_error(EBADMSG, "unpack", quote_name(name) + ": " + why);
}

bool nsec_ok(long ns) {
  return ns >= 0 && ns <= 999999999L;
}

// A PAX time "-100.25" is 100.25 s before the epoch (POSIX, and what Go and GNU tar write), but
// libarchive (3.6 and later alike) parses it as seconds -100 plus 0.25 s. Only PAX times carry
// fractions, so a negative time with nanoseconds is always that case. ("-0.25" reaches us as +0.25:
// its sign is lost before we see it.)
struct timespec time_of(int64_t sec, long nsec) {
  if (sec < 0 && nsec > 0) return {static_cast<time_t>(sec - 1), 1000000000L - nsec};
  return {static_cast<time_t>(sec), nsec};
}

Result<Entry> convert(struct archive_entry* ae) {
  Entry e;
  const char* name = archive_entry_pathname(ae);
  if (!name) return bad_entry("", "entry without a name");
  e.name = name;
  if (const char* hl = archive_entry_hardlink(ae)) {
    e.type = EntryType::kHardlink;
    e.link = hl;
  } else {
    switch (archive_entry_filetype(ae)) {
      case AE_IFREG:
        e.type = EntryType::kFile;
        break;
      case AE_IFDIR:
        e.type = EntryType::kDirectory;
        break;
      case AE_IFIFO:
        e.type = EntryType::kFifo;
        break;
      case AE_IFCHR:
        e.type = EntryType::kCharDevice;
        break;
      case AE_IFBLK:
        e.type = EntryType::kBlockDevice;
        break;
      case AE_IFSOCK:
        e.type = EntryType::kSocket;
        break;
      case AE_IFLNK: {
        e.type = EntryType::kSymlink;
        const char* t = archive_entry_symlink(ae);
        if (!t) return bad_entry(e.name, "symlink without a target");
        e.link = t;
        break;
      }
      default:
        return bad_entry(e.name, "unsupported entry type");
    }
  }
  int64_t size = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
  if (size < 0) return bad_entry(e.name, "negative size");
  e.size = static_cast<off_t>(size);
  e.rdev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
  e.meta.perm = static_cast<mode_t>(archive_entry_mode(ae)) & 07777;
  int64_t uid = archive_entry_uid(ae);
  int64_t gid = archive_entry_gid(ae);
  if (uid < 0 || uid > kMaxId || gid < 0 || gid > kMaxId)
    return bad_entry(
        e.name, "uid/gid out of range (" + std::to_string(uid) + ":" + std::to_string(gid) + ")");
  e.meta.uid = static_cast<uid_t>(uid);
  e.meta.gid = static_cast<gid_t>(gid);
  if (archive_entry_mtime_is_set(ae)) {
    e.meta.has_mtime = true;
    e.meta.mtime = time_of(archive_entry_mtime(ae), archive_entry_mtime_nsec(ae));
    if (!nsec_ok(e.meta.mtime.tv_nsec)) return bad_entry(e.name, "invalid mtime");
  }
  if (archive_entry_atime_is_set(ae)) {
    e.meta.has_atime = true;
    e.meta.atime = time_of(archive_entry_atime(ae), archive_entry_atime_nsec(ae));
    if (!nsec_ok(e.meta.atime.tv_nsec)) return bad_entry(e.name, "invalid atime");
  }
  archive_entry_xattr_reset(ae);
  const char* xname;
  const void* xvalue;
  size_t xsize;
  while (archive_entry_xattr_next(ae, &xname, &xvalue, &xsize) == ARCHIVE_OK) {
    if (!xname || !*xname) return bad_entry(e.name, "xattr without a name");
    e.meta.xattrs.emplace_back(xname,
                               xvalue ? std::string(static_cast<const char*>(xvalue), xsize) : "");
  }
  return e;
}

Status write_data(struct archive* a, const Source& src, LayerWriter* w, const Entry& e, int fd,
                  UnpackStats* stats) {
  off_t end = 0;
  while (true) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) break;
    // Not `r < ARCHIVE_WARN`: ARCHIVE_RETRY (-10) sorts above ARCHIVE_WARN (-20).
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return archive_failure(a, src, "reading the data of " + quote_name(e.name));
    if (r == ARCHIVE_WARN) {
      const char* msg = archive_error_string(a);
      w->warn(quote_name(e.name) + ": " + (msg ? msg : "libarchive warning"));
    }
    if (size == 0) continue;
    // A sparse map is input too: no block may land beyond the size the header declared.
    if (offset < 0 || static_cast<uint64_t>(offset) > static_cast<uint64_t>(e.size) ||
        size > static_cast<uint64_t>(e.size - offset))
      return bad_entry(e.name, "data beyond the entry's size");
    auto wr = sys::pwrite_all(fd, buf, size, offset);
    if (!wr) return make_error(wr.error().err, "unpack", quote_name(e.name) + ": writing data");
    stats->bytes += size;
    end = std::max<off_t>(end, offset + static_cast<off_t>(size));
  }
  return w->finish_file(fd, e, end);
}

Result<UnpackStats> unpack(const ReadFn& read, int dest_dirfd, const UnpackOptions& options) {
  auto existing = sys::read_dir(dest_dirfd);
  if (!existing)
    return make_error(existing.error().err, "unpack", "destination: " + existing.error().op);
  if (!existing->empty())
    return make_error(ENOTEMPTY, "unpack", "the destination directory is not empty");

  Utf8Locale utf8;
  ArchivePtr a(archive_read_new());
  if (!a) return make_error(ENOMEM, "unpack", "archive_read_new");
  // zstd answers ARCHIVE_WARN when it will run an external zstd program: still usable.
  if (archive_read_support_filter_none(a.get()) < ARCHIVE_WARN ||
      archive_read_support_filter_gzip(a.get()) < ARCHIVE_WARN ||
      archive_read_support_filter_zstd(a.get()) < ARCHIVE_WARN ||
      archive_read_support_format_tar(a.get()) < ARCHIVE_WARN ||
      archive_read_support_format_empty(a.get()) < ARCHIVE_WARN)
    return archive_failure(a.get(), Source{}, "setting up libarchive");

  Source src{&read, std::vector<char>(kReadBlock)};
  if (archive_read_open(a.get(), &src, nullptr, read_cb, nullptr) != ARCHIVE_OK)
    return archive_failure(a.get(), src, "opening the layer stream");

  UnpackStats stats;
  LayerWriter writer(dest_dirfd, options, &stats);
  std::string last = "(none yet)";
  while (true) {
    struct archive_entry* ae = nullptr;
    int r = archive_read_next_header(a.get(), &ae);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY (which sorts above ARCHIVE_WARN) is a damaged header libarchive could skip
    // past, looking for the next one; untrusted input gets no second guess.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return archive_failure(a.get(), src, "reading the entry after " + quote_name(last));
    stats.entries++;
    auto e = convert(ae);
    if (!e) return e.take_error();
    if (r == ARCHIVE_WARN) {
      const char* msg = archive_error_string(a.get());
      writer.warn(quote_name(e->name) + ": " + (msg ? msg : "libarchive warning"));
    }
    auto fd = writer.begin(*e);
    if (!fd) return fd.take_error();
    if (fd->valid()) STRATA_TRY(write_data(a.get(), src, &writer, *e, fd->get(), &stats));
    last = e->name;
  }
  STRATA_TRY(writer.finish());
  // Read the source to its end: a caller hashing the stream must see all of it, padding included.
  while (!src.eof) {
    if (pull(&src) < 0)
      return make_error(errno, "unpack", "reading the layer stream after the end of the archive");
  }
  return stats;
}

}  // namespace

UnpackOptions store_unpack_options() {
  UnpackOptions o;
  o.record_owner = true;
  o.devices = DevicePolicy::kSkip;
  return o;
}

Result<UnpackStats> unpack_layer(const ReadFn& read, int dest_dirfd, const UnpackOptions& options) {
  try {
    return unpack(read, dest_dirfd, options);
  } catch (const std::bad_alloc&) {
    return make_error(ENOMEM, "unpack", "out of memory");
  } catch (...) {
    return make_error(EIO, "unpack", "unexpected exception");
  }
}

Result<UnpackStats> unpack_layer(int src_fd, int dest_dirfd, const UnpackOptions& options) {
  ReadFn read = [src_fd](void* buf, size_t size) -> ssize_t {
    auto r = sys::read_some(src_fd, buf, size);
    if (!r) {
      errno = r.error().err;
      return -1;
    }
    return static_cast<ssize_t>(*r);
  };
  return unpack_layer(read, dest_dirfd, options);
}

}  // namespace strata::archive
