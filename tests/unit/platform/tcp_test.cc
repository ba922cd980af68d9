// platform/tcp.h over loopback: listen on a free port, connect, exchange, deadlines, interrupt.
#include "platform/tcp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

using namespace std::chrono_literals;

StreamDeadline in(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}

TEST(Tcp, ListenConnectAndExchange) {
  auto l = tcp_listen("127.0.0.1:0");
  ASSERT_TRUE(l) << l.message();
  ASSERT_NE((*l)->port(), 0);
  std::thread server([&] {
    auto c = (*l)->accept();
    ASSERT_TRUE(c) << c.message();
    auto req = c->read_until("\r\n\r\n", 1024, in(2000ms));
    ASSERT_TRUE(req) << req.message();
    EXPECT_EQ(*req, "GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(c->write_all("pong", in(2000ms)));
  });
  auto c = tcp_connect("127.0.0.1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c) << c.message();
  ASSERT_TRUE(c->write_all("GET / HTTP/1.0\r\n\r\n", in(2000ms)));
  auto reply = c->read_until("never", 64, in(2000ms));  // until the server closes
  server.join();
  ASSERT_TRUE(reply) << reply.message();
  EXPECT_EQ(*reply, "pong");
}

TEST(Tcp, TryAcceptNeverWaitsAndNamesThePeer) {
  auto l = tcp_listen("127.0.0.1:0");
  ASSERT_TRUE(l) << l.message();
  auto none = (*l)->try_accept();
  EXPECT_EQ(none.code(), EAGAIN);
  auto c = tcp_connect("127.0.0.1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c) << c.message();
  Result<AcceptedTcp> a = Error(EAGAIN, "not yet");
  for (int i = 0; i < 200 && !a; ++i) {
    a = (*l)->try_accept();
    if (!a)
      std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(a) << a.message();
  EXPECT_TRUE(a->connection.valid());
  EXPECT_EQ(a->peer.to_string(), "127.0.0.1");
}

TEST(Tcp, SilentPeerTimesOut) {
  auto l = tcp_listen("127.0.0.1:0");
  ASSERT_TRUE(l);
  auto c = tcp_connect("127.0.0.1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c);
  auto accepted = (*l)->accept();
  ASSERT_TRUE(accepted);
  const auto start = std::chrono::steady_clock::now();
  char buf[8];
  auto r = c->read_some(buf, in(150ms));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ETIMEDOUT);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 140ms);
}

TEST(Tcp, ShutdownFromAnotherThreadWakesTheReader) {
  auto l = tcp_listen("127.0.0.1:0");
  ASSERT_TRUE(l);
  auto c = tcp_connect("127.0.0.1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c);
  auto accepted = (*l)->accept();
  ASSERT_TRUE(accepted);
  std::thread waker([&] {
    std::this_thread::sleep_for(50ms);
    c->shutdown();
  });
  char buf[8];
  auto r = c->read_some(buf, in(5000ms));
  waker.join();
  ASSERT_TRUE(r) << r.message();
  EXPECT_EQ(*r, 0u) << "end of stream after shutdown()";
}

TEST(Tcp, InterruptEndsAccept) {
  auto l = tcp_listen("[::1]:0");
  if (!l)
    GTEST_SKIP() << "no IPv6 loopback: " << l.message();
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    (*l)->interrupt();
  });
  auto c = (*l)->accept();
  t.join();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), ECANCELED);
  EXPECT_EQ((*l)->accept().code(), ECANCELED) << "and every later call";
}

TEST(Tcp, BadAddressesAreNamed) {
  auto a = tcp_listen("localhost:80");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.code(), EINVAL);
  EXPECT_NE(a.message().find("localhost"), std::string::npos) << a.message();
  EXPECT_EQ(tcp_listen("127.0.0.1").code(), EINVAL);
  auto refused = tcp_connect("127.0.0.1", 1, in(2000ms));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), ECONNREFUSED);
}

