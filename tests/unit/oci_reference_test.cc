// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "strata/oci/reference.h"

using strata::oci::parse_reference;
using strata::oci::Transport;

TEST(Reference, DockerNormalised) {
  auto r = parse_reference("alpine");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->transport, Transport::kDocker);
  EXPECT_EQ(r->registry, "docker.io");
  EXPECT_EQ(r->repository, "library/alpine");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->to_string(), "docker.io/library/alpine:latest");

  r = parse_reference("docker://quay.io/org/app:1.2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->registry, "quay.io");
  EXPECT_EQ(r->repository, "org/app");
  EXPECT_EQ(r->tag, "1.2");

  r = parse_reference("docker://127.0.0.1:5000/a/b-c__d.e");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "a/b-c__d.e");

  r = parse_reference("localhost/x@sha256:" + std::string(64, 'a'));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->registry, "localhost");
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->digest, "sha256:" + std::string(64, 'a'));

  r = parse_reference("user/repo:v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repository, "user/repo");
}

TEST(Reference, DockerMalformed) {
  for (const char* bad : {"", "docker://", "docker://Alpine", "alpine:", "alpine:-x", "a//b", "a/", "/a",
                          "alpine@sha256:abc", "alpine@md5:" , "a..b", "a-", "host:99999999/x",
                          "docker://a:b:c", "ex ample", "nosuch://x", "dir:/tmp/x"}) {
    auto r = parse_reference(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().err, EINVAL) << bad;
      EXPECT_EQ(r.error().op, "parse reference");
    }
  }
  std::string long_tag(129, 'a');
  EXPECT_FALSE(parse_reference("alpine:" + long_tag));
  EXPECT_TRUE(parse_reference("alpine:" + std::string(128, 'a')));
}

TEST(Reference, LocalTransports) {
  auto r = parse_reference("oci:/tmp/layout:v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->transport, Transport::kOciLayout);
  EXPECT_EQ(r->path, "/tmp/layout");
  EXPECT_EQ(r->tag, "v1");
  EXPECT_EQ(r->to_string(), "oci:/tmp/layout:v1");

  r = parse_reference("oci:rel/dir");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, "rel/dir");
  EXPECT_EQ(r->tag, "");

  r = parse_reference("oci-archive:/x/img.tar:latest");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->transport, Transport::kOciArchive);
  EXPECT_EQ(r->path, "/x/img.tar");
  EXPECT_EQ(r->tag, "latest");

  // The tag is a whole ref name, ':' and '/' included (skopeo's oci:DIR:localhost/x:1).
  r = parse_reference("oci:/l:localhost/x:1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, "/l");
  EXPECT_EQ(r->tag, "localhost/x:1");
  EXPECT_FALSE(parse_reference("oci:/l:a b"));

  r = parse_reference("docker-archive:/x/save.tar");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->transport, Transport::kDockerArchive);
  EXPECT_EQ(r->path, "/x/save.tar");

  for (const char* bad : {"oci:", "oci::tag", "oci:/dir:", "oci-archive:", "docker-archive:"}) {
    EXPECT_FALSE(parse_reference(bad)) << bad;
  }
}
