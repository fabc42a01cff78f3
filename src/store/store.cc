// SPDX-License-Identifier: Apache-2.0
#include "strata/store/store.h"

#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "strata/store/layout.h"
#include "strata/sys/fs.h"
#include "strata/sys/store_io.h"

namespace strata::store {

using detail::Dirs;

Result<std::string> default_root() {
  if (const char* r = getenv("STRATA_ROOT"); r && *r) return std::string(r);
  if (sys::effective_uid() == 0) return std::string("/var/lib/strata");
  // The XDG base directory spec says relative values are invalid and must be ignored.
  if (const char* x = getenv("XDG_DATA_HOME"); x && x[0] == '/') return std::string(x) + "/strata";
  std::string home;
  if (const char* h = getenv("HOME"); h && *h) {
    home = h;
  } else {
    struct passwd pw;
    struct passwd* res = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(sys::effective_uid(), &pw, buf.data(), buf.size(), &res) == 0 && res &&
        res->pw_dir)
      home = res->pw_dir;
  }
  if (home.empty())
    return make_error(ENOENT, "store root",
                      "set $STRATA_ROOT: no $XDG_DATA_HOME and no home directory");
  return home + "/.local/share/strata";
}

namespace {

// mkdir -p for the start-up path (the one place a store uses an absolute path); only ROOT itself is
// 0700.
Status make_root(const std::string& path) {
  if (path.empty()) return make_error(EINVAL, "store root", "empty path");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (prefix.back() == '/') continue;
    bool last = pos == path.size();
    auto r = sys::mkdir_at(AT_FDCWD, prefix.c_str(), last ? 0700 : 0755);
    if (!r && r.error().err != EEXIST) return r;
  }
  return {};
}

Status ensure_dir(int dirfd, const char* name) {
  auto r = sys::mkdir_at(dirfd, name, 0755);
  if (!r && r.error().err != EEXIST) return r;
  return {};
}

Result<UniqueFd> open_dir(int dirfd, const char* name) {
  return sys::open_at(dirfd, name, O_RDONLY | O_DIRECTORY);
}

Status check_oci_layout(int ocifd, const std::string& root) {
  auto text = detail::read_file_at(ocifd, detail::kOciLayoutFile, 65536);
  if (!text) {
    if (text.error().err == ENOENT)
      return make_error(ENOENT, "open store", root + ": not a strata store (no oci/oci-layout)");
    return text.take_error();
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion") ||
      !j["imageLayoutVersion"].is_string())
    return make_error(EBADMSG, "open store", root + "/oci/oci-layout: not an OCI layout file");
  return {};
}

}  // namespace

Result<Store> Store::open(const std::string& root_path, bool create) {
  if (create) STRATA_TRY(make_root(root_path));
  auto d = std::make_shared<Dirs>();
  d->root_path = root_path;
  while (d->root_path.size() > 1 && d->root_path.back() == '/') d->root_path.pop_back();
  STRATA_ASSIGN_OR_RETURN(root, sys::open_path(root_path.c_str(), O_PATH | O_DIRECTORY));
  d->root = std::move(root);
  int r = d->root.get();
  if (create) {
    STRATA_TRY(ensure_dir(r, detail::kOciDir));
    STRATA_TRY(ensure_dir(r, detail::kLayersDir));
    STRATA_TRY(ensure_dir(r, detail::kIngestDir));
    STRATA_TRY(ensure_dir(r, detail::kContainersDir));
    auto lockfd = sys::open_at(r, detail::kLockFile, O_RDWR | O_CREAT, 0644);
    if (!lockfd) return lockfd.take_error();
  }
  STRATA_ASSIGN_OR_RETURN(oci, open_dir(r, detail::kOciDir));
  d->oci = std::move(oci);
  if (create) {
    STRATA_TRY(ensure_dir(d->oci.get(), detail::kBlobsDir));
    STRATA_ASSIGN_OR_RETURN(blobs_parent, open_dir(d->oci.get(), detail::kBlobsDir));
    STRATA_TRY(ensure_dir(blobs_parent.get(), detail::kSha256Dir));
    STRATA_TRY(detail::create_file_atomic(d->oci.get(), detail::kOciLayoutFile,
                                          R"({"imageLayoutVersion":"1.0.0"})", 0644));
    STRATA_TRY(detail::create_file_atomic(d->oci.get(), detail::kIndexFile,
                                          R"({"schemaVersion":2,"manifests":[]})", 0644));
  }
  STRATA_TRY(check_oci_layout(d->oci.get(), d->root_path));
  STRATA_ASSIGN_OR_RETURN(blobs_parent, open_dir(d->oci.get(), detail::kBlobsDir));
  STRATA_ASSIGN_OR_RETURN(blobs, open_dir(blobs_parent.get(), detail::kSha256Dir));
  d->blobs = std::move(blobs);
  STRATA_ASSIGN_OR_RETURN(layers, open_dir(r, detail::kLayersDir));
  d->layers = std::move(layers);
  STRATA_ASSIGN_OR_RETURN(ingest, open_dir(r, detail::kIngestDir));
  d->ingest = std::move(ingest);
  STRATA_ASSIGN_OR_RETURN(containers, open_dir(r, detail::kContainersDir));
  d->containers = std::move(containers);
  return Store(std::move(d));
}

const std::string& Store::root_path() const {
  return dirs_->root_path;
}

int Store::root_fd() const {
  return dirs_->root.get();
}

Status Store::check_lock(const StoreLock& lock, const char* op) const {
  if (!lock.held() || lock.owner() != dirs_.get())
    return make_error(EINVAL, op, "requires the store lock taken on this store (lock_exclusive)");
  return {};
}

}  // namespace strata::store
