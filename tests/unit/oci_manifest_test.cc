// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <vector>

#include "strata/oci/manifest.h"

using namespace strata::oci;

namespace {
std::string hex(char c) { return std::string(64, c); }
std::string desc(const std::string& mt, char c, int size, const std::string& extra = "") {
  return R"({"mediaType":")" + mt + R"(","digest":"sha256:)" + hex(c) + R"(","size":)" + std::to_string(size) +
         extra + "}";
}
}  // namespace

TEST(Manifest, OciAndDocker) {
  std::string body = R"({"schemaVersion":2,"config":)" + desc("application/vnd.oci.image.config.v1+json", 'a', 10) +
                     R"(,"layers":[)" + desc(kMediaTypeOciLayerGzip, 'b', 20) + "," +
                     desc(kMediaTypeOciLayerZstd, 'c', 30) + "," + desc(kMediaTypeOciLayer, 'd', 40) + "]}";
  auto kind = detect_manifest(body, "");
  ASSERT_TRUE(kind);
  EXPECT_EQ(kind->first, ManifestKind::kManifest);
  auto m = parse_manifest(body);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->media_type, strata::store::kMediaTypeOciManifest);
  EXPECT_EQ(m->config.digest.hex, hex('a'));
  ASSERT_EQ(m->layers.size(), 3u);
  EXPECT_EQ(m->layers[2].size, 40);

  std::string docker = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":)" +
                       desc(kMediaTypeDockerConfig, 'a', 1) + R"(,"layers":[)" + desc(kMediaTypeDockerLayerGzip, 'b', 2) + "]}";
  m = parse_manifest(docker);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->media_type, strata::store::kMediaTypeDockerManifest);
  // Round trip of the synthesized form.
  auto again = parse_manifest(manifest_to_json(*m));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->layers[0].digest, m->layers[0].digest);
}

TEST(Manifest, Malformed) {
  for (std::string bad : std::vector<std::string>{"not json", "[]", "{}",
                          R"({"config":{"digest":"sha256:xyz","size":1},"layers":[]})",
                          R"({"config":)" + desc("x", 'a', -1) + R"(,"layers":[]})",
                          R"({"config":)" + desc("x", 'a', 1) + R"(})",
                          R"({"config":)" + desc("x", 'a', 1) + R"(,"layers":[)" + desc("text/plain", 'b', 1) + "]}",
                          R"({"config":)" + desc("x", 'a', 1) + R"(,"layers":[)" + desc(kMediaTypeOciLayer, 'B', 1) + "]}"}) {
    auto m = parse_manifest(bad);
    EXPECT_FALSE(m) << bad;
    if (!m) {
      EXPECT_EQ(m.error().err, EBADMSG) << bad;
    }
  }
  auto s1 = detect_manifest(R"({"schemaVersion":1,"name":"x"})", "");
  ASSERT_FALSE(s1);
  EXPECT_EQ(s1.error().err, EPROTONOSUPPORT);
  EXPECT_FALSE(detect_manifest(R"({"mediaType":"application/foo"})", ""));
}

TEST(Index, ParseAndSelect) {
  std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
                     desc(strata::store::kMediaTypeOciManifest, '1', 5, R"(,"platform":{"os":"linux","architecture":"arm","variant":"v7"})") + "," +
                     desc(strata::store::kMediaTypeOciManifest, '2', 5, R"(,"platform":{"os":"linux","architecture":"arm64","variant":"v8"})") + "," +
                     desc(strata::store::kMediaTypeOciManifest, '3', 5, R"(,"platform":{"os":"linux","architecture":"amd64"})") + "," +
                     desc(strata::store::kMediaTypeOciManifest, '4', 5) + "]}";
  auto kind = detect_manifest(body, "");
  ASSERT_TRUE(kind);
  EXPECT_EQ(kind->first, ManifestKind::kIndex);
  auto ix = parse_index(body);
  ASSERT_TRUE(ix) << ix.error().message();
  ASSERT_EQ(ix->manifests.size(), 4u);
  EXPECT_FALSE(ix->manifests[3].platform);

  auto pick = [&](const char* p) { return select_platform(*ix, *parse_platform(p)); };
  EXPECT_EQ(pick("linux/amd64")->descriptor.digest.hex, hex('3'));
  EXPECT_EQ(pick("linux/arm64")->descriptor.digest.hex, hex('2'));
  EXPECT_EQ(pick("linux/arm64/v8")->descriptor.digest.hex, hex('2'));
  EXPECT_EQ(pick("linux/arm/v7")->descriptor.digest.hex, hex('1'));
  EXPECT_FALSE(pick("linux/arm/v6"));
  auto none = pick("windows/amd64");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().err, ENOENT);
  EXPECT_NE(none.error().detail.find("linux/arm64/v8"), std::string::npos);

  // Docker manifest list, detected from the body's mediaType.
  std::string list = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[)" +
                     desc(strata::store::kMediaTypeDockerManifest, '5', 5, R"(,"platform":{"os":"linux","architecture":"amd64"})") + "]}";
  auto k2 = detect_manifest(list, "");
  ASSERT_TRUE(k2);
  EXPECT_EQ(k2->first, ManifestKind::kIndex);
  EXPECT_FALSE(parse_index(R"({"manifests":{}})"));
}

TEST(Platform, ParseAndMatch) {
  auto p = parse_platform("linux/arm64/v8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->variant, "v8");
  EXPECT_EQ(p->to_string(), "linux/arm64/v8");
  for (const char* bad : {"", "linux", "linux/", "/amd64", "a/b/c/d", "linux//v7"}) EXPECT_FALSE(parse_platform(bad)) << bad;
  EXPECT_TRUE(platform_matches({"linux", "arm64", ""}, {"linux", "arm64", "v8"}));
  EXPECT_FALSE(platform_matches({"linux", "arm", "v6"}, {"linux", "arm", "v7"}));
  EXPECT_TRUE(platform_matches({"linux", "arm", "v6"}, {"linux", "arm", ""}));
  Platform h = host_platform();
  EXPECT_EQ(h.os, "linux");
  EXPECT_FALSE(h.architecture.empty());
}

TEST(Config, Parse) {
  std::string body = R"({"created":"2024-01-02T03:04:05Z","architecture":"amd64","os":"linux",
    "config":{"Env":["A=1"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:)" + hex('e') +
                     R"("]},"history":[{"created_by":"x"}]})";
  auto c = parse_config(body);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->created, "2024-01-02T03:04:05Z");
  ASSERT_EQ(c->diff_ids.size(), 1u);
  EXPECT_EQ(c->diff_ids[0].hex, hex('e'));
  EXPECT_NE(c->config_json.find("A=1"), std::string::npos);
  EXPECT_NE(c->history_json.find("created_by"), std::string::npos);
  EXPECT_FALSE(parse_config(R"({"rootfs":{"type":"other","diff_ids":[]}})"));
  EXPECT_FALSE(parse_config(R"({"rootfs":{"type":"layers","diff_ids":["sha256:zz"]}})"));
  EXPECT_FALSE(parse_config(R"({})"));
  auto empty = parse_config(R"({"rootfs":{"type":"layers","diff_ids":[]}})");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->config_json, "{}");
  EXPECT_EQ(empty->history_json, "[]");
}
