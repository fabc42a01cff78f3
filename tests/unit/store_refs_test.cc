// SPDX-License-Identifier: Apache-2.0
// store: refs in oci/index.json, gc, and interoperability with skopeo. The contract under test:
// index.json stays a valid OCI index through set/replace/remove, keeps what strata does not own,
// and names refs the way `oci:DIR:NAME` expects; gc frees exactly what index.json no longer reaches
// and refuses to guess when a reachable manifest is unreadable; skopeo reads an image the store
// wrote.
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "strata/store/digest.h"
#include "strata/store/store.h"
#include "tree.h"

namespace {

using nlohmann::json;
using strata::store::Descriptor;
using strata::store::Digest;
using strata::store::kMediaTypeOciConfig;
using strata::store::kMediaTypeOciIndex;
using strata::store::kMediaTypeOciManifest;
using strata::store::LayerMeta;
using strata::store::Sha256;
using strata::store::Store;
using strata::store::StoreLock;
using strata::store::StorePin;
using strata::testing::exists;
using strata::testing::read_file;
using strata::testing::TempDir;
using strata::testing::Tree;

constexpr const char* kLayerTar = "application/vnd.oci.image.layer.v1.tar";

Digest digest_of(const std::string& s) {
  return *Sha256::of(s);
}

class RefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(root);
    ASSERT_OK(s);
    store.emplace(std::move(*s));
    auto l = store->lock_exclusive();
    ASSERT_OK(l);
    lock = std::move(*l);
  }
  // Trade the fixture's StoreLock for gc's (the same lock, plus running pulls excluded).
  void take_gc_lock() {
    lock = StoreLock();
    auto l = store->lock_for_gc();
    ASSERT_OK(l);
    lock = std::move(*l);
  }
  json index() const { return json::parse(read_file(root + "/oci/index.json")); }
  Descriptor put(const std::string& bytes, const std::string& media_type) {
    auto d = store->write_blob(bytes);
    if (!d) throw std::runtime_error(d.error().message());
    return Descriptor{media_type, *d, static_cast<int64_t>(bytes.size()), {}};
  }
  // config + one layer blob + manifest, all in blobs/; returns the manifest's descriptor.
  struct Image {
    Descriptor manifest, config, layer;
    Digest diff_id;
  };
  Image image(const std::string& layer_bytes, const std::string& tag) {
    Image im;
    im.layer = put(layer_bytes, kLayerTar);
    im.diff_id = im.layer.digest;  // uncompressed layer: diff_id == blob digest
    json config = {{"architecture", "amd64"},
                   {"os", "linux"},
                   {"config", json::object()},
                   {"rootfs", {{"type", "layers"}, {"diff_ids", {im.diff_id.to_string()}}}},
                   {"history", json::array({{{"created_by", tag}}})}};
    im.config = put(config.dump(), kMediaTypeOciConfig);
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", kMediaTypeOciManifest},
                     {"config",
                      {{"mediaType", kMediaTypeOciConfig},
                       {"digest", im.config.digest.to_string()},
                       {"size", im.config.size}}},
                     {"layers",
                      {{{"mediaType", kLayerTar},
                        {"digest", im.layer.digest.to_string()},
                        {"size", im.layer.size}}}}};
    im.manifest = put(manifest.dump(), kMediaTypeOciManifest);
    return im;
  }

  TempDir tmp;
  std::string root = tmp.path() + "/store";
  std::optional<Store> store;
  StoreLock lock;
};

TEST(RefName, Grammar) {
  for (const char* good : {"latest", "docker.io/library/alpine:3.19", "a--b", "v1.0+build", "x@y",
                           "A_b-C.d", "registry:5000/ns/repo:tag"})
    EXPECT_TRUE(strata::store::valid_ref_name(good)) << good;
  for (const char* bad :
       {"", "-a", "a-", "a//b", "/a", "a/", "a b", "a---b", "a..b", "a-.b", "é", "a:\n"})
    EXPECT_FALSE(strata::store::valid_ref_name(bad)) << bad;
}

