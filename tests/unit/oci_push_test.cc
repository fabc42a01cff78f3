// SPDX-License-Identifier: Apache-2.0
// push without a network: the upload URL rules of the distribution API, the URL and base64 helpers
// the registry client shares with pull, and push() into an oci: layout from a real store (what is
// copied, what is skipped the second time, what is refused before anything is written).
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>

#include "strata/oci/push.h"
#include "strata/oci/reference.h"
#include "strata/oci/registry.h"
#include "strata/oci/registry_client.h"
#include "strata/store/store.h"
#include "tree.h"

namespace {

using nlohmann::json;
using namespace strata::oci;
using strata::Result;
using strata::store::Digest;
using strata::store::Sha256;
using strata::store::Store;
using strata::testing::exists;
using strata::testing::read_file;
using strata::testing::TempDir;

const Digest kDigest = *Digest::parse("sha256:" + std::string(64, 'a'));
const std::string kEscaped = "sha256%3A" + std::string(64, 'a');

TEST(UploadUrl, RelativeWithStateQuery) {
  auto u = upload_url("http://127.0.0.1:5000", "/v2/x/blobs/uploads/abc?_state=s%3D1", kDigest);
  ASSERT_OK(u);
  EXPECT_EQ(*u, "http://127.0.0.1:5000/v2/x/blobs/uploads/abc?_state=s%3D1&digest=" + kEscaped);
}

TEST(UploadUrl, RelativeWithoutQuery) {
  auto u = upload_url("https://r.example", "/v2/x/blobs/uploads/abc", kDigest);
  ASSERT_OK(u);
  EXPECT_EQ(*u, "https://r.example/v2/x/blobs/uploads/abc?digest=" + kEscaped);
}

TEST(UploadUrl, RelativeWithoutLeadingSlashAndTrailingSeparators) {
  auto u = upload_url("https://r.example/", "v2/x/up?", kDigest);
  ASSERT_OK(u);
  EXPECT_EQ(*u, "https://r.example/v2/x/up?digest=" + kEscaped);
  u = upload_url("https://r.example", "/up?a=1&", kDigest);
  ASSERT_OK(u);
  EXPECT_EQ(*u, "https://r.example/up?a=1&digest=" + kEscaped);
}

TEST(UploadUrl, AbsoluteLocationElsewhereKept) {
  auto u = upload_url("https://r.example", "https://storage.example:8443/up/1?sig=x", kDigest);
  ASSERT_OK(u);
  EXPECT_EQ(*u, "https://storage.example:8443/up/1?sig=x&digest=" + kEscaped);
}

TEST(UploadUrl, EmptyOrFragmentRefused) {
  EXPECT_ERRNO(upload_url("https://r.example", "", kDigest), EBADMSG);
  EXPECT_ERRNO(upload_url("https://r.example", "/up#frag", kDigest), EBADMSG);
}

TEST(UrlOrigin, SchemeAndAuthority) {
  EXPECT_EQ(url_origin("https://H.example:5000/v2/x?y"), "https://h.example:5000");
  EXPECT_EQ(url_origin("http://127.0.0.1:1"), "http://127.0.0.1:1");
  EXPECT_EQ(url_origin("/v2/x"), "");
  EXPECT_EQ(url_origin("v2/x?u=http://a"), "");
}

TEST(Base64, RoundTripsEveryLength) {
  std::string s;
  for (int i = 0; i < 10; ++i) {
    auto back = base64_decode(base64_encode(s));
    ASSERT_OK(back);
    EXPECT_EQ(*back, s);
    s.push_back(static_cast<char>(0xf0 + i));
  }
  EXPECT_EQ(base64_encode("tester:s3cret"), "dGVzdGVyOnMzY3JldA==");
}

// A store holding one image: a layer blob, its config and manifest, named localhost/t:1.
class PushLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(tmp.path() + "/root");
    ASSERT_OK(s);
    store.emplace(std::move(*s));
    layer = put("layer bytes (push copies blobs as they are)");
    json cfg = {{"architecture", "amd64"},
                {"os", "linux"},
                {"rootfs", {{"type", "layers"}, {"diff_ids", {layer.to_string()}}}}};
    config_body = cfg.dump();
    config = put(config_body);
    top = manifest_for({layer});
  }

  Digest put(const std::string& body) {
    auto d = store->write_blob(body);
    if (!d) throw std::runtime_error(d.error().message());
    return *d;
  }

  Descriptor manifest_for(const std::vector<Digest>& layers) {
    json m = {{"schemaVersion", 2},
              {"mediaType", strata::store::kMediaTypeOciManifest},
              {"config",
               {{"mediaType", strata::store::kMediaTypeOciConfig},
                {"digest", config.to_string()},
                {"size", config_body.size()}}},
              {"layers", json::array()}};
    for (const auto& l : layers) {
      auto size = store->blob_size(l);
      m["layers"].push_back({{"mediaType", kMediaTypeOciLayer},
                             {"digest", l.to_string()},
                             {"size", size ? *size : 7}});
    }
    std::string body = m.dump();
    Descriptor d;
    d.media_type = strata::store::kMediaTypeOciManifest;
    d.digest = put(body);
    d.size = static_cast<int64_t>(body.size());
    return d;
  }

  Result<PushResult> push_to(const std::string& dir, const std::string& tag, const Descriptor& d) {
    auto ref = parse_reference("oci:" + dir + (tag.empty() ? "" : ":" + tag));
    if (!ref) return ref.take_error();
    auto dest = open_destination(*ref, RegistryOptions{});
    if (!dest) return dest.take_error();
    PushOptions o;
    o.tag = ref->tag;
    o.on_blob = [this](const LayerEvent& e) {
      if (e.kind == LayerEvent::kQueued) ++queued;
    };
    return push(*store, d, **dest, o);
  }

  TempDir tmp;
  std::optional<Store> store;
  Digest layer, config;
  std::string config_body;
  Descriptor top;
  std::atomic<int> queued{0};
};

