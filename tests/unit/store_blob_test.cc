// SPDX-License-Identifier: Apache-2.0
// store: digests, opening a store, and blob ingest. The contract under test: only canonical sha256
// digests parse; a store opens into a valid OCI layout; a blob reaches blobs/ only complete and
// verified (size and digest mismatches leave nothing behind); an interrupted ingest resumes from
// its recorded offset; concurrent writers of one blob end with one good blob.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "strata/store/digest.h"
#include "strata/store/ingest.h"
#include "strata/store/store.h"
#include "tree.h"

namespace {

using strata::store::Digest;
using strata::store::Ingest;
using strata::store::Sha256;
using strata::store::Store;
using strata::testing::exists;
using strata::testing::ls;
using strata::testing::read_file;
using strata::testing::TempDir;

const char* kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const char* kAbcSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Digest digest_of(const std::string& s) {
  auto d = Sha256::of(s);
  if (!d) throw std::runtime_error(d.error().message());
  return *d;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 12345;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

TEST(Digest, ParsesCanonicalSha256) {
  auto d = Digest::parse(std::string("sha256:") + kAbcSha);
  ASSERT_OK(d);
  EXPECT_EQ(d->algorithm, "sha256");
  EXPECT_EQ(d->hex, kAbcSha);
  EXPECT_EQ(d->to_string(), std::string("sha256:") + kAbcSha);
  EXPECT_TRUE(d->valid());
  EXPECT_FALSE(Digest{}.valid());
  EXPECT_OK(Digest::from_hex(kAbcSha));
}

TEST(Digest, RejectsMalformed) {
  std::string hex = kAbcSha;
  std::string upper = hex;
  upper[0] = 'B';
  for (const std::string& bad :
       {std::string(""), std::string("sha256:"), hex, ":" + hex, "sha256:" + hex.substr(1),
        "sha256:" + hex + "0", "sha256:" + upper, "sha512:" + hex, "SHA256:" + hex,
        "sha256:" + hex.substr(0, 63) + "g", "sha256:" + hex + "\n", " sha256:" + hex,
        "sha256::" + hex, "sha256:../" + hex.substr(3)}) {
    EXPECT_ERRNO(Digest::parse(bad), EINVAL) << "'" << bad << "'";
  }
  EXPECT_ERRNO(Digest::from_hex("sha256:" + hex), EINVAL);
  EXPECT_ERRNO(Digest::from_hex(""), EINVAL);
}

TEST(Digest, OrdersAndCompares) {
  auto a = *Digest::from_hex(kAbcSha);
  auto e = *Digest::from_hex(kEmptySha);
  EXPECT_NE(a, e);
  EXPECT_TRUE(a < e);  // "b..." < "e..."
  EXPECT_EQ(a, *Digest::parse(a.to_string()));
}

TEST(Sha256, KnownVectorsAndStreaming) {
  EXPECT_EQ(digest_of("").hex, kEmptySha);
  EXPECT_EQ(digest_of("abc").hex, kAbcSha);
  std::string big = pattern(3 << 20);
  Sha256 h;
  for (size_t i = 0; i < big.size(); i += 4097)
    h.update(big.data() + i, std::min<size_t>(4097, big.size() - i));
  EXPECT_EQ(h.bytes(), big.size());
  auto d = h.finish();
  ASSERT_OK(d);
  EXPECT_EQ(*d, digest_of(big));
  EXPECT_ERRNO(h.finish(), EINVAL);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(root);
    ASSERT_OK(s);
    store.emplace(std::move(*s));
  }
  std::string blobs() const { return root + "/oci/blobs/sha256"; }
  std::string ingest() const { return root + "/ingest"; }

  TempDir tmp;
  std::string root = tmp.path() + "/store";
  std::optional<Store> store;
};

TEST_F(StoreTest, OpenCreatesOciLayout) {
  for (const char* d : {"oci", "oci/blobs/sha256", "layers", "ingest", "containers"})
    EXPECT_TRUE(exists(root + "/" + d)) << d;
  EXPECT_TRUE(exists(root + "/lock"));
  EXPECT_EQ(strata::testing::lstat_or_throw(root).st_mode & 07777, 0700u);
  auto layout = nlohmann::json::parse(read_file(root + "/oci/oci-layout"));
  EXPECT_EQ(layout["imageLayoutVersion"], "1.0.0");
  auto index = nlohmann::json::parse(read_file(root + "/oci/index.json"));
  EXPECT_EQ(index["schemaVersion"], 2);
  EXPECT_TRUE(index["manifests"].is_array());
  EXPECT_TRUE(index["manifests"].empty());
  EXPECT_EQ(store->root_path(), root);
  // Reopening leaves an existing index alone; create=false opens an existing store.
  strata::testing::Tree(root).file("oci/index.json", R"({"schemaVersion":2,"manifests":[],"x":1})");
  ASSERT_OK(Store::open(root));
  ASSERT_OK(Store::open(root, false));
  EXPECT_EQ(nlohmann::json::parse(read_file(root + "/oci/index.json"))["x"], 1);
  EXPECT_TRUE(ls(root + "/oci") == (std::vector<std::string>{"blobs", "index.json", "oci-layout"}));
}

TEST_F(StoreTest, OpenWithoutCreateRefusesNonStore) {
  EXPECT_ERRNO(Store::open(tmp.sub("empty"), false), ENOENT);
  EXPECT_ERRNO(Store::open(tmp.path() + "/missing", false), ENOENT);
  EXPECT_FALSE(exists(tmp.path() + "/missing"));
}

TEST(StoreRoot, DefaultRootFollowsEnvironment) {
  const char* saved = getenv("STRATA_ROOT");
  std::string keep = saved ? saved : "";
  setenv("STRATA_ROOT", "/srv/strata-x", 1);
  auto r = strata::store::default_root();
  ASSERT_OK(r);
  EXPECT_EQ(*r, "/srv/strata-x");
  unsetenv("STRATA_ROOT");
  r = strata::store::default_root();
  ASSERT_OK(r);
  if (geteuid() == 0) {
    EXPECT_EQ(*r, "/var/lib/strata");
  } else {
    EXPECT_NE(r->find("strata"), std::string::npos);
  }
  if (saved) setenv("STRATA_ROOT", keep.c_str(), 1);
}

TEST_F(StoreTest, IngestCommitPublishesVerifiedBlob) {
  std::string data = pattern(200000);
  Digest d = digest_of(data);
  EXPECT_FALSE(store->has_blob(d));
  auto in = Ingest::begin(*store, d, data.size());
  ASSERT_OK(in);
  EXPECT_FALSE(in->complete());
  EXPECT_EQ(in->offset(), 0u);
  ASSERT_OK(in->write(data.substr(0, 1000)));
  ASSERT_OK(in->write(data.substr(1000)));
  EXPECT_EQ(in->offset(), data.size());
  EXPECT_FALSE(exists(blobs() + "/" + d.hex));  // not visible before commit
  ASSERT_OK(in->commit());
  EXPECT_TRUE(in->complete());
  EXPECT_TRUE(store->has_blob(d));
  EXPECT_EQ(read_file(blobs() + "/" + d.hex), data);
  EXPECT_TRUE(ls(ingest()).empty());
  auto sz = store->blob_size(d);
  ASSERT_OK(sz);
  EXPECT_EQ(*sz, data.size());
  // A second ingest of a present blob is complete at once.
  auto again = Ingest::begin(*store, d);
  ASSERT_OK(again);
  EXPECT_TRUE(again->complete());
  EXPECT_OK(again->commit());
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, WriteBlobAndReadBack) {
  std::string json = R"({"hello":"world"})";
  auto d = store->write_blob(json);
  ASSERT_OK(d);
  EXPECT_EQ(*d, digest_of(json));
  auto back = store->read_blob(*d);
  ASSERT_OK(back);
  EXPECT_EQ(*back, json);
  EXPECT_ERRNO(store->read_blob(*d, 3), EFBIG);
  auto fd = store->open_blob(*d);
  ASSERT_OK(fd);
  ASSERT_OK(store->write_blob(json));  // idempotent
  EXPECT_EQ(ls(blobs()).size(), 1u);
  EXPECT_EQ(store->blob_path(*d), blobs() + "/" + d->hex);
}

TEST_F(StoreTest, SizeMismatchRejectedAndNothingPublished) {
  std::string data = "short data";
  Digest d = digest_of(data);
  auto in = Ingest::begin(*store, d, data.size() + 5);
  ASSERT_OK(in);
  ASSERT_OK(in->write(data));
  auto c = in->commit();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().err, EBADMSG);
  EXPECT_NE(c.error().message().find(d.to_string()), std::string::npos) << c.error().message();
  EXPECT_NE(c.error().message().find("size mismatch"), std::string::npos) << c.error().message();
  EXPECT_TRUE(ls(blobs()).empty());
  EXPECT_TRUE(ls(ingest()).empty());
  EXPECT_FALSE(store->has_blob(d));
}

