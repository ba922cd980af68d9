// UapiServer over real unix sockets in a temporary directory, with a recording Handler.

#include "uapi/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "base/secure.h"
#include "platform/log.h"
#include "uapi_test_util.h"

namespace warren::uapi {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Captures log lines for the whole test binary (and keeps them off stderr).
class LogCapture {
 public:
  LogCapture() {
    platform::log_set_level(platform::LogLevel::kDebug);
    platform::log_set_output([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      text_.append(line);
    });
  }
  ~LogCapture() { platform::log_set_output({}); }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

class ServerTest : public ::testing::Test {
 protected:
  ServerOptions fast_options() {
    ServerOptions o;
    o.read_timeout = 10s;  // long enough never to fire unless a test wants it to
    return o;
  }
  void start(ServerOptions o) {
    server_ = std::make_unique<UapiServer>("wgtest0", handler_, dir_.path(), o);
    Status e = server_->start();
    ASSERT_TRUE(e) << e.message();
  }
  void start() { start(fast_options()); }
  const std::string& path() { return server_->socket_path(); }

  // Waits until `pred` holds or `limit` passes.
  template <typename Pred>
  static bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) {
        return true;
      }
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  LogCapture log_;
  TempDir dir_;
  FakeHandler handler_;
  std::unique_ptr<UapiServer> server_;
};

// ---- operations -----------------------------------------------------------------------------

TEST_F(ServerTest, SocketPathIsDirSlashNameDotSock) {
  start();
  EXPECT_EQ(path(), dir_.path() + "/wgtest0.sock");
  EXPECT_TRUE(std::filesystem::is_socket(path()));
}

TEST_F(ServerTest, GetRepliesWithTheHandlersSnapshot) {
  handler_.set_snapshot(example_snapshot());
  start();
  Client c(path());
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.roundtrip("get=1\n\n"), std::string(kExampleReply));
  EXPECT_EQ(handler_.get_calls(), 1);
}

TEST_F(ServerTest, SetPassesTheDeltaAndRepliesErrnoZero) {
  start();
  Client c(path());
  EXPECT_EQ(c.roundtrip("set=1\nprivate_key=" + std::string(kPrivHex) +
                        "\nlisten_port=1234\npublic_key=" + std::string(kPeerHex) +
                        "\nendpoint=127.0.0.1:5555\nallowed_ip=10.0.0.0/24\n\n"),
            "errno=0\n\n");
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(hex_of(deltas[0].private_key.value()), kPrivHex);
  EXPECT_EQ(deltas[0].listen_port, 1234);
  ASSERT_EQ(deltas[0].peers.size(), 1u);
  EXPECT_EQ(deltas[0].peers[0].public_key, pub(kPeerHex));
  EXPECT_EQ(deltas[0].peers[0].endpoint, endpoint("127.0.0.1:5555"));
  EXPECT_EQ(deltas[0].peers[0].allowed_ips_add, std::vector<net::Prefix>{prefix("10.0.0.0/24")});
}

TEST_F(ServerTest, InvalidSetIsEinvalAndNeverReachesTheHandler) {
  start();
  Client c(path());
  for (std::string_view body : {"listen_port=abc\n", "bogus_key=1\n", "public_key=zz\n",
                                "listen_port=1\npublic_key=zz\n"}) {
    EXPECT_EQ(c.roundtrip("set=1\n" + std::string(body) + "\n"), "errno=-22\n\n") << body;
  }
  EXPECT_EQ(c.roundtrip("set=1\nno equals sign\n\n"), "errno=-71\n\n");
  EXPECT_EQ(handler_.set_calls(), 0u);
  // The connection stays usable after a rejected set.
  EXPECT_EQ(c.roundtrip("set=1\nlisten_port=7\n\n"), "errno=0\n\n");
  EXPECT_EQ(handler_.set_calls(), 1u);
}

TEST_F(ServerTest, HandlerErrnoIsSentNegated) {
  start();
  handler_.set_next_error(Error(EADDRINUSE, "listen_port 1234 is in use"));
  Client c(path());
  EXPECT_EQ(c.roundtrip("set=1\nlisten_port=1234\n\n"), "errno=-98\n\n");
  handler_.set_next_error(Error(EIO, "device failure"));
  EXPECT_EQ(c.roundtrip("set=1\nlisten_port=1234\n\n"), "errno=-5\n\n");
  EXPECT_NE(log_.text().find("IPC error -98: listen_port 1234 is in use"), std::string::npos)
      << log_.text();
}

