// Kernel UDP binds on loopback (127.0.0.1 / ::1 in the test's own network namespace).
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <set>

#include "platform/udp.h"
#include "platform/unique_fd.h"
#include "unit/platform/netns_util.h"
#include "unit/platform/test_packets.h"

namespace warren::platform {
namespace {

using net::IpAddress;
using warren::testing::Buffers;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

// Receives until `want` datagrams arrived on `socket` or ~2 s passed.
std::size_t receive_all(UdpBind& b, std::size_t socket, Buffers& buf, std::size_t want,
                        std::vector<std::pair<std::vector<std::uint8_t>, net::Path>>* out) {
  std::size_t got = 0;
  for (int spins = 0; got < want && spins < 2000; ++spins) {
    auto r = b.receive(socket, buf.views, buf.sizes, buf.paths);
    if (r.count == 0) {
      EXPECT_TRUE(r.would_block()) << r.error;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (std::size_t i = 0; i < r.count; ++i) {
      if (out) {
        out->emplace_back(std::vector<std::uint8_t>(buf.storage[i].begin(),
                                                    buf.storage[i].begin() + buf.sizes[i]),
                          buf.paths[i]);
      }
    }
    got += r.count;
  }
  return got;
}

// Runs the body in a private namespace when possible (root), else on the host's loopback.
void with_loopback(const std::function<void()>& body) {
  if (testing::is_root()) {
    std::string err = testing::run_in_new_netns(body);
    ASSERT_TRUE(err.empty()) << err;
  } else {
    body();
  }
}

class UdpLinuxTest : public ::testing::Test {
 protected:
  std::unique_ptr<BindFactory> factory_ = make_system_bind_factory();
};

TEST_F(UdpLinuxTest, PortZeroPicksOnePortForBothFamilies) {
  with_loopback([&] {
    std::set<std::uint16_t> ports;
    std::vector<std::unique_ptr<UdpBind>> binds;
    for (int i = 0; i < 5; ++i) {
      auto b = factory_->open(BindOptions{});
      ASSERT_TRUE(b.ok()) << b.message();
      EXPECT_NE((*b)->port(), 0);
      EXPECT_EQ((*b)->socket_count(), 2u);
      ports.insert((*b)->port());
      binds.push_back(std::move(*b));
    }
    EXPECT_EQ(ports.size(), 5u);
    // Both families really listen on the port: a datagram to each arrives.
    auto sender = std::move(factory_->open(BindOptions{}).value());
    std::vector<std::uint8_t> msg{42};
    std::array<OutDatagram, 2> out{OutDatagram{msg, {{ip("127.0.0.1"), binds[0]->port()}, {}, 0}},
                                   OutDatagram{msg, {{ip("::1"), binds[0]->port()}, {}, 0}}};
    EXPECT_EQ(sender->send(out).count, 2u);
    Buffers buf(4);
    EXPECT_EQ(receive_all(*binds[0], 0, buf, 1, nullptr), 1u);
    EXPECT_EQ(receive_all(*binds[0], 1, buf, 1, nullptr), 1u);
  });
}

TEST_F(UdpLinuxTest, BatchedSendReceiveReportsPaths) {
  with_loopback([&] {
    auto a = std::move(factory_->open(BindOptions{}).value());
    auto b = std::move(factory_->open(BindOptions{}).value());
    ASSERT_TRUE(a && b);
    constexpr int kEach = 150;  // more than one kMaxBatch per family
    std::vector<std::vector<std::uint8_t>> payloads;
    std::vector<OutDatagram> out;
    for (int i = 0; i < 2 * kEach; ++i) {
      payloads.push_back(std::vector<std::uint8_t>(100 + i, static_cast<std::uint8_t>(i)));
    }
    for (int i = 0; i < 2 * kEach; ++i) {
      const char* dst = i % 2 ? "::1" : "127.0.0.1";
      out.push_back(OutDatagram{payloads[i], {{ip(dst), b->port()}, {}, 0}});
    }
    auto s = a->send(out);
    EXPECT_EQ(s.count, out.size());
    EXPECT_EQ(s.error, 0);

    const unsigned lo = ::if_nametoindex("lo");
    for (std::size_t sock = 0; sock < 2; ++sock) {
      Buffers buf(64, 1024);
      std::vector<std::pair<std::vector<std::uint8_t>, net::Path>> got;
      EXPECT_EQ(receive_all(*b, sock, buf, kEach, &got), static_cast<std::size_t>(kEach));
      ASSERT_EQ(got.size(), static_cast<std::size_t>(kEach));
      const IpAddress host = sock == 0 ? ip("127.0.0.1") : ip("::1");
      for (std::size_t k = 0; k < got.size(); ++k) {
        const int i = static_cast<int>(2 * k + sock);  // loopback keeps order per socket
        EXPECT_EQ(got[k].first, payloads[i]);
        EXPECT_EQ(got[k].second.remote, (net::Endpoint{host, a->port()}));
        EXPECT_EQ(got[k].second.local, host);
        EXPECT_EQ(got[k].second.ifindex, lo);
      }
    }
  });
}

TEST_F(UdpLinuxTest, StickySourceIsUsedAndStaleSourceDropped) {
  with_loopback([&] {
    auto a = std::move(factory_->open(BindOptions{.ipv6 = false}).value());
    auto b = std::move(factory_->open(BindOptions{.ipv6 = false}).value());
    std::vector<std::uint8_t> msg{7};
    // 127.0.0.2 is local (all of 127/8 is), so it is a valid source.
    std::array<OutDatagram, 1> out{
        OutDatagram{msg, {{ip("127.0.0.1"), b->port()}, ip("127.0.0.2"), 1}}};
    EXPECT_EQ(a->send(out).count, 1u);
    EXPECT_FALSE(out[0].source_dropped);
    std::vector<std::pair<std::vector<std::uint8_t>, net::Path>> got;
    Buffers buf(4);
    ASSERT_EQ(receive_all(*b, 0, buf, 1, &got), 1u);
    EXPECT_EQ(got[0].second.remote.address, ip("127.0.0.2"));

    // 198.51.100.77 (TEST-NET-2) is nobody's address: retried without it, and reported.
    out[0].path.local = ip("198.51.100.77");
    EXPECT_EQ(a->send(out).count, 1u);
    EXPECT_TRUE(out[0].source_dropped);
    got.clear();
    ASSERT_EQ(receive_all(*b, 0, buf, 1, &got), 1u);
    EXPECT_EQ(got[0].second.remote.address, ip("127.0.0.1"));
  });
}

TEST_F(UdpLinuxTest, StickySourceV6) {
  with_loopback([&] {
    auto a = std::move(factory_->open(BindOptions{.ipv4 = false}).value());
    auto b = std::move(factory_->open(BindOptions{.ipv4 = false}).value());
    ASSERT_EQ(a->socket_count(), 1u);
    std::vector<std::uint8_t> msg{7};
    std::array<OutDatagram, 1> out{OutDatagram{msg, {{ip("::1"), b->port()}, ip("::1"), 1}}};
    EXPECT_EQ(a->send(out).count, 1u);
    EXPECT_FALSE(out[0].source_dropped);
    out[0].path.local = ip("2001:db8::77");
    EXPECT_EQ(a->send(out).count, 1u);
    EXPECT_TRUE(out[0].source_dropped);
    Buffers buf(4);
    EXPECT_EQ(receive_all(*b, 0, buf, 2, nullptr), 2u);
  });
}

TEST_F(UdpLinuxTest, OversizedDatagramIsReportedAsZeroLength) {
  with_loopback([&] {
    auto a = std::move(factory_->open(BindOptions{.ipv6 = false}).value());
    auto b = std::move(factory_->open(BindOptions{.ipv6 = false}).value());
    std::vector<std::uint8_t> big(3000, 1), small(10, 2);
    std::array<OutDatagram, 2> out{OutDatagram{big, {{ip("127.0.0.1"), b->port()}, {}, 0}},
                                   OutDatagram{small, {{ip("127.0.0.1"), b->port()}, {}, 0}}};
    EXPECT_EQ(a->send(out).count, 2u);
    Buffers buf(4, 1000);
    std::vector<std::pair<std::vector<std::uint8_t>, net::Path>> got;
    ASSERT_EQ(receive_all(*b, 0, buf, 2, &got), 2u);
    EXPECT_TRUE(got[0].first.empty());
    EXPECT_EQ(got[1].first, small);
  });
}

TEST_F(UdpLinuxTest, ReuseportGroupIsExclusiveAgainstOthers) {
  with_loopback([&] {
    auto first = factory_->open(BindOptions{.reuse_port = true, .exclusive = true});
    ASSERT_TRUE(first.ok()) << first.message();
    const std::uint16_t port = (*first)->port();
    auto member = factory_->open(BindOptions{.port = port, .reuse_port = true, .exclusive = false});
    ASSERT_TRUE(member.ok()) << member.message();
    EXPECT_EQ((*member)->port(), port);
    // A second daemon (exclusive probe) and a plain socket are both refused.
    EXPECT_EQ(factory_->open(BindOptions{.port = port, .reuse_port = true}).code(), EADDRINUSE);
    EXPECT_EQ(factory_->open(BindOptions{.port = port}).code(), EADDRINUSE);
  });
}

TEST_F(UdpLinuxTest, FailedRebindLeavesOldBindWorking) {
  with_loopback([&] {
    auto old_bind = std::move(factory_->open(BindOptions{}).value());
    auto blocker = std::move(factory_->open(BindOptions{}).value());
    // The port change is refused...
    auto r = factory_->open(BindOptions{.port = blocker->port(), .reuse_port = true});
    EXPECT_EQ(r.code(), EADDRINUSE);
    EXPECT_FALSE(r.ok());
    // ...and the old sockets still work.
    std::vector<std::uint8_t> msg{1, 2};
    std::array<OutDatagram, 1> out{OutDatagram{msg, {{ip("::1"), old_bind->port()}, {}, 0}}};
    EXPECT_EQ(blocker->send(out).count, 1u);
    Buffers buf(2);
    EXPECT_EQ(receive_all(*old_bind, 1, buf, 1, nullptr), 1u);
  });
}

TEST_F(UdpLinuxTest, FwmarkNeedsPrivilegeAndIsApplied) {
  if (!testing::is_root())
    GTEST_SKIP() << "SO_MARK needs CAP_NET_ADMIN";
  with_loopback([&] {
    // GRO off: poll_fd() is then the socket itself, which the check below reads.
    auto b = factory_->open(BindOptions{.fwmark = 51820, .gro = false});
    ASSERT_TRUE(b.ok()) << b.message();
    EXPECT_EQ((*b)->fwmark(), 51820u);
    auto mark_of = [&](std::size_t sock) {
      int mark = -1;
      socklen_t len = sizeof(mark);
      ::getsockopt((*b)->poll_fd(sock), SOL_SOCKET, SO_MARK, &mark, &len);
      return mark;
    };
    EXPECT_EQ(mark_of(0), 51820);
    EXPECT_EQ(mark_of(1), 51820);
    EXPECT_TRUE((*b)->set_fwmark(7).ok());
    EXPECT_EQ((*b)->fwmark(), 7u);
    EXPECT_EQ(mark_of(0), 7);
    EXPECT_EQ(mark_of(1), 7);
    EXPECT_TRUE((*b)->set_fwmark(0).ok());
  });
}

}  // namespace
}  // namespace warren::platform