TEST_F(StoreTest, OversizeWriteRejectedAtOnce) {
  std::string data = "0123456789";
  Digest d = digest_of(data);
  auto in = Ingest::begin(*store, d, 4);
  ASSERT_OK(in);
  EXPECT_ERRNO(in->write(data), EBADMSG);
  EXPECT_ERRNO(in->commit(), EINVAL);  // finished
  EXPECT_TRUE(ls(blobs()).empty());
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, DigestMismatchRejectedNamingBothDigests) {
  std::string good = "the expected bytes";
  std::string evil = "the  served  bytes";
  Digest want = digest_of(good);
  auto in = Ingest::begin(*store, want, evil.size());
  ASSERT_OK(in);
  ASSERT_OK(in->write(evil));
  auto c = in->commit();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().err, EBADMSG);
  std::string msg = c.error().message();
  EXPECT_NE(msg.find(want.to_string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(digest_of(evil).to_string()), std::string::npos) << msg;
  EXPECT_TRUE(ls(blobs()).empty());
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, ResumeAfterCrash) {
  std::string data = pattern(3 << 20);
  Digest d = digest_of(data);
  size_t half = data.size() / 2 + 7;
  {
    auto in = Ingest::begin(*store, d, data.size());
    ASSERT_OK(in);
    ASSERT_OK(in->write(data.substr(0, half)));
    // Destroyed without commit: a ^C or a lost connection.
  }
  EXPECT_TRUE(exists(ingest() + "/" + d.hex + ".partial"));
  EXPECT_TRUE(exists(ingest() + "/" + d.hex + ".json"));
  // Bytes after the recorded offset (never synced before a crash) must not be trusted.
  {
    int fd = ::open((ingest() + "/" + d.hex + ".partial").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "garbage", 7), 7);
    ::close(fd);
  }
  auto in = Ingest::begin(*store, d, data.size());
  ASSERT_OK(in);
  EXPECT_FALSE(in->complete());
  EXPECT_EQ(in->offset(), half);
  ASSERT_OK(in->write(data.substr(in->offset())));
  ASSERT_OK(in->commit());
  EXPECT_EQ(read_file(blobs() + "/" + d.hex), data);
  EXPECT_EQ(digest_of(read_file(blobs() + "/" + d.hex)), d);
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, PartialWithoutRecordRestartsFromZero) {
  std::string data = pattern(5000);
  Digest d = digest_of(data);
  strata::testing::Tree(ingest()).file(d.hex + ".partial", "not the right prefix");
  auto in = Ingest::begin(*store, d);
  ASSERT_OK(in);
  EXPECT_EQ(in->offset(), 0u);
  ASSERT_OK(in->write(data));
  ASSERT_OK(in->commit());
  EXPECT_EQ(read_file(blobs() + "/" + d.hex), data);
}

