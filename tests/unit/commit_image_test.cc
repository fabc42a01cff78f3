// SPDX-License-Identifier: Apache-2.0
// commit: the new config and manifest (image_config.h). The contract under test: the parent's
// config is kept (unknown fields too), changes/created/author/history/diff_ids updated; no layer
// gives an empty_layer entry; squash replaces the layers and marks old history empty; the output
// is deterministic; manifests carry the format's media types, converting the parent's layers, and
// refuse what the format cannot express.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "strata/commit/image_config.h"
#include "strata/store/digest.h"
#include "tree.h"

namespace {

using nlohmann::json;
using strata::commit::Compression;
using strata::commit::ConfigInputs;
using strata::commit::Format;
using strata::commit::layer_media_type;
using strata::commit::make_config;
using strata::commit::make_manifest;
using strata::commit::parse_changes;
using strata::oci::Descriptor;
using strata::oci::Manifest;
using strata::store::Digest;
using strata::store::Sha256;

const char* kParent =
    R"({"architecture":"amd64","os":"linux","author":"old","x-unknown":{"k":[1,2]},
  "config":{"Env":["A=1"],"Cmd":["sh"]},
  "rootfs":{"type":"layers","diff_ids":["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
  "history":[{"created":"2020-01-01T00:00:00Z","created_by":"base"}]})";

Digest dig(const std::string& s) {
  return *Sha256::of(s);
}

ConfigInputs inputs() {
  ConfigInputs in;
  in.parent_config = kParent;
  in.created = "2024-01-02T03:04:05Z";
  in.created_by = "strata commit";
  in.author = "me";
  in.comment = "msg";
  in.diff_id = dig("layer");
  in.changes = *parse_changes({"ENV B=2"});
  return in;
}

TEST(ImageConfig, KeepsParentAndAppends) {
  auto c = make_config(inputs());
  ASSERT_OK(c);
  json j = json::parse(*c);
  EXPECT_EQ(j["x-unknown"], json({{"k", {1, 2}}}));
  EXPECT_EQ(j["architecture"], "amd64");
  EXPECT_EQ(j["created"], "2024-01-02T03:04:05Z");
  EXPECT_EQ(j["author"], "me");
  EXPECT_EQ(j["config"]["Env"], json({"A=1", "B=2"}));
  EXPECT_EQ(j["config"]["Cmd"], json({"sh"}));
  EXPECT_EQ(j["rootfs"]["diff_ids"].size(), 2u);
  EXPECT_EQ(j["rootfs"]["diff_ids"][1], dig("layer").to_string());
  ASSERT_EQ(j["history"].size(), 2u);
  EXPECT_EQ(j["history"][1], json({{"created", "2024-01-02T03:04:05Z"},
                                   {"created_by", "strata commit"},
                                   {"author", "me"},
                                   {"comment", "msg"}}));
  // Same inputs, same bytes.
  EXPECT_EQ(*c, *make_config(inputs()));
}

TEST(ImageConfig, NoLayerIsAnEmptyLayerEntry) {
  auto in = inputs();
  in.diff_id.reset();
  in.author.clear();
  in.comment.clear();
  json j = json::parse(*make_config(in));
  EXPECT_EQ(j["rootfs"]["diff_ids"].size(), 1u);
  EXPECT_EQ(
      j["history"][1],
      json({{"created", in.created}, {"created_by", "strata commit"}, {"empty_layer", true}}));
  EXPECT_FALSE(j.contains("author"));
}

TEST(ImageConfig, SquashReplacesLayers) {
  auto in = inputs();
  in.squash = true;
  json j = json::parse(*make_config(in));
  EXPECT_EQ(j["rootfs"]["diff_ids"], json({dig("layer").to_string()}));
  EXPECT_EQ(j["history"][0]["empty_layer"], true);
  EXPECT_FALSE(j["history"][1].contains("empty_layer"));
}

TEST(ImageConfig, BadParentConfigs) {
  auto in = inputs();
  for (const char* bad : {"[]", "not json", R"({"rootfs":5})", R"({"rootfs":{"diff_ids":{}}})",
                          R"({"rootfs":{"diff_ids":[]},"history":{}})"}) {
    in.parent_config = bad;
    EXPECT_FALSE(make_config(in).has_value()) << bad;
  }
}

TEST(ImageManifest, FormatsAndConversions) {
  Manifest parent;
  parent.layers.push_back(
      Descriptor{"application/vnd.oci.image.layer.v1.tar+gzip", dig("a"), 10, {}});
  parent.layers.push_back(
      Descriptor{"application/vnd.docker.image.rootfs.diff.tar", dig("b"), 20, {}});
  Descriptor cfg{"", dig("cfg"), 30, {}};
  Descriptor layer{*layer_media_type(Format::kDocker, Compression::kGzip), dig("new"), 40, {}};
  auto d = make_manifest(parent, cfg, layer, false, Format::kDocker);
  ASSERT_OK(d);
  json j = json::parse(*d);
  EXPECT_EQ(j["schemaVersion"], 2);
  EXPECT_EQ(j["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
  EXPECT_EQ(j["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
  ASSERT_EQ(j["layers"].size(), 3u);
  EXPECT_EQ(j["layers"][0]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(j["layers"][1]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar");
  EXPECT_EQ(j["layers"][2]["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
  EXPECT_EQ(j["layers"][2]["digest"], dig("new").to_string());

  layer.media_type = *layer_media_type(Format::kOci, Compression::kGzip);
  json o = json::parse(*make_manifest(parent, cfg, layer, false, Format::kOci));
  EXPECT_EQ(o["mediaType"], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(o["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
  EXPECT_EQ(o["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
  EXPECT_EQ(o["layers"][1]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
  json sq = json::parse(*make_manifest(parent, cfg, layer, true, Format::kOci));
  EXPECT_EQ(sq["layers"].size(), 1u);
  json none = json::parse(*make_manifest(parent, cfg, std::nullopt, false, Format::kOci));
  EXPECT_EQ(none["layers"].size(), 2u);
}

TEST(ImageManifest, DockerCannotExpressZstd) {
  EXPECT_ERRNO(layer_media_type(Format::kDocker, Compression::kZstd), EINVAL);
  Manifest parent;
  parent.layers.push_back(
      Descriptor{"application/vnd.oci.image.layer.v1.tar+zstd", dig("a"), 10, {}});
  EXPECT_ERRNO(
      make_manifest(parent, Descriptor{"", dig("c"), 1, {}}, std::nullopt, false, Format::kDocker),
      EINVAL);
  EXPECT_OK(
      make_manifest(parent, Descriptor{"", dig("c"), 1, {}}, std::nullopt, true, Format::kDocker));
}

}  // namespace