TEST_F(ServerTest, HandlerExceptionIsEio) {
  start();
  handler_.set_throw_on_set(true);
  Client c(path());
  EXPECT_EQ(c.roundtrip("set=1\nlisten_port=1\n\n"), "errno=-5\n\n");
  EXPECT_EQ(c.roundtrip("get=1\n\n"), "errno=0\n\n");  // server still fine
}

TEST_F(ServerTest, SeveralOperationsOnOneConnection) {
  handler_.set_snapshot(example_snapshot());
  start();
  Client c(path());
  EXPECT_EQ(c.roundtrip("set=1\nlisten_port=1\n\n"), "errno=0\n\n");
  EXPECT_EQ(c.roundtrip("get=1\n\n"), std::string(kExampleReply));
  EXPECT_EQ(c.roundtrip("set=1\n\n"), "errno=0\n\n");
  // Pipelined: three requests in one write, three replies in order.
  ASSERT_TRUE(c.send("get=1\n\nset=1\nfwmark=9\n\nget=1\n\n"));
  EXPECT_EQ(c.reply(), std::string(kExampleReply));
  EXPECT_EQ(c.reply(), "errno=0\n\n");
  EXPECT_EQ(c.reply(), std::string(kExampleReply));
  EXPECT_EQ(handler_.set_calls(), 3u);
  EXPECT_EQ(handler_.get_calls(), 3);
}

TEST_F(ServerTest, GetWithTrailingJunkIsEinval) {
  start();
  Client c(path());
  EXPECT_EQ(c.roundtrip("get=1\nx"), "errno=-22\n\n");
  EXPECT_EQ(handler_.get_calls(), 0);
}

TEST_F(ServerTest, UnknownOperationClosesWithoutReply) {
  start();
  Client c(path());
  ASSERT_TRUE(c.send("bogus=1\n\n"));
  EXPECT_TRUE(c.closed_by_server());
  Client leading_blank(path());
  ASSERT_TRUE(leading_blank.send("\nget=1\n\n"));
  EXPECT_TRUE(leading_blank.closed_by_server());
  EXPECT_EQ(handler_.get_calls(), 0);
}

TEST_F(ServerTest, LargeSetOverTheSocket) {
  start();
  std::string request =
      "set=1\npublic_key=" + std::string(kPeerHex) + "\nreplace_allowed_ips=true\n";
  constexpr int kLines = 131073;
  for (int i = 0; i < kLines; ++i) {
    char line[64];
    std::snprintf(line, sizeof line, "allowed_ip=fd00::%x:%x/128\n", i / 65536, i % 65536);
    request += line;
  }
  request += "\n";
  Client c(path());
  ASSERT_TRUE(c.send(request));
  EXPECT_EQ(c.reply(30s), "errno=0\n\n");
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].peers.at(0).allowed_ips_add.size(), static_cast<std::size_t>(kLines));
}

TEST_F(ServerTest, OversizedRequestIsRejectedAndClosed) {
  ServerOptions o = fast_options();
  o.max_request_bytes = 4096;
  start(o);
  Client c(path());
  std::string request = "set=1\n";
  while (request.size() < 10000) {
    request += "listen_port=1\n";
  }
  ASSERT_TRUE(c.send(request));
  EXPECT_EQ(c.reply(), "errno=-22\n\n");
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(handler_.set_calls(), 0u);
}

// ---- misbehaving clients --------------------------------------------------------------------

TEST_F(ServerTest, ClientHangingUpMidRequestAppliesNothing) {
  start();
  {
    Client c(path());
    ASSERT_TRUE(c.send("set=1\nprivate_key=" + std::string(kPrivHex) + "\nlisten_port=1\n"));
  }  // closed without the blank line
  {
    Client c(path());
    ASSERT_TRUE(c.send("set=1\nlisten_port=1\n\nset=1\nlisten_port=2\n"));
    EXPECT_EQ(c.reply(), "errno=0\n\n");
  }  // the first set is complete, the second is not
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 0; }));
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].listen_port, 1);
  EXPECT_FALSE(deltas[0].private_key.has_value());
  // And the server still serves.
  Client after(path());
  EXPECT_EQ(after.roundtrip("get=1\n\n"), "errno=0\n\n");
}

