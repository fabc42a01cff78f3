// SPDX-License-Identifier: Apache-2.0
#include "strata/store/refs.h"

#include <nlohmann/json.hpp>
#include <string>

#include "strata/store/layout.h"
#include "strata/store/store.h"

namespace strata::store {

using nlohmann::json;

bool valid_ref_name(std::string_view name) {
  // OCI image layout: component ("/" component)*, component = alphanum (separator alphanum)*,
  // separator = [-._:@+] | "--".
  if (name.empty()) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  size_t i = 0;
  while (true) {
    if (i >= name.size() || !alnum(name[i])) return false;  // a component starts with alphanum
    while (i < name.size() && name[i] != '/') {
      if (alnum(name[i])) {
        ++i;
        continue;
      }
      size_t start = i;
      while (i < name.size() && !alnum(name[i]) && name[i] != '/') ++i;
      std::string_view sep = name.substr(start, i - start);
      bool ok = sep == "--" || (sep.size() == 1 &&
                                std::string_view("-._:@+").find(sep[0]) != std::string_view::npos);
      if (!ok || i >= name.size() || !alnum(name[i])) return false;  // and ends with one
    }
    if (i == name.size()) return true;
    ++i;  // '/'
  }
}

namespace {

Error bad_index(const std::string& why) {
  return make_error(EBADMSG, "read oci/index.json", why);
}

Result<json> read_index(int ocifd) {
  STRATA_ASSIGN_OR_RETURN(text, detail::read_file_at(ocifd, detail::kIndexFile, 64u << 20));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad_index("not a JSON object");
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer() || sv->get<int64_t>() != 2)
    return bad_index("schemaVersion is not 2");
  auto m = j.find("manifests");
  if (m == j.end()) {
    j["manifests"] = json::array();
  } else if (!m->is_array()) {
    return bad_index("manifests is not an array");
  }
  return j;
}

Status write_index(int ocifd, const json& j) {
  return detail::write_file_atomic(ocifd, detail::kIndexFile, j.dump(), 0644);
}

std::string ref_name_of(const json& entry) {
  if (!entry.is_object()) return {};
  auto a = entry.find("annotations");
  if (a == entry.end() || !a->is_object()) return {};
  auto n = a->find(kRefNameAnnotation);
  if (n == a->end() || !n->is_string()) return {};
  return n->get<std::string>();
}

Result<Descriptor> descriptor_from_json(const json& e) {
  auto bad = [](const std::string& why) { return make_error(EBADMSG, "descriptor", why); };
  if (!e.is_object()) return bad("not an object");
  Descriptor d;
  auto mt = e.find("mediaType");
  if (mt != e.end() && mt->is_string()) d.media_type = mt->get<std::string>();
  auto dg = e.find("digest");
  if (dg == e.end() || !dg->is_string()) return bad("no digest");
  STRATA_ASSIGN_OR_RETURN(digest, Digest::parse(dg->get<std::string>()));
  d.digest = std::move(digest);
  auto sz = e.find("size");
  if (sz == e.end() || !sz->is_number_integer() || sz->get<int64_t>() < 0)
    return bad("no valid size");
  d.size = sz->get<int64_t>();
  auto an = e.find("annotations");
  if (an != e.end() && an->is_object()) {
    for (auto it = an->begin(); it != an->end(); ++it) {
      if (it.value().is_string()) d.annotations[it.key()] = it.value().get<std::string>();
    }
  }
  return d;
}

json descriptor_to_json(const Descriptor& d, std::string_view name) {
  json e = {{"mediaType", d.media_type}, {"digest", d.digest.to_string()}, {"size", d.size}};
  json an = json::object();
  for (const auto& [k, v] : d.annotations) an[k] = v;
  an[kRefNameAnnotation] = std::string(name);
  e["annotations"] = std::move(an);
  return e;
}

}  // namespace

