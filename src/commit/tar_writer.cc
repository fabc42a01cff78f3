// SPDX-License-Identifier: Apache-2.0
#include "tar_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <sys/sysmacros.h>

#include <string>

#include "strata/archive/entry_path.h"
#include "strata/archive/utf8_locale.h"

namespace strata::commit::detail {

struct TarWriter::Impl {
  archive::Utf8Locale utf8;
  struct archive* a = nullptr;
  struct archive_entry* ae = nullptr;
  ByteSink out;
  uint64_t* bytes = nullptr;
  Status out_error;  // what the output callback failed with
  std::string current;

  ~Impl() {
    if (ae) archive_entry_free(ae);
    if (a) (void)archive_write_free(a);  // after close() or an error: nothing left to report
  }

  static la_ssize_t write_cb(struct archive*, void* client, const void* buf, size_t size) {
    auto* self = static_cast<Impl*>(client);
    auto s = self->out(buf, size);
    if (!s) {
      self->out_error = std::move(s);
      return -1;
    }
    *self->bytes += size;
    return static_cast<la_ssize_t>(size);
  }

  Error failure(const std::string& what) {
    if (!out_error) return out_error.take_error();
    const char* msg = archive_error_string(a);
    int err = archive_errno(a) == ENOMEM ? ENOMEM : EIO;
    return make_error(err, "commit tar", what + ": " + (msg ? msg : "libarchive failed"));
  }
};

Result<std::unique_ptr<TarWriter>> TarWriter::create(ByteSink out) {
  std::unique_ptr<TarWriter> w(new TarWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  im.out = std::move(out);
  im.bytes = &w->bytes_;
  im.a = archive_write_new();
  im.ae = archive_entry_new();
  if (!im.a || !im.ae) return make_error(ENOMEM, "commit tar", "archive_write_new");
  if (archive_write_set_format_pax_restricted(im.a) != ARCHIVE_OK) return im.failure("pax format");
  // Only SCHILY.xattr records (what Go's archive/tar, containerd and umoci read and write), not
  // also LIBARCHIVE.xattr ones.
  if (archive_write_set_format_option(im.a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK)
    return im.failure("pax xattrheader option");
  // No blocking: the stream ends after the two zero blocks, not padded to 10 KiB.
  if (archive_write_set_bytes_per_block(im.a, 0) != ARCHIVE_OK) return im.failure("block size");
  if (archive_write_open(im.a, &im, nullptr, &Impl::write_cb, nullptr) != ARCHIVE_OK)
    return im.failure("open");
  return w;
}

TarWriter::~TarWriter() = default;

Status TarWriter::begin(const archive::Entry& e) {
  Impl& im = *impl_;
  struct archive_entry* ae = im.ae;
  archive_entry_clear(ae);
  im.current = e.name;
  archive_entry_copy_pathname(ae, e.name.c_str());
  archive_entry_set_perm(ae, e.meta.perm);
  archive_entry_set_uid(ae, e.meta.uid);
  archive_entry_set_gid(ae, e.meta.gid);
  if (e.meta.has_mtime) archive_entry_set_mtime(ae, e.meta.mtime.tv_sec, 0);
  archive_entry_set_size(ae, 0);
  switch (e.type) {
    case archive::EntryType::kFile:
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_set_size(ae, e.size);
      break;
    case archive::EntryType::kDirectory:
      archive_entry_set_filetype(ae, AE_IFDIR);
      break;
    case archive::EntryType::kSymlink:
      archive_entry_set_filetype(ae, AE_IFLNK);
      archive_entry_copy_symlink(ae, e.link.c_str());
      break;
    case archive::EntryType::kHardlink:
      archive_entry_set_filetype(ae, AE_IFREG);
      archive_entry_copy_hardlink(ae, e.link.c_str());
      break;
    case archive::EntryType::kFifo:
      archive_entry_set_filetype(ae, AE_IFIFO);
      break;
    case archive::EntryType::kCharDevice:
    case archive::EntryType::kBlockDevice:
      archive_entry_set_filetype(ae,
                                 e.type == archive::EntryType::kCharDevice ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdevmajor(ae, major(e.rdev));
      archive_entry_set_rdevminor(ae, minor(e.rdev));
      break;
    case archive::EntryType::kSocket:
      return make_error(EINVAL, "commit tar",
                        archive::quote_name(e.name) + ": a socket has no tar form");
  }
  for (const auto& [name, value] : e.meta.xattrs)
    archive_entry_xattr_add_entry(ae, name.c_str(), value.data(), value.size());
  int r = archive_write_header(im.a, ae);
  if (r != ARCHIVE_OK) return im.failure(archive::quote_name(e.name));
  return {};
}

Status TarWriter::data(const void* buf, size_t size) {
  Impl& im = *impl_;
  while (size > 0) {
    la_ssize_t n = archive_write_data(im.a, buf, size);
    if (n <= 0) return im.failure(archive::quote_name(im.current) + ": data");
    buf = static_cast<const char*>(buf) + n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

Status TarWriter::end() {
  Impl& im = *impl_;
  // Pads a file that shrank while being read with zeros up to the size in its header.
  if (archive_write_finish_entry(im.a) != ARCHIVE_OK)
    return im.failure(archive::quote_name(im.current));
  return {};
}

Status TarWriter::close() {
  Impl& im = *impl_;
  if (archive_write_close(im.a) != ARCHIVE_OK) return im.failure("end of archive");
  return {};
}

}  // namespace strata::commit::detail