TEST_F(StoreTest, ResetStartsOver) {
  std::string data = pattern(10000);
  Digest d = digest_of(data);
  auto in = Ingest::begin(*store, d);
  ASSERT_OK(in);
  ASSERT_OK(in->write("junk that a server sent before ignoring our Range header"));
  ASSERT_OK(in->reset());
  EXPECT_EQ(in->offset(), 0u);
  ASSERT_OK(in->write(data));
  ASSERT_OK(in->commit());
  EXPECT_EQ(read_file(blobs() + "/" + d.hex), data);
}

TEST_F(StoreTest, AbortDropsPartial) {
  Digest d = digest_of("x");
  auto in = Ingest::begin(*store, d);
  ASSERT_OK(in);
  ASSERT_OK(in->write("x"));
  ASSERT_OK(in->discard());
  EXPECT_TRUE(ls(ingest()).empty());
  EXPECT_FALSE(store->has_blob(d));
}

TEST_F(StoreTest, BusyIngestWithoutWaitFails) {
  Digest d = digest_of("busy");
  auto first = Ingest::begin(*store, d);
  ASSERT_OK(first);
  EXPECT_ERRNO(Ingest::begin(*store, d, std::nullopt, false), EWOULDBLOCK);
  ASSERT_OK(first->write("busy"));
  ASSERT_OK(first->commit());
  auto second = Ingest::begin(*store, d, std::nullopt, false);
  ASSERT_OK(second);
  EXPECT_TRUE(second->complete());
}

