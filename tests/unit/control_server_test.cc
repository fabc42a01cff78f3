// SPDX-License-Identifier: Apache-2.0
// The control socket in one process: a Server over a WriteGate in a temp dir, spoken to by the
// Client and by raw sockets. Pauses belong to connections (closing one resumes), pauses are
// counted, the socket is 0600, replaced when stale, refused when live, removed at stop, and works
// at a path longer than sun_path.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

#include "strata/control/client.h"
#include "strata/control/protocol.h"
#include "strata/control/server.h"
#include "strata/sys/fs.h"
#include "strata/sys/socket_io.h"
#include "tree.h"

namespace {

namespace control = strata::control;
namespace sys = strata::sys;
using control::Client;
using control::Server;
using control::WriteGate;
using strata::testing::TempDir;
using namespace std::chrono_literals;

template <typename P>
bool eventually(P pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Protocol, JsonLineAndFlatParse) {
  std::string line = control::JsonLine()
                         .add("ok", true)
                         .add("n", uint64_t{42})
                         .add("neg", -3)
                         .add("s", "a\"b\\c\n\x01")
                         .add("f", 1.5)
                         .str();
  EXPECT_EQ(line,
            "{\"ok\":true,\"n\":42,\"neg\":-3,\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"f\":1.500}\n");
  auto obj = control::parse_flat_object(line);
  ASSERT_TRUE(obj) << obj.error().message();
  EXPECT_TRUE((*obj)["ok"].b);
  EXPECT_EQ((*obj)["n"].text, "42");
  EXPECT_EQ((*obj)["s"].text, "a\"b\\c\n\x01");
  EXPECT_EQ((*obj)["f"].type, control::JsonValue::kNumber);
  for (const char* bad :
       {"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "[1]", "{\"a\":\"x}"})
    EXPECT_FALSE(control::parse_flat_object(bad)) << bad;
  EXPECT_TRUE(control::parse_flat_object(" { } "));
}

TEST(Protocol, ErrorReplyCarriesErrno) {
  auto obj =
      control::parse_flat_object(control::error_reply(strata::make_error(EIO, "syncfs", "/u")));
  ASSERT_TRUE(obj);
  EXPECT_FALSE((*obj)["ok"].b);
  EXPECT_EQ((*obj)["errno"].text, std::to_string(EIO));
  EXPECT_NE((*obj)["error"].text.find("syncfs /u"), std::string::npos);
}

TEST(Protocol, SplitSocketPath) {
  EXPECT_EQ(control::split_socket_path("/a/b/c.sock").dir, "/a/b");
  EXPECT_EQ(control::split_socket_path("/a/b/c.sock").name, "c.sock");
  EXPECT_EQ(control::split_socket_path("c.sock").dir, ".");
  EXPECT_EQ(control::split_socket_path("/c.sock").dir, "/");
  EXPECT_EQ(control::default_socket_path("/w"), "/w/strata-control.sock");
}

TEST(Protocol, LineReaderTimeoutAndOverlongLine) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  strata::UniqueFd a(sv[0]), b(sv[1]);
  control::LineReader in(a.get());
  auto r = in.next(30);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, ETIMEDOUT);
  ASSERT_TRUE(sys::send_all(b.get(), "one\r\ntwo\npart"));
  EXPECT_EQ(**in.next(1000), "one");
  EXPECT_EQ(**in.next(1000), "two");
  ASSERT_TRUE(sys::send_all(b.get(), std::string(control::kMaxLine + 10, 'x')));
  r = in.next(1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().err, EMSGSIZE);
}

class ServerTest : public ::testing::Test {
 protected:
  void start(const std::string& path) {
    control::ServerHooks h;
    h.sync = [this] {
      ++syncs;
      return strata::Status{};
    };
    h.stats = [](control::JsonLine& j) { j.add("nodes", uint64_t{7}); };
    auto s = Server::listen(path, &gate, std::move(h));
    ASSERT_TRUE(s) << s.error().message();
    server = std::move(*s);
    ASSERT_TRUE(server->start());
  }
  void SetUp() override { path = dir.path() + "/ctl.sock"; }