TEST_F(RefsTest, SetResolveReplaceRemove) {
  auto one = put("{\"v\":1}", kMediaTypeOciManifest);
  auto two = put("{\"v\":2}", kMediaTypeOciManifest);
  one.annotations["org.opencontainers.image.created"] = "2024-01-01T00:00:00Z";
  ASSERT_OK(store->set_ref(lock, "alpine:3.19", one));
  ASSERT_OK(store->set_ref(lock, "busybox", two));
  auto r = store->resolve("alpine:3.19");
  ASSERT_OK(r);
  EXPECT_EQ(r->digest, one.digest);
  EXPECT_EQ(r->size, one.size);
  EXPECT_EQ(r->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(r->annotations.at("org.opencontainers.image.created"), "2024-01-01T00:00:00Z");
  EXPECT_EQ(r->annotations.at(strata::store::kRefNameAnnotation), "alpine:3.19");

  ASSERT_OK(store->set_ref(lock, "alpine:3.19", two));  // replace, keeping its place
  json j = index();
  EXPECT_EQ(j["schemaVersion"], 2);
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][0]["annotations"][strata::store::kRefNameAnnotation], "alpine:3.19");
  EXPECT_EQ(j["manifests"][0]["digest"], two.digest.to_string());
  EXPECT_FALSE(j["manifests"][0]["annotations"].contains("org.opencontainers.image.created"));
  for (const auto& m : j["manifests"]) {
    EXPECT_TRUE(m["mediaType"].is_string());
    EXPECT_TRUE(m["digest"].is_string());
    EXPECT_TRUE(m["size"].is_number_integer());
  }
  auto all = store->list();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].name, "busybox");

  ASSERT_OK(store->remove_ref(lock, "alpine:3.19"));
  EXPECT_ERRNO(store->resolve("alpine:3.19"), ENOENT);
  EXPECT_ERRNO(store->remove_ref(lock, "alpine:3.19"), ENOENT);
  j = index();
  ASSERT_EQ(j["manifests"].size(), 1u);
  EXPECT_EQ(j["manifests"][0]["annotations"][strata::store::kRefNameAnnotation], "busybox");
  // No temporaries left next to index.json.
  EXPECT_EQ(strata::testing::ls(root + "/oci"),
            (std::vector<std::string>{"blobs", "index.json", "oci-layout"}));
}

TEST_F(RefsTest, RefusesBadInput) {
  auto one = put("{}", kMediaTypeOciManifest);
  EXPECT_ERRNO(store->set_ref(StoreLock(), "x", one), EINVAL);
  EXPECT_ERRNO(store->set_ref(lock, "bad name", one), EINVAL);
  EXPECT_ERRNO(store->set_ref(lock, "x", Descriptor{"", one.digest, 2, {}}), EINVAL);
  EXPECT_ERRNO(store->set_ref(lock, "x", Descriptor{kMediaTypeOciManifest, Digest{}, 2, {}}),
               EINVAL);
  EXPECT_TRUE(index()["manifests"].empty());
}