TEST_F(StoreTest, ConcurrentIngestOfOneBlobEndsWithOneGoodBlob) {
  std::string data = pattern(4 << 20);
  Digest d = digest_of(data);
  constexpr int kThreads = 4;
  std::vector<std::string> errors(kThreads);
  std::vector<int> wrote(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto in = Ingest::begin(*store, d, data.size());
      if (!in) {
        errors[t] = in.error().message();
        return;
      }
      if (in->complete()) return;
      wrote[t] = 1;
      for (size_t off = in->offset(); off < data.size(); off += 65536) {
        auto w = in->write(data.substr(off, 65536));
        if (!w) {
          errors[t] = w.error().message();
          return;
        }
      }
      auto c = in->commit();
      if (!c) errors[t] = c.error().message();
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(wrote[0] + wrote[1] + wrote[2] + wrote[3], 1);  // the others waited and found the blob
  EXPECT_EQ(ls(blobs()), std::vector<std::string>{d.hex});
  EXPECT_EQ(digest_of(read_file(blobs() + "/" + d.hex)), d);
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, WaiterTakesOverAfterAbort) {
  std::string data = pattern(100000);
  Digest d = digest_of(data);
  auto first = Ingest::begin(*store, d, data.size());
  ASSERT_OK(first);
  ASSERT_OK(first->write(data.substr(0, 500)));
  std::string error = "not run";
  std::thread waiter([&] {
    auto in = Ingest::begin(*store, d, data.size());  // blocks until `first` lets go
    if (!in) return void(error = in.error().message());
    if (in->complete()) return void(error = "complete without a blob");
    auto w = in->write(data.substr(in->offset()));
    if (!w) return void(error = w.error().message());
    auto c = in->commit();
    error = c ? "" : c.error().message();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_OK(first->discard());
  waiter.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(read_file(blobs() + "/" + d.hex), data);
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, ConcurrentWriteBlob) {
  std::string json = R"({"config":"same bytes from every thread"})";
  std::vector<std::thread> threads;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] { ok[t] = store->write_blob(json).has_value(); });
  for (auto& th : threads) th.join();
  for (int v : ok) EXPECT_EQ(v, 1);
  EXPECT_EQ(ls(blobs()).size(), 1u);
  EXPECT_TRUE(ls(ingest()).empty());
}

TEST_F(StoreTest, ForgedDigestsCannotEscapeTheStore) {
  Digest evil{"sha256", "../../../../etc/passwd"};
  EXPECT_FALSE(store->has_blob(evil));
  EXPECT_ERRNO(store->open_blob(evil), EINVAL);
  EXPECT_ERRNO(store->read_blob(evil), EINVAL);
  EXPECT_ERRNO(Ingest::begin(*store, evil), EINVAL);
  EXPECT_ERRNO(Ingest::begin(*store, Digest{"sha512", kAbcSha}), EINVAL);
}

}  // namespace
