// SPDX-License-Identifier: Apache-2.0
// Lookup across layers and the merged directory listing.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_set>

#include "strata/merge/overlay.h"
#include "strata/sys/fs.h"
#include "strata/whiteout/whiteout.h"

namespace strata::merge {

namespace wo = strata::whiteout;

Result<bool> Overlay::is_whiteout_at(int dirfd, const std::string& name, const struct stat& st, uint8_t flags) {
  if (wo::is_whiteout_device(st)) return true;
  if (S_ISREG(st.st_mode) && st.st_size == 0 && (flags & kXattrWhiteouts)) {
    for (const char* x : {wo::kTrustedWhiteout, wo::kUserWhiteout}) {
      auto v = sys::get_xattr_raw(dirfd, name.c_str(), x, nullptr, 0);
      if (v) return true;
    }
  }
  return false;
}

// 0: not opaque, 1: opaque, 2: may hold xattr whiteouts.
Result<int> Overlay::opaque_of(int dirfd) {
  int result = 0;
  auto names = sys::list_xattr(dirfd, "");
  if (names) {
    for (const auto& n : *names) {
      if (n != wo::kTrustedOpaque && n != wo::kUserOpaque && n != wo::kFuseOverlayfsOpaque) continue;
      auto v = sys::get_xattr(dirfd, "", n.c_str());
      if (!v) continue;
      auto o = wo::parse_opaque(*v);
      if (o == wo::OpaqueValue::kOpaque) return 1;
      if (o == wo::OpaqueValue::kHasXattrWhiteouts) result = 2;
    }
  } else if (names.error().err != ENOTSUP && names.error().err != EOPNOTSUPP) {
    return names.take_error();
  }
  auto marker = sys::stat_at(dirfd, std::string(wo::kOpaqueMarker).c_str());
  if (marker) return 1;
  return result;
}

Result<Overlay::Probe> Overlay::probe(Node* parent, const std::string& name, bool skip_upper, bool open_dirs) {
  std::vector<int> layers;
  std::vector<uint8_t> flags;
  snapshot_layers(parent, &layers, &flags);
  Probe p;
  for (size_t i = 0; i < layers.size(); ++i) {
    int L = layers[i];
    if (skip_upper && has_upper_ && L == 0) continue;
    auto pfd = dir_fd_layer(parent, L);
    if (!pfd) return pfd.take_error();
    int fd = (*pfd)->get();
    auto st = sys::stat_at(fd, name.c_str());
    if (!st) {
      int e = st.error().err;
      if (e != ENOENT) return st.take_error();
      if (name.size() + wo::kPrefix.size() <= 255 && sys::stat_at(fd, wo::whiteout_name(name).c_str())) break;
      continue;
    }
    auto w = is_whiteout_at(fd, name, *st, flags[i]);
    if (!w) return w.take_error();
    if (*w) break;
    if (!p.found) {
      p.found = true;
      p.layer = L;
      p.st = *st;
      if (!S_ISDIR(st->st_mode)) break;
    } else if (!S_ISDIR(st->st_mode)) {
      break;  // a non-directory below a directory hides the rest
    }
    if (!open_dirs) {
      // Callers that only ask "is something there" stop at the first hit.
      break;
    }
    auto cfd = sys::open_at(fd, name.c_str(), O_PATH | O_DIRECTORY);
    if (!cfd) return cfd.take_error();
    auto opq = opaque_of(cfd->get());
    if (!opq) return opq.take_error();
    p.layers.push_back(L);
    p.flags.push_back(*opq == 2 ? kXattrWhiteouts : 0);
    p.fds.push_back(std::make_shared<const UniqueFd>(std::move(*cfd)));
    if (*opq == 1) {
      if (p.layers.size() == 1) p.opaque_top = true;
      break;
    }
  }
  return p;
}

Result<bool> Overlay::lower_has(Node* parent, const std::string& name) {
  auto p = probe(parent, name, true, false);
  if (!p) return p.take_error();
  return p->found;
}

Result<Overlay::UpperState> Overlay::upper_state(int upperfd, const std::string& name) {
  UpperState u;
  auto st = sys::stat_at(upperfd, name.c_str());
  if (st) {
    u.st = *st;
    u.kind = wo::is_whiteout_device(*st) ? UpperState::kWhiteout : UpperState::kEntry;
    return u;
  }
  if (st.error().err != ENOENT) return st.take_error();
  if (name.size() + wo::kPrefix.size() <= 255 && sys::stat_at(upperfd, wo::whiteout_name(name).c_str()))
    u.kind = UpperState::kWhiteoutFile;
  return u;
}

std::string Overlay::index_name_for(const struct stat& lower) const {
  char buf[64];
  snprintf(buf, sizeof buf, "%llx-%llx", static_cast<unsigned long long>(lower.st_dev),
           static_cast<unsigned long long>(lower.st_ino));
  return buf;
}

Status Overlay::check_index(Probe* p) {
  std::string idx = index_name_for(p->st);
  auto st = sys::stat_at(index_->get(), idx.c_str());
  if (!st) return st.error().err == ENOENT ? Status{} : Status{st.take_error()};
  if ((st->st_mode & S_IFMT) != (p->st.st_mode & S_IFMT)) return {};  // not ours: ignore
  // Copied up through another name earlier: the upper inode in the index is this name's object now.
  p->ino = map_ino(p->layer, p->st);
  p->layer = 0;
  p->st = *st;
  p->index_name = std::move(idx);
  auto d = sys::get_xattr(index_->get(), p->index_name.c_str(), nlink_xattr_);
  if (d) p->nlink_delta = std::atoi(d->c_str());
  return {};
}

Result<Entry> Overlay::make_entry(Node* parent, const std::string& name, Probe&& p) {
  mode_t type = p.st.st_mode & S_IFMT;
  // Names of one inode share one node: the kernel then sees one inode, with one page cache.
  std::optional<LinkKey> key;
  if (type != S_IFDIR && p.st.st_nlink > 1 && p.index_name.empty()) {
    if (p.layer != 0 && index_) STRATA_TRY(check_index(&p));
  }
  if (type != S_IFDIR && (p.st.st_nlink > 1 || !p.index_name.empty()))
    key = LinkKey{p.index_name.empty() ? p.layer : 0, p.st.st_dev, p.st.st_ino};
  auto node = std::make_unique<Node>(parent, name, type, p.ino ? p.ino : map_ino(p.layer, p.st), p.layer);
  node->index_name = std::move(p.index_name);
  node->nlink_delta = p.nlink_delta;
  if (type == S_IFDIR) {
    node->layers = std::move(p.layers);
    node->layer_flags = std::move(p.flags);
    node->fds = std::move(p.fds);
    node->opaque_upper = p.opaque_top && p.layer == 0 && has_upper_;
  }
  size_t nfds = 0;
  for (auto& f : node->fds) nfds += f ? 1 : 0;
  Node* raw = node.get();
  NodeRef ref = table_.insert_child(std::move(node), key ? &*key : nullptr);
  if (ref.get() == raw && nfds) fd_cache_.add(raw, nfds);
  struct stat st = p.st;
  if (ref.get() != raw) {
    // Another thread created the node first: report its attributes, not the probe's.
    auto cur = getattr(ref.get());
    if (!cur) return cur.take_error();
    return Entry{std::move(ref), *cur};
  }
  return Entry{std::move(ref), fix_stat(raw, st)};
}

Result<Entry> Overlay::find_or_probe(Node* parent, const std::string& name) {
  if (NodeRef c = table_.find_child(parent, name)) {
    auto st = getattr(c.get());
    if (st) return Entry{std::move(c), *st};
    if (st.error().err != ENOENT) return st.take_error();
    // Changed behind our back (someone edited a layer while mounted): forget it and look again.
    table_.detach_child(parent, name).reset();
  }
  auto p = probe(parent, name, false, true);
  if (!p) return p.take_error();
  if (!p->found) return make_error(ENOENT, "lookup", name);
  return make_entry(parent, name, std::move(*p));
}

Result<Entry> Overlay::lookup(Node* parent, const std::string& name) {
  if (!parent->is_dir()) return make_error(ENOTDIR, "lookup", name);
  if (name.size() > 255) return make_error(ENAMETOOLONG, "lookup", name);
  if (wo::is_reserved_name(name)) return make_error(ENOENT, "lookup", name);
  return find_or_probe(parent, name);
}

Result<std::vector<DirEntry>> Overlay::merged_entries(Node* dir, bool stop_at_first) {
  std::vector<int> layers;
  std::vector<uint8_t> flags;
  snapshot_layers(dir, &layers, &flags);
  std::vector<DirEntry> out;
  std::unordered_set<std::string> seen, hidden;
  for (size_t i = 0; i < layers.size(); ++i) {
    int L = layers[i];
    auto fd = dir_fd_layer(dir, L);
    if (!fd) return fd.take_error();
    auto ents = sys::read_dir((*fd)->get());
    if (!ents) return ents.take_error();
    bool last = i + 1 == layers.size();
    std::vector<std::string> layer_whiteouts;
    for (auto& e : *ents) {
      if (e.name == wo::kOpaqueMarker) continue;
      if (wo::is_reserved_name(e.name)) {
        if (wo::is_whiteout_name(e.name) && !last) layer_whiteouts.emplace_back(wo::whited_out(e.name));
        continue;
      }
      if (hidden.count(e.name) || seen.count(e.name)) continue;
      if (e.type == DT_CHR || e.type == DT_UNKNOWN || (e.type == DT_REG && (flags[i] & kXattrWhiteouts))) {
        auto st = sys::stat_at((*fd)->get(), e.name.c_str());
        if (!st) {
          if (st.error().err == ENOENT) continue;
          return st.take_error();
        }
        auto w = is_whiteout_at((*fd)->get(), e.name, *st, flags[i]);
        if (!w) return w.take_error();
        if (*w) {
          if (!last) hidden.insert(std::move(e.name));
          continue;
        }
        e.type = static_cast<unsigned char>(IFTODT(st->st_mode));
      }
      struct stat fake {};
      fake.st_ino = e.ino;
      if (!last) seen.insert(e.name);
      out.push_back(DirEntry{std::move(e.name), map_ino(L, fake), e.type, L});
      if (stop_at_first) return out;
    }
    for (auto& w : layer_whiteouts) hidden.insert(std::move(w));
  }
  return out;
}

namespace {

// FNV-1a, then a murmur3 finalizer so that similar names spread; 0-2 are taken by the start, "." and "..".
uint64_t cookie_of(const std::string& name) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h &= (1ull << 63) - 1;  // offsets are signed
  return h < 3 ? h + 3 : h;
}

}  // namespace