TEST_F(RefsTest, KeepsWhatItDoesNotOwn) {
  auto one = put("{}", kMediaTypeOciManifest);
  json foreign = {{"schemaVersion", 2},
                  {"mediaType", kMediaTypeOciIndex},
                  {"annotations", {{"made.by", "someone"}}},
                  {"manifests",
                   {{{"mediaType", kMediaTypeOciManifest},
                     {"digest", one.digest.to_string()},
                     {"size", one.size},
                     {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}}}};
  Tree(root + "/oci").file("index.json", foreign.dump());
  ASSERT_OK(store->set_ref(lock, "mine", one));
  json j = index();
  EXPECT_EQ(j["annotations"]["made.by"], "someone");
  EXPECT_EQ(j["mediaType"], kMediaTypeOciIndex);
  ASSERT_EQ(j["manifests"].size(), 2u);
  EXPECT_EQ(j["manifests"][0]["platform"]["architecture"], "arm64");
  auto all = store->list();
  ASSERT_OK(all);
  EXPECT_EQ((*all)[0].name, "");
  EXPECT_EQ((*all)[1].name, "mine");
}

TEST_F(RefsTest, BrokenIndexIsAnError) {
  Tree(root + "/oci").file("index.json", R"({"schemaVersion":1,"manifests":[]})");
  auto one = put("{}", kMediaTypeOciManifest);
  EXPECT_ERRNO(store->set_ref(lock, "x", one), EBADMSG);
  Tree(root + "/oci").file("index.json", "not json");
  EXPECT_ERRNO(store->list(), EBADMSG);
  EXPECT_ERRNO(store->referenced(), EBADMSG);
}

TEST_F(RefsTest, GcFreesOnlyUnreachable) {
  Image a = image("layer A", "a");
  Image b = image("layer B", "b");
  ASSERT_OK(store->set_ref(lock, "a", a.manifest));
  // b reached through a nested index that also lists a manifest we never pulled.
  json idx = {{"schemaVersion", 2},
              {"mediaType", kMediaTypeOciIndex},
              {"manifests",
               {{{"mediaType", kMediaTypeOciManifest},
                 {"digest", b.manifest.digest.to_string()},
                 {"size", b.manifest.size}},
                {{"mediaType", kMediaTypeOciManifest},
                 {"digest", digest_of("never pulled").to_string()},
                 {"size", 12}}}}};
  auto top = put(idx.dump(), kMediaTypeOciIndex);
  ASSERT_OK(store->set_ref(lock, "b", top));
  auto orphan = put("orphan blob", kLayerTar);
  for (const Digest& id :
       {a.diff_id, b.diff_id, digest_of("orphan layer"), digest_of("mounted layer")}) {
    auto t = store->begin_layer(id);
    ASSERT_OK(t);
    ASSERT_OK(store->commit_layer(std::move(*t), LayerMeta{id, 1, "", std::nullopt}));
  }
  auto reach = store->referenced();
  ASSERT_OK(reach);
  EXPECT_EQ(reach->blobs.count(b.layer.digest), 1u);
  EXPECT_EQ(reach->blobs.count(orphan.digest), 0u);
  EXPECT_EQ(reach->diff_ids, (std::set<Digest>{a.diff_id, b.diff_id}));

  std::set<Digest> in_use = {digest_of("mounted layer")};
  EXPECT_ERRNO(store->gc(lock, true, in_use), EINVAL) << "a plain StoreLock does not exclude pulls";
  take_gc_lock();
  auto dry = store->gc(lock, true, in_use);
  ASSERT_OK(dry);
  EXPECT_EQ(dry->blobs, std::vector<Digest>{orphan.digest});
  EXPECT_EQ(dry->layers, std::vector<Digest>{digest_of("orphan layer")});
  EXPECT_EQ(dry->bytes, 11u);
  EXPECT_TRUE(store->has_blob(orphan.digest));
  EXPECT_TRUE(store->has_layer(digest_of("orphan layer")));

  auto real = store->gc(lock, false, in_use);
  ASSERT_OK(real);
  EXPECT_EQ(real->blobs, std::vector<Digest>{orphan.digest});
  EXPECT_FALSE(store->has_blob(orphan.digest));
  EXPECT_FALSE(store->has_layer(digest_of("orphan layer")));
  for (const Image* im : {&a, &b})
    for (const Descriptor* d : {&im->manifest, &im->config, &im->layer})
      EXPECT_TRUE(store->has_blob(d->digest));
  EXPECT_TRUE(store->has_blob(top.digest));
  EXPECT_TRUE(store->has_layer(a.diff_id));
  EXPECT_TRUE(store->has_layer(b.diff_id));
  EXPECT_TRUE(store->has_layer(digest_of("mounted layer")));

  // Untagging a frees its manifest, config, layer blob and unpacked layer; b's stay.
  ASSERT_OK(store->remove_ref(lock, "a"));
  auto after = store->gc(lock, false, {});
  ASSERT_OK(after);
  EXPECT_EQ(after->blobs.size(), 3u);
  EXPECT_FALSE(store->has_blob(a.manifest.digest));
  EXPECT_FALSE(store->has_layer(a.diff_id));
  EXPECT_TRUE(store->has_blob(b.layer.digest));
  EXPECT_TRUE(store->has_layer(b.diff_id));
  EXPECT_ERRNO(store->gc(StoreLock(), false, {}), EINVAL);
}

TEST_F(RefsTest, GcRefusesWhenAReachableManifestIsUnreadable) {
  auto bad = put("this is not json", kMediaTypeOciManifest);
  auto orphan = put("orphan", kLayerTar);
  ASSERT_OK(store->set_ref(lock, "bad", bad));
  take_gc_lock();
  EXPECT_ERRNO(store->gc(lock, false, {}), EBADMSG);
  EXPECT_TRUE(store->has_blob(orphan.digest));
}

TEST_F(RefsTest, GcWaitsForPinsAndPinsWaitForGc) {
  lock = StoreLock();
  auto pin = store->pin();
  ASSERT_OK(pin);
  auto pin2 = store->pin();  // pins share
  ASSERT_OK(pin2);
  std::atomic<bool> got{false};
  std::thread gc([&] {
    auto l = store->lock_for_gc();
    got = l.has_value();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(got.load()) << "gc ran while a pull held a pin";
  *pin = StorePin();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(got.load()) << "gc ran while the second pin was held";
  *pin2 = StorePin();
  gc.join();
  EXPECT_TRUE(got.load());

  auto g = store->lock_for_gc();
  ASSERT_OK(g);
  std::atomic<bool> pinned{false};
  std::thread puller([&] { pinned = store->pin().has_value(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(pinned.load()) << "a pin was taken while gc ran";
  *g = StoreLock();
  puller.join();
  EXPECT_TRUE(pinned.load());
}

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

TEST_F(RefsTest, SkopeoReadsTheLayout) {
  int st = 0;
  run("skopeo --version >/dev/null 2>&1", &st);
  if (st != 0) GTEST_SKIP() << "skopeo is not installed";
  std::string empty_tar(1024, '\0');  // a valid tar with no entries
  Image im = image(empty_tar, "skopeo");
  ASSERT_OK(store->set_ref(lock, "test:1", im.manifest));
  std::string ref = "oci:" + root + "/oci:test:1";
  std::string raw = run("skopeo inspect --raw '" + ref + "' 2>&1", &st);
  ASSERT_EQ(st, 0) << raw;
  EXPECT_EQ(raw, *store->read_blob(im.manifest.digest));
  std::string info = run("skopeo inspect '" + ref + "' 2>&1", &st);
  ASSERT_EQ(st, 0) << info;
  json j = json::parse(info);
  EXPECT_EQ(j["Digest"], im.manifest.digest.to_string());
  EXPECT_EQ(j["Os"], "linux");
  // copy verifies every blob's digest and size on the way.
  std::string out =
      run("skopeo copy --quiet '" + ref + "' 'dir:" + tmp.path() + "/copy' 2>&1", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_TRUE(exists(tmp.path() + "/copy/" + im.layer.digest.hex));
  // And the other way: skopeo writes into the layout next to our ref without breaking our index.
  out = run(
      "skopeo copy --quiet 'dir:" + tmp.path() + "/copy' '" + "oci:" + root + "/oci:other' 2>&1",
      &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_OK(store->resolve("test:1"));
  EXPECT_OK(store->resolve("other"));
}

}  // namespace
