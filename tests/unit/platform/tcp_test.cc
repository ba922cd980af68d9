// platform/tcp.h over loopback: listen on a free port, connect, exchange, deadlines, interrupt.
#include "platform/tcp.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <thread>

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

}  // namespace
}  // namespace warren::platform