Status Store::set_ref(const StoreLock& lock, std::string_view name,
                      const Descriptor& descriptor) const {
  STRATA_TRY(check_lock(lock, "set ref"));
  if (!valid_ref_name(name))
    return make_error(EINVAL, "set ref", "'" + std::string(name) + "': invalid name");
  STRATA_TRY(detail::check_digest(descriptor.digest, "set ref"));
  if (descriptor.media_type.empty() || descriptor.size < 0)
    return make_error(EINVAL, "set ref",
                      std::string(name) + ": descriptor needs a mediaType and a size");
  try {
    STRATA_ASSIGN_OR_RETURN(idx, read_index(dirs_->oci.get()));
    json kept = json::array();
    size_t pos = SIZE_MAX;
    for (auto& e : idx["manifests"]) {
      if (ref_name_of(e) == name) {
        if (pos == SIZE_MAX) pos = kept.size();
        continue;
      }
      kept.push_back(std::move(e));
    }
    json entry = descriptor_to_json(descriptor, name);
    if (pos == SIZE_MAX) {
      kept.push_back(std::move(entry));
    } else {
      kept.insert(kept.begin() + static_cast<std::ptrdiff_t>(pos), std::move(entry));
    }
    idx["manifests"] = std::move(kept);
    return write_index(dirs_->oci.get(), idx);
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "set ref", e.what());
  }
}

Status Store::add_unnamed(const StoreLock& lock, const Descriptor& descriptor) const {
  STRATA_TRY(check_lock(lock, "add unnamed"));
  STRATA_TRY(detail::check_digest(descriptor.digest, "add unnamed"));
  if (descriptor.media_type.empty() || descriptor.size < 0)
    return make_error(EINVAL, "add unnamed", "descriptor needs a mediaType and a size");
  try {
    STRATA_ASSIGN_OR_RETURN(idx, read_index(dirs_->oci.get()));
    const std::string digest = descriptor.digest.to_string();
    for (const auto& e : idx["manifests"]) {
      if (ref_name_of(e).empty() && e.is_object() && e.value("digest", "") == digest) return {};
    }
    json entry = {{"mediaType", descriptor.media_type}, {"digest", digest}, {"size", descriptor.size}};
    if (!descriptor.annotations.empty()) {
      json an = json::object();
      for (const auto& [k, v] : descriptor.annotations) an[k] = v;
      entry["annotations"] = std::move(an);
    }
    idx["manifests"].push_back(std::move(entry));
    return write_index(dirs_->oci.get(), idx);
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "add unnamed", e.what());
  }
}

Result<Descriptor> Store::resolve(std::string_view name) const {
  try {
    STRATA_ASSIGN_OR_RETURN(idx, read_index(dirs_->oci.get()));
    for (const auto& e : idx["manifests"]) {
      if (ref_name_of(e) != name) continue;
      auto d = descriptor_from_json(e);
      if (!d) return make_error(EBADMSG, "resolve", std::string(name) + ": " + d.error().message());
      return d;
    }
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "resolve", e.what());
  }
  return make_error(ENOENT, "resolve", std::string(name) + ": no such image in the store");
}

Result<std::vector<Ref>> Store::list() const {
  std::vector<Ref> out;
  try {
    STRATA_ASSIGN_OR_RETURN(idx, read_index(dirs_->oci.get()));
    for (const auto& e : idx["manifests"]) {
      // Entries another tool wrote with digests we cannot name (another algorithm) are not ours to
      // list.
      auto d = descriptor_from_json(e);
      if (!d) continue;
      out.push_back(Ref{ref_name_of(e), std::move(*d)});
    }
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "list refs", e.what());
  }
  return out;
}

Status Store::remove_ref(const StoreLock& lock, std::string_view name) const {
  STRATA_TRY(check_lock(lock, "remove ref"));
  try {
    STRATA_ASSIGN_OR_RETURN(idx, read_index(dirs_->oci.get()));
    json kept = json::array();
    bool found = false;
    for (auto& e : idx["manifests"]) {
      if (ref_name_of(e) == name) {
        found = true;
        continue;
      }
      kept.push_back(std::move(e));
    }
    if (!found)
      return make_error(ENOENT, "remove ref", std::string(name) + ": no such image in the store");
    idx["manifests"] = std::move(kept);
    return write_index(dirs_->oci.get(), idx);
  } catch (const json::exception& e) {
    return make_error(EBADMSG, "remove ref", e.what());
  }
}

}  // namespace strata::store
