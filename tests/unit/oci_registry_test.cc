// SPDX-License-Identifier: Apache-2.0
// The network-free parts of the registry client: WWW-Authenticate, --creds, auth files.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "strata/oci/registry.h"

using namespace strata::oci;

TEST(WwwAuthenticate, DistributionBearer) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(c->params["service"], "registry.docker.io");
  EXPECT_EQ(c->params["scope"], "repository:library/alpine:pull");
}

TEST(WwwAuthenticate, BasicCaseSpacesTokensEscapes) {
  auto c = parse_www_authenticate(R"(  BASIC   Realm = "Registry \"Realm\"" , charset=UTF-8)");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "Registry \"Realm\"");
  EXPECT_EQ(c->params["charset"], "UTF-8");
}

TEST(WwwAuthenticate, CommaInsideQuotesAndSecondChallenge) {
  auto c = parse_www_authenticate(
      R"(Bearer realm="http://a/t",scope="repository:x:pull,push", Basic realm="r")");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->params["scope"], "repository:x:pull,push");
  EXPECT_EQ(c->params.size(), 2u);
}

TEST(WwwAuthenticate, SchemeOnly) {
  auto c = parse_www_authenticate("Basic");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_TRUE(c->params.empty());
}

TEST(WwwAuthenticate, Malformed) {
  for (const char* h :
       {"", "   ", "=x", R"(Bearer realm="unterminated)", "Bearer realm=\"a\" junk", "Bearer =x"}) {
    EXPECT_FALSE(parse_www_authenticate(h).has_value()) << h;
  }
}

TEST(Creds, Parse) {
  auto c = parse_creds("user:pa:ss");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->user, "user");
  EXPECT_EQ(c->password, "pa:ss");
  EXPECT_TRUE(parse_creds("user:").has_value());
  EXPECT_FALSE(parse_creds("user").has_value());
  EXPECT_FALSE(parse_creds(":pass").has_value());
}

TEST(Base64, Decode) {
  EXPECT_EQ(*base64_decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(*base64_decode("YQ=="), "a");
  EXPECT_EQ(*base64_decode("YQ"), "a");
  EXPECT_EQ(*base64_decode(""), "");
  EXPECT_FALSE(base64_decode("a").has_value());
  EXPECT_FALSE(base64_decode("dXN!").has_value());
}

TEST(AuthFile, ExactKeyAndUrlKeys) {
  // base64("u1:p1"), base64("u2:p2"), base64("u3:p:3")
  const char* j = R"({"auths": {
      "127.0.0.1:5000": {"auth": "dTE6cDE="},
      "https://reg.example.com/v1/": {"auth": "dTI6cDI="},
      "https://index.docker.io/v1/": {"auth": "dTM6cDozZA=="}}})";
  auto a = parse_auth_file(j, "127.0.0.1:5000");
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_EQ((*a)->user, "u1");
  EXPECT_EQ((*a)->password, "p1");
  auto b = parse_auth_file(j, "reg.example.com");
  ASSERT_TRUE(b.has_value() && b->has_value());
  EXPECT_EQ((*b)->user, "u2");
  auto d = parse_auth_file(j, "docker.io");
  ASSERT_TRUE(d.has_value() && d->has_value());
  EXPECT_EQ((*d)->user, "u3");
  EXPECT_EQ((*d)->password, "p:3d");
  auto none = parse_auth_file(j, "127.0.0.1:5001");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

TEST(AuthFile, NoAuthsOrHelperOnly) {
  auto a = parse_auth_file(R"({"credsStore": "desktop"})", "x");
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->has_value());
  auto b = parse_auth_file(R"({"auths": {"x": {}}})", "x");
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->has_value());
}

TEST(AuthFile, Malformed) {
  EXPECT_FALSE(parse_auth_file("not json", "x").has_value());
  EXPECT_FALSE(parse_auth_file("[]", "x").has_value());
  EXPECT_FALSE(parse_auth_file(R"({"auths": []})", "x").has_value());
  EXPECT_FALSE(parse_auth_file(R"({"auths": {"x": {"auth": "!!"}}})", "x").has_value());
  EXPECT_FALSE(parse_auth_file(R"({"auths": {"x": {"auth": "bm9jb2xvbg=="}}})", "x")
                   .has_value());  // "nocolon"
}

TEST(AuthFile, SearchOrder) {
  auto dir = std::filesystem::temp_directory_path() / ("strata-auth-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "run" / "containers");
  std::filesystem::create_directories(dir / "home" / ".docker");
  std::ofstream(dir / "run" / "containers" / "auth.json")
      << R"({"auths": {"r1": {"auth": "dTE6cDE="}}})";
  std::ofstream(dir / "home" / ".docker" / "config.json")
      << R"({"auths": {"r1": {"auth": "dTI6cDI="}, "r2": {"auth": "dTI6cDI="}}})";
  std::ofstream(dir / "explicit.json") << R"({"auths": {"r3": {"auth": "dTM6cDozZA=="}}})";
  setenv("XDG_RUNTIME_DIR", (dir / "run").c_str(), 1);
  setenv("HOME", (dir / "home").c_str(), 1);
  unsetenv("REGISTRY_AUTH_FILE");
  EXPECT_EQ((*find_credentials("r1"))->user, "u1");  // XDG_RUNTIME_DIR before ~/.docker
  EXPECT_EQ((*find_credentials("r2"))->user, "u2");
  EXPECT_FALSE(find_credentials("r3")->has_value());
  setenv("REGISTRY_AUTH_FILE", (dir / "explicit.json").c_str(), 1);
  EXPECT_EQ((*find_credentials("r3"))->user, "u3");
  EXPECT_EQ((*find_credentials("r1"))->user, "u1");  // falls through to the next file
  setenv("REGISTRY_AUTH_FILE", (dir / "nosuch.json").c_str(), 1);
  EXPECT_EQ((*find_credentials("r2"))->user, "u2");
  std::ofstream(dir / "bad.json") << "{";
  setenv("REGISTRY_AUTH_FILE", (dir / "bad.json").c_str(), 1);
  EXPECT_FALSE(find_credentials("r2").has_value());
  unsetenv("REGISTRY_AUTH_FILE");
  std::filesystem::remove_all(dir);
}