TEST(Tcp, UnspecifiedIpv6ListensOnBothFamilies) {
  auto l = tcp_listen("[::]:0");
  if (!l)
    GTEST_SKIP() << "no IPv6: " << l.message();
  auto c4 = tcp_connect("127.0.0.1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c4) << c4.message();
  auto a4 = (*l)->accept();
  ASSERT_TRUE(a4) << a4.message();
  auto c6 = tcp_connect("::1", (*l)->port(), in(2000ms));
  ASSERT_TRUE(c6) << c6.message();
  // A specific IPv6 address stays IPv6 only.
  auto l6 = tcp_listen("[::1]:0");
  ASSERT_TRUE(l6) << l6.message();
  auto refused = tcp_connect("127.0.0.1", (*l6)->port(), in(2000ms));
  EXPECT_FALSE(refused);
}

// Runs `body` on a thread of its own mount namespace in which /etc/hosts maps "dual.test" to
// ::1 and 127.0.0.1. Returns why it could not (not root, no mount namespaces).
std::string with_dual_stack_name(const std::function<void()>& body) {
  char path[] = "/tmp/warren-hosts.XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0)
    return "mkstemp failed";
  ::close(fd);
  std::ofstream(path) << "::1 dual.test\n127.0.0.1 dual.test\n";
  std::string error;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount(path, "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
      error = std::string("cannot bind-mount a hosts file: ") + std::strerror(errno);
      return;
    }
    body();
  });
  t.join();
  std::remove(path);
  return error;
}

// A name with two addresses whose first never answers (its listener's accept queue is full,
// so the kernel drops the SYN): the second still gets its share of the deadline.
void connect_past_a_silent_address() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  ASSERT_EQ(::getaddrinfo("dual.test", "1", &hints, &res), 0);
  std::vector<int> families;
  for (addrinfo* ai = res; ai; ai = ai->ai_next)
    families.push_back(ai->ai_family);
  ::freeaddrinfo(res);
  ASSERT_EQ(families.size(), 2u);
  ASSERT_NE(families[0], families[1]);
  const bool v6_first = families[0] == AF_INET6;
  // The good listener, on the second address's family.
  auto good = tcp_listen(v6_first ? "127.0.0.1:0" : "[::1]:0");
  ASSERT_TRUE(good) << good.message();
  const std::uint16_t port = (*good)->port();
  // The silent one, on the first address's family, same port: backlog 0 and one connection
  // queued fill its accept queue.
  int silent = ::socket(v6_first ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6_first) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    s6->sin6_addr = in6addr_loopback;
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *s4;
  }
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&ss), len), 0)
      << "port " << port << " is taken on the other family";
  ASSERT_EQ(::listen(silent, 0), 0);
  auto filler = tcp_connect(v6_first ? "::1" : "127.0.0.1", port, in(1000ms));
  ASSERT_TRUE(filler) << filler.message();
  // Now the first address hangs: check it does, then that the name still connects.
  auto hung = tcp_connect(v6_first ? "::1" : "127.0.0.1", port, in(300ms));
  ASSERT_FALSE(hung) << "the kernel accepted beyond the backlog";
  EXPECT_EQ(hung.code(), ETIMEDOUT) << hung.message();
  const auto t0 = std::chrono::steady_clock::now();
  auto c = tcp_connect("dual.test", port, in(4000ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  ::close(silent);
  ASSERT_TRUE(c) << c.message();
  EXPECT_LT(took, 3000ms);  // the first address had half: about 2 s
  auto a = (*good)->accept();
  EXPECT_TRUE(a) << a.message();
}

TEST(Tcp, ConnectTriesTheNextAddressWhenOneNeverAnswers) {
  if (!warren::testing::is_root())
    GTEST_SKIP() << "needs root (a mount namespace for /etc/hosts)";
  const auto error = with_dual_stack_name(connect_past_a_silent_address);
  if (!error.empty())
    GTEST_SKIP() << error;
}

TEST(Tcp, ConnectFailureNamesEveryAddress) {
  auto l = tcp_listen("127.0.0.1:0");
  ASSERT_TRUE(l);
  const auto port = (*l)->port();
  l->reset();  // nothing listens there now
  auto c = tcp_connect("localhost", port, in(2000ms));
  ASSERT_FALSE(c);
  EXPECT_NE(c.message().find("127.0.0.1: "), std::string::npos) << c.message();
  EXPECT_NE(c.message().find("cannot connect to localhost port " + std::to_string(port)),
            std::string::npos)
      << c.message();
}

}  // namespace
}  // namespace warren::platform