  // A raw connection: send a line, read the reply line.
  struct Raw {
    strata::UniqueFd fd;
    std::optional<control::LineReader> in;
    std::string call(const std::string& cmd) {
      EXPECT_TRUE(sys::send_all(fd.get(), cmd + "\n"));
      auto r = in->next(20000);
      EXPECT_TRUE(r && *r) << (r ? "end of stream" : r.error().message());
      return r && *r ? **r : std::string();
    }
  };
  Raw raw() {
    Raw r;
    auto s = sys::unix_socket();
    EXPECT_TRUE(s);
    auto d = sys::open_path(dir.path().c_str(), O_PATH | O_DIRECTORY);
    EXPECT_TRUE(d);
    EXPECT_TRUE(sys::connect_unix_at(s->get(), d->get(), "ctl.sock"));
    r.fd = std::move(*s);
    r.in.emplace(r.fd.get());
    return r;
  }

  TempDir dir;
  std::string path;
  WriteGate gate;
  std::atomic<int> syncs{0};
  std::unique_ptr<Server> server;
};

TEST_F(ServerTest, PauseSyncsAndBelongsToTheConnection) {
  start(path);
  {
    auto c = Client::connect(path);
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(c->pause());
    EXPECT_TRUE(gate.paused());
    EXPECT_EQ(syncs.load(), 1);
    ASSERT_TRUE(c->resume());
    EXPECT_FALSE(gate.paused());
    ASSERT_TRUE(c->pause());
    EXPECT_TRUE(gate.paused());
  }  // the Client goes away holding the pause
  EXPECT_TRUE(eventually([&] { return !gate.paused(); }))
      << "closing the connection did not resume";
  EXPECT_EQ(gate.pauses(), 0u);
}

TEST_F(ServerTest, PausesOfTwoConnectionsAreCounted) {
  start(path);
  auto a = Client::connect(path);
  auto b = Client::connect(path);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->pause());
  ASSERT_TRUE(b->pause());
  ASSERT_TRUE(b->pause());  // again on the same connection: still one pause
  EXPECT_EQ(gate.pauses(), 2u);
  ASSERT_TRUE(a->resume());
  EXPECT_TRUE(gate.paused());
  auto again = a->resume();
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("holds no pause"), std::string::npos)
      << again.error().message();
  { auto gone = std::move(*b); }
  EXPECT_TRUE(eventually([&] { return !gate.paused(); }));
}