Result<std::shared_ptr<const Listing>> Overlay::listing(Node* dir) {
  if (!dir->is_dir()) return make_error(ENOTDIR, "readdir");
  uint64_t gen = dir->dir_gen.load(std::memory_order_acquire);
  {
    std::lock_guard lk(dir->mu);
    if (dir->listing && dir->listing->gen == gen) {
      if (dir->listing->prefetched.load(std::memory_order_relaxed) && dir->listing->prefetched.exchange(false))
        prefetch_used_.fetch_add(1, std::memory_order_relaxed);
      return dir->listing;
    }
  }
  return take_listing(dir, gen, false);
}

bool Overlay::prefetch_listing(Node* dir) {
  if (!dir->is_dir()) return false;
  uint64_t gen = dir->dir_gen.load(std::memory_order_acquire);
  if (dir->read_gen.load(std::memory_order_relaxed) == gen + 1) return false;
  {
    std::lock_guard lk(dir->mu);
    if (dir->listing && dir->listing->gen == gen) return false;
  }
  auto l = take_listing(dir, gen, true);
  if (!l) return false;
  prefetched_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Overlay::drop_prefetched(Node* dir) {
  std::shared_ptr<const Listing> old;  // freed outside the lock
  std::lock_guard lk(dir->mu);
  if (dir->listing && dir->listing->prefetched.load(std::memory_order_relaxed)) old = std::move(dir->listing);
}

Result<std::shared_ptr<const Listing>> Overlay::take_listing(Node* dir, uint64_t gen, bool prefetch) {
  auto ents = merged_entries(dir, false);
  if (!ents) return ents.take_error();
  // d_ino must match st_ino: names the kernel already knows report their node's number (it may be the
  // origin's after a copy-up).
  table_.fix_inos(dir, *ents);
  // Sorting (cookie, index) keys rather than entries: swapping entries moved their strings (perf: a sixth of
  // the daemon's time for a 10,000-entry directory).
  std::vector<std::pair<uint64_t, size_t>> keys(ents->size());
  for (size_t i = 0; i < keys.size(); ++i) keys[i] = {cookie_of((*ents)[i].name), i};
  std::sort(keys.begin(), keys.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : (*ents)[a.second].name < (*ents)[b.second].name;
  });
  auto l = std::make_shared<Listing>();
  l->gen = gen;
  l->prefetched.store(prefetch, std::memory_order_relaxed);
  l->entries.reserve(keys.size());
  for (const auto& [cookie, i] : keys) {
    l->entries.push_back(std::move((*ents)[i]));
    l->entries.back().cookie = cookie;
  }
  size_t n = l->entries.size();
  if (listed_.fetch_add(n, std::memory_order_relaxed) + n <= kListingCacheEntries) {
    l->accounted = &listed_;
    std::lock_guard lk(dir->mu);
    dir->listing = l;
  } else {
    listed_.fetch_sub(n, std::memory_order_relaxed);
  }
  return std::shared_ptr<const Listing>(std::move(l));
}

void Overlay::drop_listing(Node* dir) {
  std::shared_ptr<const Listing> old;  // freed outside the lock
  std::lock_guard lk(dir->mu);
  old = std::move(dir->listing);
}

Result<Entry> Overlay::lookup_listed(Node* dir, const Listing& l, size_t i) {
  const DirEntry& de = l.entries[i];
  if (de.type == DT_DIR || dir->dir_gen.load(std::memory_order_acquire) != l.gen)
    return lookup(dir, de.name);
  if (NodeRef c = table_.find_child(dir, de.name)) {
    auto st = getattr(c.get());
    if (!st) return st.take_error();
    return Entry{std::move(c), *st};
  }
  // The listing says which layer holds the name and that nothing above hides it.
  auto fd = dir_fd_layer(dir, de.layer);
  if (!fd) return fd.take_error();
  auto st = sys::stat_at((*fd)->get(), de.name.c_str());
  if (!st) return st.take_error();
  if (S_ISDIR(st->st_mode)) return lookup(dir, de.name);
  Probe p;
  p.found = true;
  p.layer = de.layer;
  p.st = *st;
  return make_entry(dir, de.name, std::move(p));
}

}  // namespace strata::merge