TEST_F(PushLayout, CopiesThenSkips) {
  std::string out = tmp.path() + "/out";
  auto r = push_to(out, "v1", top);
  ASSERT_OK(r);
  EXPECT_EQ(r->blobs_pushed, 2);
  EXPECT_EQ(r->blobs_existing, 0);
  EXPECT_EQ(queued.load(), 2);
  EXPECT_EQ(r->manifest.digest, top.digest);
  for (const auto& d : {layer, config, top.digest}) {
    std::string body = read_file(out + "/blobs/sha256/" + d.hex);
    EXPECT_EQ(*Sha256::of(body), d);
  }
  json idx = json::parse(read_file(out + "/index.json"));
  ASSERT_EQ(idx["manifests"].size(), 1u);
  EXPECT_EQ(idx["manifests"][0]["digest"], top.digest.to_string());
  EXPECT_EQ(idx["manifests"][0]["annotations"][strata::store::kRefNameAnnotation], "v1");
  EXPECT_TRUE(exists(out + "/oci-layout"));

  r = push_to(out, "v1", top);
  ASSERT_OK(r);
  EXPECT_EQ(r->blobs_pushed, 0);
  EXPECT_EQ(r->blobs_existing, 2);
  r = push_to(out, "v2", top);
  ASSERT_OK(r);
  idx = json::parse(read_file(out + "/index.json"));
  EXPECT_EQ(idx["manifests"].size(), 2u);  // v1 kept, v2 added; a re-push replaced v1
}

TEST_F(PushLayout, IndexWithMissingChildRefusedBeforeWriting) {
  json ix = {{"schemaVersion", 2},
             {"mediaType", strata::store::kMediaTypeOciIndex},
             {"manifests",
              {{{"mediaType", strata::store::kMediaTypeOciManifest},
                {"digest", top.digest.to_string()},
                {"size", top.size},
                {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}},
               {{"mediaType", strata::store::kMediaTypeOciManifest},
                {"digest", kDigest.to_string()},
                {"size", 10},
                {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}}}}};
  std::string body = ix.dump();
  Descriptor d;
  d.media_type = strata::store::kMediaTypeOciIndex;
  d.digest = put(body);
  d.size = static_cast<int64_t>(body.size());
  std::string out = tmp.path() + "/out";
  auto r = push_to(out, "multi", d);
  EXPECT_ERRNO(r, EINVAL);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(kDigest.to_string()), std::string::npos);
  EXPECT_NE(r.error().message().find("linux/arm64"), std::string::npos);
  EXPECT_FALSE(exists(out + "/index.json"));
  EXPECT_FALSE(exists(out + "/blobs/sha256/" + layer.hex));
}

TEST_F(PushLayout, IndexWithEveryChildPushesThemAll) {
  json ix = {{"schemaVersion", 2},
             {"mediaType", strata::store::kMediaTypeOciIndex},
             {"manifests",
              {{{"mediaType", strata::store::kMediaTypeOciManifest},
                {"digest", top.digest.to_string()},
                {"size", top.size},
                {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  std::string body = ix.dump();
  Descriptor d{strata::store::kMediaTypeOciIndex, put(body), static_cast<int64_t>(body.size()), {}};
  std::string out = tmp.path() + "/out";
  auto r = push_to(out, "multi", d);
  ASSERT_OK(r);
  EXPECT_EQ(r->manifests, 2);
  EXPECT_TRUE(exists(out + "/blobs/sha256/" + top.digest.hex));
  json idx = json::parse(read_file(out + "/index.json"));
  EXPECT_EQ(idx["manifests"][0]["mediaType"], strata::store::kMediaTypeOciIndex);
}

TEST_F(PushLayout, BlobNeitherInStoreNorThereIsNamed) {
  Descriptor m = manifest_for({layer, kDigest});
  auto r = push_to(tmp.path() + "/out", "v1", m);
  EXPECT_ERRNO(r, ENOENT);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find(kDigest.to_string()), std::string::npos);
  EXPECT_FALSE(exists(tmp.path() + "/out/index.json"));
}

}  // namespace