TEST_F(ServerTest, HangingClientDoesNotBlockOthers) {
  start();
  Client hanging(path());
  ASSERT_TRUE(hanging.send("set=1\nlisten_port=1\n"));  // and never finishes
  Client idle(path());                                  // connects and says nothing
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 2; }));
  auto t0 = Clock::now();
  Client other(path());
  EXPECT_EQ(other.roundtrip("set=1\nfwmark=3\n\n"), "errno=0\n\n");
  EXPECT_EQ(other.roundtrip("get=1\n\n"), "errno=0\n\n");
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(handler_.set_calls(), 1u);
}

TEST_F(ServerTest, SilentClientIsDisconnectedAfterTheReadTimeout) {
  ServerOptions o = fast_options();
  o.read_timeout = 200ms;
  start(o);
  Client c(path());
  ASSERT_TRUE(c.send("set=1\nlisten_port=1\n"));
  auto t0 = Clock::now();
  EXPECT_TRUE(c.closed_by_server(5s));
  EXPECT_GE(Clock::now() - t0, 150ms);
  EXPECT_EQ(handler_.set_calls(), 0u);
}

TEST_F(ServerTest, ConnectionsBeyondTheCapAreClosed) {
  ServerOptions o = fast_options();
  o.max_connections = 2;
  start(o);
  Client a(path()), b(path());
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 2; }));
  Client c(path());
  EXPECT_TRUE(c.closed_by_server());
  // A slot frees up when a client leaves.
  a.close();
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 1; }));
  Client d(path());
  EXPECT_EQ(d.roundtrip("get=1\n\n"), "errno=0\n\n");
}

TEST_F(ServerTest, StopIsPromptWithHangingClients) {
  ServerOptions o = fast_options();
  o.read_timeout = 60s;
  start(o);
  Client a(path()), b(path());
  ASSERT_TRUE(a.send("set=1\nlisten_port=1\n"));
  ASSERT_TRUE(eventually([&] { return server_->connection_count() == 2; }));
  auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_TRUE(a.closed_by_server(1s));
  EXPECT_TRUE(b.closed_by_server(1s));
  EXPECT_EQ(handler_.set_calls(), 0u);
  EXPECT_FALSE(std::filesystem::exists(path()));
}

TEST_F(ServerTest, LogsNeverContainKeys) {
  start();
  Client c(path());
  // A bad line after a private key, a bad key value, and a key in the key position.
  EXPECT_EQ(c.roundtrip("set=1\nprivate_key=" + std::string(kPrivHex) + "\nbogus=1\n\n"),
            "errno=-22\n\n");
  EXPECT_EQ(c.roundtrip("set=1\npreshared_key=" + std::string(kPskHex) + "\n\n"), "errno=-22\n\n");
  EXPECT_EQ(c.roundtrip("set=1\n" + std::string(kPeerHex) + "\n\n"), "errno=-71\n\n");
  std::string log = log_.text();
  EXPECT_NE(log.find("IPC error -22"), std::string::npos) << log;
  for (std::string_view k : {kPrivHex, kPskHex, kPeerHex}) {
    EXPECT_EQ(log.find(k.substr(0, 12)), std::string::npos) << log;
  }
}

// ---- socket file life cycle ------------------------------------------------------------------

TEST_F(ServerTest, SocketIsOwnerOnly) {
  mode_t old = ::umask(0);  // the server must not depend on the caller's umask
  start();
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u) << std::oct << (st.st_mode & 0777);
}

TEST_F(ServerTest, MissingDirectoryIsCreated0755) {
  std::string dir = dir_.path() + "/run/wireguard";
  UapiServer server("wgtest1", handler_, dir, fast_options());
  mode_t old = ::umask(077);  // a strict umask must not make the directory unusable
  Status e = server.start();
  ::umask(old);
  ASSERT_TRUE(e) << e.message();
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0755u) << std::oct << (st.st_mode & 0777);
  Client c(dir + "/wgtest1.sock");
  EXPECT_EQ(c.roundtrip("get=1\n\n"), "errno=0\n\n");
}

TEST_F(ServerTest, SocketRemovedOnStopAndDestruction) {
  start();
  EXPECT_TRUE(server_->socket_file_present());
  server_->stop();
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/wgtest0.sock"));
  EXPECT_FALSE(server_->socket_file_present());
  server_->stop();  // idempotent
  {
    UapiServer s("wgtest2", handler_, dir_.path(), fast_options());
    ASSERT_TRUE(s.start());
    EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/wgtest2.sock"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/wgtest2.sock"));
}

