// SPDX-License-Identifier: Apache-2.0
// The oci:DIR[:TAG] destination of push (see push.h): an OCI image layout written with
// temporaries and renames, so that a reader never sees a partial blob or index.json.
#include <fcntl.h>
#include <linux/fs.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "strata/oci/push.h"
#include "strata/sys/fs.h"
#include "strata/sys/fs_extra.h"
#include "strata/sys/store_io.h"

namespace strata::oci {
namespace {

using nlohmann::json;

constexpr size_t kMaxIndex = 64u << 20;

std::string temp_name(const std::string& stem) {
  static std::atomic<unsigned> counter{0};
  return ".tmp-" + stem + "-" + std::to_string(sys::current_pid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

// Write a file through a temporary: fill(fd), fsync, rename over `name` (replace) or beside an
// existing one (no replace: the existing file wins, it has the same content by its name).
Status write_via_temp(int dirfd, const std::string& name, bool replace,
                      const std::function<Status(int)>& fill) {
  std::string tmp = temp_name(name);
  STRATA_ASSIGN_OR_RETURN(fd, sys::open_at(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644));
  auto st = fill(fd.get());
  if (st) st = sys::fsync_fd(fd.get(), false);
  if (st)
    st = sys::rename_at(dirfd, tmp.c_str(), dirfd, name.c_str(), replace ? 0 : RENAME_NOREPLACE);
  if (!st) {
    (void)sys::unlink_at(dirfd, tmp.c_str(), 0);  // best effort: the error below is what matters
    if (!replace && st.error().err == EEXIST) return {};
    return make_error(st.error().err, st.error().op, name + ": " + st.error().detail);
  }
  return {};
}

Status mkdir_ok(int dirfd, const char* name) {
  auto st = sys::mkdir_at(dirfd, name, 0755);
  if (!st && st.error().err != EEXIST) return st;
  return {};
}

class LayoutDestination : public Destination {
 public:
  explicit LayoutDestination(std::string dir) : dir_(std::move(dir)) {}

  Status prepare() {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return make_error(ec.value(), "create layout", dir_);
    STRATA_ASSIGN_OR_RETURN(root, sys::open_path(dir_.c_str(), O_RDONLY | O_DIRECTORY));
    root_ = std::move(root);
    auto layout = sys::stat_at(root_.get(), "oci-layout");
    if (!layout) {
      STRATA_TRY(write_via_temp(root_.get(), "oci-layout", false, [](int fd) {
        std::string_view body = R"({"imageLayoutVersion":"1.0.0"})";
        return sys::write_all(fd, body.data(), body.size());
      }));
    }
    STRATA_TRY(mkdir_ok(root_.get(), "blobs"));
    STRATA_ASSIGN_OR_RETURN(blobs, sys::open_at(root_.get(), "blobs", O_RDONLY | O_DIRECTORY));
    STRATA_TRY(mkdir_ok(blobs.get(), "sha256"));
    STRATA_ASSIGN_OR_RETURN(sha, sys::open_at(blobs.get(), "sha256", O_RDONLY | O_DIRECTORY));
    sha_ = std::move(sha);
    return {};
  }

  std::string name() const override { return "oci:" + dir_; }

  Result<bool> has_blob(const Descriptor& d) override {
    auto st = sys::stat_at(sha_.get(), d.digest.hex.c_str());
    if (!st) {
      if (st.error().err == ENOENT) return false;
      return make_error(st.error().err, "stat", name() + " blob " + d.digest.to_string());
    }
    return S_ISREG(st->st_mode);
  }

  Status put_blob(const store::Store& store, const Descriptor& d,
                  const std::function<void(uint64_t)>& on_bytes) override {
    STRATA_ASSIGN_OR_RETURN(in, store.open_blob(d.digest));
    STRATA_ASSIGN_OR_RETURN(size, store.blob_size(d.digest));
    STRATA_TRY(write_via_temp(sha_.get(), d.digest.hex, false, [&](int fd) {
      return sys::copy_data(in.get(), fd, static_cast<off_t>(size));
    }));
    if (on_bytes) on_bytes(size);
    return {};
  }

  Result<bool> has_manifest(const Descriptor& d) override { return has_blob(d); }

  Status put_manifest(const Descriptor& d, const std::string& body,
                      const std::string& tag) override {
    STRATA_TRY(write_via_temp(sha_.get(), d.digest.hex, false, [&](int fd) {
      return sys::write_all(fd, body.data(), body.size());
    }));
    top_ = d;  // push() puts the top manifest last
    top_tag_ = tag;
    return {};
  }

  Status finish() override {
    if (!top_.digest.valid()) return {};
    json idx = {{"schemaVersion", 2}, {"manifests", json::array()}};
    auto text = read_index();
    if (!text) {
      if (text.error().err != ENOENT) return text.take_error();
    } else {
      idx = json::parse(*text, nullptr, false);
      if (idx.is_discarded() || !idx.is_object() || !idx.contains("manifests") ||
          !idx["manifests"].is_array())
        return make_error(EBADMSG, "push", name() + "/index.json: not an OCI index");
    }
    std::string digest = top_.digest.to_string();
    json kept = json::array();
    for (const auto& m : idx["manifests"]) {
      std::string ref;
      if (m.is_object() && m.contains("annotations") && m["annotations"].is_object() &&
          m["annotations"].contains(store::kRefNameAnnotation) &&
          m["annotations"][store::kRefNameAnnotation].is_string())
        ref = m["annotations"][store::kRefNameAnnotation].get<std::string>();
      bool same_digest = m.is_object() && m.value("digest", "") == digest;
      if (top_tag_.empty() ? (ref.empty() && same_digest) : ref == top_tag_) continue;
      kept.push_back(m);
    }
    json entry = {{"mediaType", top_.media_type}, {"digest", digest}, {"size", top_.size}};
    if (!top_tag_.empty()) entry["annotations"] = {{store::kRefNameAnnotation, top_tag_}};
    kept.push_back(entry);
    idx["manifests"] = kept;
    if (!idx.contains("mediaType")) idx["mediaType"] = store::kMediaTypeOciIndex;
    std::string out = idx.dump();
    STRATA_TRY(write_via_temp(root_.get(), "index.json", true,
                              [&](int fd) { return sys::write_all(fd, out.data(), out.size()); }));
    return sys::fsync_fd(root_.get(), false);
  }

 private:
  Result<std::string> read_index() {
    STRATA_ASSIGN_OR_RETURN(fd, sys::open_at(root_.get(), "index.json", O_RDONLY));
    std::string out;
    char buf[65536];
    while (true) {
      STRATA_ASSIGN_OR_RETURN(n, sys::read_some(fd.get(), buf, sizeof buf));
      if (n == 0) break;
      out.append(buf, n);
      if (out.size() > kMaxIndex) return make_error(EFBIG, "read", name() + "/index.json");
    }
    return out;
  }

  std::string dir_;
  UniqueFd root_, sha_;
  Descriptor top_;
  std::string top_tag_;
};

}  // namespace

Result<std::unique_ptr<Destination>> open_layout_destination(const std::string& dir) {
  auto d = std::make_unique<LayoutDestination>(dir);
  STRATA_TRY(d->prepare());
  return std::unique_ptr<Destination>(std::move(d));
}

}  // namespace strata::oci