TEST_F(ServerTest, PauseWaitsForInFlightAndHoldsNewOnes) {
  start(path);
  auto inside = std::make_unique<WriteGate::Guard>(gate.enter());
  auto c = Client::connect(path);
  ASSERT_TRUE(c);
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_TRUE(c->pause());
    done = true;
  });
  ASSERT_TRUE(eventually([&] { return gate.paused(); }));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(done.load()) << "pause replied while an operation was in flight";
  EXPECT_EQ(syncs.load(), 0);
  inside.reset();
  t.join();
  EXPECT_EQ(syncs.load(), 1);
  std::atomic<bool> entered{false};
  std::thread w([&] {
    auto e = gate.enter();
    entered = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(entered.load());
  ASSERT_TRUE(c->resume());
  w.join();
  EXPECT_TRUE(entered.load());
}

TEST_F(ServerTest, ClientGoneWhileDrainingAbandonsThePause) {
  start(path);
  auto inside = std::make_unique<WriteGate::Guard>(gate.enter());
  {
    Raw r = raw();
    ASSERT_TRUE(sys::send_all(r.fd.get(), "pause\n"));
    ASSERT_TRUE(eventually([&] { return gate.paused(); }));
  }  // closed before the pause was granted
  EXPECT_TRUE(eventually([&] { return gate.pauses() == 0; }));
  EXPECT_FALSE(gate.paused());
  inside.reset();
  EXPECT_EQ(syncs.load(), 0);
}

TEST_F(ServerTest, StatsVersionPingAndErrors) {
  start(path);
  auto c = Client::connect(path);
  ASSERT_TRUE(c);
  auto s = c->stats();
  ASSERT_TRUE(s) << s.error().message();
  auto obj = control::parse_flat_object(*s);
  ASSERT_TRUE(obj) << *s;
  for (const char* k : {"paused", "pauses", "in_flight", "blocked_writers", "connections",
                        "control_requests", "uptime_s", "nodes", "pid", "version"})
    EXPECT_TRUE(obj->count(k)) << k << " missing in " << *s;
  EXPECT_FALSE((*obj)["paused"].b);
  EXPECT_EQ((*obj)["nodes"].text, "7");
  ASSERT_TRUE(c->sync());
  EXPECT_EQ(syncs.load(), 1);

  Raw r = raw();
  EXPECT_EQ(r.call("ping"), "{\"ok\":true}");
  EXPECT_NE(r.call("version").find("\"protocol\":1"), std::string::npos);
  EXPECT_NE(r.call("frobnicate").find("\"ok\":false"), std::string::npos);
  EXPECT_NE(r.call("").find("\"ok\":false"), std::string::npos);
  EXPECT_EQ(r.call(" ping "), "{\"ok\":true}");  // one connection, many requests
}

TEST_F(ServerTest, SocketIsPrivateAndRemovedAtStop) {
  start(path);
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  auto c = Client::connect(path);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->pause());
  server->stop();  // releases the connection's pause
  EXPECT_FALSE(gate.paused());
  EXPECT_NE(lstat(path.c_str(), &st), 0);
  auto late = c->stats();
  EXPECT_FALSE(late);
}

TEST_F(ServerTest, StaleSocketReplacedLiveOneRefused) {
  {
    auto s = sys::unix_socket();
    auto d = sys::open_path(dir.path().c_str(), O_PATH | O_DIRECTORY);
    ASSERT_TRUE(s && d);
    ASSERT_TRUE(sys::bind_unix_at(s->get(), d->get(), "ctl.sock", 0600));
  }  // the file stays, nobody listens: a crashed daemon's socket
  auto refused = Client::connect(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("no stratafs control socket at " + path),
            std::string::npos)
      << refused.error().message();
  start(path);
  auto c = Client::connect(path);
  ASSERT_TRUE(c) << c.error().message();
  WriteGate other;
  auto second = Server::listen(path, &other, {});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().err, EADDRINUSE);
  auto st = sys::mkdir_at(sys::open_path(dir.path().c_str(), O_PATH | O_DIRECTORY)->get(),
                          "notsock", 0700);
  ASSERT_TRUE(st);
  auto nots = Server::listen(dir.path() + "/notsock", &other, {});
  ASSERT_FALSE(nots);
  EXPECT_EQ(nots.error().err, EEXIST);
}

TEST_F(ServerTest, MissingSocketNamedClearly) {
  auto c = Client::connect(path);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().err, ENOENT);
  EXPECT_NE(c.error().message().find("no stratafs control socket at " + path), std::string::npos)
      << c.error().message();
  auto d = Client::connect(dir.path() + "/no/such/dir/ctl.sock");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("no stratafs control socket at"), std::string::npos);
}

TEST_F(ServerTest, PathLongerThanSunPath) {
  std::string p = dir.path();
  while (p.size() < 220) {
    p += "/a-rather-long-directory-name";
    ASSERT_EQ(mkdir(p.c_str(), 0700), 0) << p;
  }
  std::string sock = p + "/strata-control.sock";
  ASSERT_GT(sock.size(), 108u);
  start(sock);
  auto c = Client::connect(sock);
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_TRUE(c->pause());
  EXPECT_TRUE(gate.paused());
  ASSERT_TRUE(c->resume());
  struct stat st;
  ASSERT_EQ(lstat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  server->stop();
  EXPECT_NE(lstat(sock.c_str(), &st), 0);
}

}  // namespace