TEST_F(ServerTest, CanRestartAfterStop) {
  start();
  server_->stop();
  ASSERT_TRUE(server_->start());
  Client c(path());
  EXPECT_EQ(c.roundtrip("get=1\n\n"), "errno=0\n\n");
}

TEST_F(ServerTest, BindWithoutServingThenStart) {
  server_ = std::make_unique<UapiServer>("wgtest0", handler_, dir_.path(), fast_options());
  ASSERT_TRUE(server_->bind());
  EXPECT_TRUE(server_->socket_file_present());
  Client early(path());  // the kernel queues it until start()
  ASSERT_TRUE(early.connected());
  ASSERT_TRUE(early.send("get=1\n\n"));
  ASSERT_TRUE(server_->start());
  EXPECT_EQ(early.reply(), "errno=0\n\n");
}

TEST_F(ServerTest, DeletedSocketFileIsNoticed) {
  start();
  ASSERT_TRUE(server_->socket_file_present());
  ASSERT_EQ(::unlink(path().c_str()), 0);
  EXPECT_FALSE(server_->socket_file_present());
}

// Leaves a socket file at `path` with nobody listening (as after a crash).
void make_stale_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ::close(fd);
}

TEST_F(ServerTest, StaleSocketIsReplaced) {
  std::string stale = dir_.path() + "/wgtest0.sock";
  make_stale_socket(stale);
  ASSERT_TRUE(std::filesystem::is_socket(stale));
  start();
  Client c(path());
  EXPECT_EQ(c.roundtrip("get=1\n\n"), "errno=0\n\n");
}

TEST_F(ServerTest, LiveSocketMeansInUse) {
  start();
  FakeHandler other;
  UapiServer second("wgtest0", other, dir_.path(), fast_options());
  Status e = second.start();
  EXPECT_EQ(e.code(), EADDRINUSE);
  EXPECT_NE(e.message().find("interface wgtest0 is already in use by another process"),
            std::string::npos)
      << e.message();
  EXPECT_FALSE(second.socket_file_present());
  second.stop();
  // The first server keeps its socket and keeps serving.
  EXPECT_TRUE(server_->socket_file_present());
  Client c(path());
  EXPECT_EQ(c.roundtrip("get=1\n\n"), "errno=0\n\n");
  EXPECT_EQ(other.get_calls(), 0);
}

TEST_F(ServerTest, NonSocketFileIsLeftAlone) {
  std::string file = dir_.path() + "/wgtest0.sock";
  std::ofstream(file) << "not a socket";
  UapiServer s("wgtest0", handler_, dir_.path(), fast_options());
  Status e = s.start();
  EXPECT_EQ(e.code(), EEXIST) << e.message();
  EXPECT_TRUE(std::filesystem::is_regular_file(file));
}

TEST_F(ServerTest, ReplacedSocketIsNotRemovedOnStop) {
  start();
  ASSERT_EQ(::unlink(path().c_str()), 0);
  make_stale_socket(path());  // somebody else's socket now
  EXPECT_FALSE(server_->socket_file_present());
  server_->stop();
  EXPECT_TRUE(std::filesystem::is_socket(dir_.path() + "/wgtest0.sock"));
}

TEST_F(ServerTest, BadInterfaceNames) {
  for (const char* name : {"", ".", "..", "a/b"}) {
    UapiServer s(name, handler_, dir_.path(), fast_options());
    Status e = s.start();
    EXPECT_EQ(e.code(), EINVAL) << name;
  }
  std::string long_name(200, 'x');
  UapiServer s(long_name, handler_, dir_.path(), fast_options());
  EXPECT_EQ(s.start().code(), ENAMETOOLONG);
}

TEST_F(ServerTest, ConcurrentClients) {
  handler_.set_snapshot(example_snapshot());
  ServerOptions o = fast_options();
  o.max_connections = 64;  // closed connections may linger a moment on the server side
  start(o);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        Client c(path());
        if (c.roundtrip("set=1\nlisten_port=1\n\n") == "errno=0\n\n" &&
            c.roundtrip("get=1\n\n") == std::string(kExampleReply)) {
          ++good;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(good.load(), 200);
  EXPECT_EQ(handler_.set_calls(), 200u);
}

}  // namespace
}  // namespace warren::uapi
