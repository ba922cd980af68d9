// Kernel TUN devices and rtnetlink, each test in a private network namespace (needs root).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include "net/ip_header.h"
#include "platform/netlink.h"
#include "platform/tun_device.h"
#include "platform/unique_fd.h"
#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

using net::IpAddress;
using net::Prefix;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}
Prefix prefix(const char* s) {
  return *Prefix::parse(s);
}

#define REQUIRE_NETNS()    \
  if (!testing::is_root()) \
  GTEST_SKIP() << "needs root for network namespaces"

void in_netns(const std::function<void()>& body) {
  std::string err = testing::run_in_new_netns(body);
  ASSERT_TRUE(err.empty()) << err;
}

struct PacketBuffers {
  explicit PacketBuffers(std::size_t n)
      : storage(n, std::vector<std::uint8_t>(kMaxPacketSize + 64)) {
    for (auto& s : storage)
      views.emplace_back(s);
    sizes.resize(n);
  }
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<Bytes> views;
  std::vector<std::size_t> sizes;
};

// Reads from every queue until a packet satisfying `want` arrives (or ~2 s pass).
std::optional<std::vector<std::uint8_t>> read_until(TunDevice& tun,
                                                    const std::function<bool(ConstBytes)>& want) {
  PacketBuffers buf(8);
  for (int spin = 0; spin < 400; ++spin) {
    std::vector<pollfd> fds;
    for (std::size_t q = 0; q < tun.queue_count(); ++q)
      fds.push_back({tun.poll_fd(q), POLLIN, 0});
    ::poll(fds.data(), fds.size(), 5);
    for (std::size_t q = 0; q < tun.queue_count(); ++q) {
      auto r = tun.read(q, buf.views, buf.sizes, 16);
      for (std::size_t i = 0; i < r.count; ++i) {
        ConstBytes p(buf.storage[i].data() + 16, buf.sizes[i]);
        if (want(p))
          return std::vector<std::uint8_t>(p.begin(), p.end());
      }
    }
  }
  return std::nullopt;
}

std::uint16_t ipv4_checksum(const std::uint8_t* p, std::size_t len) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < len; i += 2)
    sum += load_be16(p + i);
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

TEST(TunNetlinkTest, CreateMultiQueueSetMtuAndUp) {
  REQUIRE_NETNS();
  in_netns([] {
    auto tun = create_tun(TunOptions{.name = "wplt0", .queues = 2, .mtu = 1420});
    ASSERT_TRUE(tun.ok()) << tun.message();
    EXPECT_EQ((*tun)->name(), "wplt0");
    EXPECT_EQ((*tun)->queue_count(), 2u);
    auto cfg = std::move(open_net_config().value());
    auto link = cfg->link_by_name("wplt0");
    ASSERT_TRUE(link.ok()) << link.message();
    EXPECT_EQ(link->ifindex, (*tun)->ifindex());
    EXPECT_EQ(link->mtu, 1420u);
    EXPECT_FALSE(link->up);

    ASSERT_TRUE(cfg->set_mtu((*tun)->ifindex(), 1380).ok());
    EXPECT_EQ((*tun)->mtu().value(), 1380u);
    ASSERT_TRUE((*tun)->set_mtu(9000).ok());
    EXPECT_EQ(cfg->link_by_index((*tun)->ifindex()).value().mtu, 9000u);

    ASSERT_TRUE(cfg->set_up((*tun)->ifindex(), true).ok());
    auto up = cfg->link_by_index((*tun)->ifindex());
    EXPECT_TRUE(up->up);
    EXPECT_EQ(up->name, "wplt0");

    EXPECT_EQ(cfg->link_by_name("wplt-none").code(), ENODEV);
  });
}

TEST(TunNetlinkTest, SecondSingleQueueOwnerIsRefused) {
  REQUIRE_NETNS();
  in_netns([] {
    auto a = create_tun(TunOptions{.name = "wplt1"});
    ASSERT_TRUE(a.ok()) << a.message();
    auto b = create_tun(TunOptions{.name = "wplt1"});
    EXPECT_EQ(b.code(), EBUSY);
    // A multi-queue request on the existing single-queue device falls back to... still busy.
    auto c = create_tun(TunOptions{.name = "wplt1", .queues = 2});
    EXPECT_FALSE(c.ok());
  });
}

TEST(TunNetlinkTest, PacketsFlowBothWays) {
  REQUIRE_NETNS();
  in_netns([] {
    auto tun = std::move(create_tun(TunOptions{.name = "wplt2", .queues = 2}).value());
    ASSERT_TRUE(tun);
    auto cfg = std::move(open_net_config().value());
    ASSERT_TRUE(cfg->add_address(tun->ifindex(), prefix("10.66.0.1/24")).ok());
    ASSERT_TRUE(cfg->set_up(tun->ifindex(), true).ok());

    // Host -> tunnel: a UDP datagram to 10.66.0.2 comes out of the TUN as an IPv4 packet.
    UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9999);
    inet_pton(AF_INET, "10.66.0.2", &to.sin_addr);
    const char msg[] = "hello tunnel";
    ASSERT_EQ(::sendto(s.get(), msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(sizeof(msg)));
    auto pkt = read_until(*tun, [](ConstBytes p) {
      auto h = net::parse_ip_header(p);
      return h && h->destination == ip("10.66.0.2");
    });
    ASSERT_TRUE(pkt.has_value());
    EXPECT_EQ(net::parse_ip_header(*pkt)->source, ip("10.66.0.1"));

    // Tunnel -> host: an IPv4/UDP packet written to the TUN reaches a socket on 10.66.0.1.
    UniqueFd rx(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(7777);
    inet_pton(AF_INET, "10.66.0.1", &local.sin_addr);
    ASSERT_EQ(::bind(rx.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
    std::vector<std::uint8_t> p(20 + 8 + 4, 0);
    p[0] = 0x45;
    store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
    p[8] = 64;
    p[9] = 17;
    auto src = ip("10.66.0.2"), dst = ip("10.66.0.1");
    std::copy(src.data(), src.data() + 4, &p[12]);
    std::copy(dst.data(), dst.data() + 4, &p[16]);
    store_be16(&p[10], ipv4_checksum(p.data(), 20));
    store_be16(&p[20], 5555);
    store_be16(&p[22], 7777);
    store_be16(&p[24], 12);  // UDP length; checksum 0 = none (IPv4)
    std::copy_n("ping", 4, &p[28]);
    std::array<ConstBytes, 1> pkts{ConstBytes(p)};
    auto w = tun->write(1, pkts);
    EXPECT_EQ(w.count, 1u);
    pollfd pfd{rx.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 2000), 1);
    char got[16];
    EXPECT_EQ(::recv(rx.get(), got, sizeof(got), 0), 4);
    EXPECT_EQ(std::string(got, 4), "ping");
  });
}

TEST(TunNetlinkTest, AddressesAndRoutes) {
  REQUIRE_NETNS();
  in_netns([] {
    auto tun = std::move(create_tun(TunOptions{.name = "wplt3"}).value());
    auto cfg = std::move(open_net_config().value());
    const auto idx = tun->ifindex();
    ASSERT_TRUE(cfg->set_up(idx, true).ok());
    for (const char* a : {"10.9.0.1/24", "fd00:9::1/64"}) {
      EXPECT_TRUE(cfg->add_address(idx, prefix(a)).ok()) << a;
      EXPECT_EQ(cfg->add_address(idx, prefix(a)).code(), EEXIST) << a;
    }
    RouteSpec r4{prefix("10.77.0.0/16"), idx, 0, 5};
    RouteSpec r6{prefix("fd77::/48"), idx, 0, std::nullopt};
    RouteSpec table{prefix("0.0.0.0/0"), idx, 51820, std::nullopt};
    for (const RouteSpec* r : {&r4, &r6, &table}) {
      Status s = r == &r6 ? cfg->add_route(*r) : cfg->add_route(*r);
      EXPECT_TRUE(s.ok()) << r->destination.to_string() << ": " << s.message();
      EXPECT_EQ(cfg->add_route(*r).code(), EEXIST) << r->destination.to_string();
      EXPECT_TRUE(cfg->delete_route(*r).ok()) << r->destination.to_string();
      EXPECT_EQ(cfg->delete_route(*r).code(), ESRCH) << r->destination.to_string();
    }
    for (const char* a : {"10.9.0.1/24", "fd00:9::1/64"}) {
      EXPECT_TRUE(cfg->delete_address(idx, prefix(a)).ok()) << a;
      EXPECT_EQ(cfg->delete_address(idx, prefix(a)).code(), EADDRNOTAVAIL) << a;
    }
  });
}

TEST(TunNetlinkTest, MonitorSeesChangesAndDeletionAndTunReportsGone) {
  REQUIRE_NETNS();
  in_netns([] {
    auto tun = std::move(create_tun(TunOptions{.name = "wplt4", .queues = 2}).value());
    ASSERT_TRUE(tun);
    auto cfg = std::move(open_net_config().value());
    auto mon = open_link_monitor(tun->ifindex());
    ASSERT_TRUE(mon.ok()) << mon.message();
    auto other = std::move(create_tun(TunOptions{.name = "wplt5"}).value());  // filtered out

    std::vector<LinkEvent> events;
    int route_events = 0;
    auto drain = [&] {
      for (int i = 0; i < 200; ++i) {
        pollfd p{(*mon)->poll_fd(), POLLIN, 0};
        if (::poll(&p, 1, 10) == 0 && !events.empty())
          break;
        // Route and address notifications (kRoutesChanged) are counted apart: setting a link
        // up makes the kernel add routes, and those say nothing about one link's state.
        auto r = (*mon)->poll([&](const LinkEvent& e) {
          if (e.kind == LinkEvent::Kind::kRoutesChanged) {
            ++route_events;
          } else {
            events.push_back(e);
          }
        });
        ASSERT_TRUE(r.ok()) << r.message();
      }
    };
    ASSERT_TRUE(cfg->set_mtu(tun->ifindex(), 1300).ok());
    ASSERT_TRUE(cfg->set_mtu(other->ifindex(), 1301).ok());
    drain();
    ASSERT_FALSE(events.empty());
    for (const auto& e : events)
      EXPECT_EQ(e.link.ifindex, tun->ifindex());
    EXPECT_EQ(events.back().kind, LinkEvent::Kind::kChanged);
    EXPECT_EQ(events.back().link.mtu, 1300u);

    ASSERT_TRUE(cfg->set_up(tun->ifindex(), true).ok());
    events.clear();
    drain();
    ASSERT_FALSE(events.empty());
    EXPECT_TRUE(events.back().link.up);

    // An address change is reported as a routes change, whatever link it is on.
    route_events = 0;
    ASSERT_TRUE(cfg->add_address(other->ifindex(), *net::Prefix::parse("10.99.0.1/24")).ok());
    for (int i = 0; i < 100 && route_events == 0; ++i) {
      pollfd p{(*mon)->poll_fd(), POLLIN, 0};
      ::poll(&p, 1, 10);
      auto r = (*mon)->poll([&](const LinkEvent& e) {
        if (e.kind == LinkEvent::Kind::kRoutesChanged)
          ++route_events;
      });
      ASSERT_TRUE(r.ok()) << r.message();
    }
    EXPECT_GT(route_events, 0);

    ASSERT_TRUE(cfg->delete_link(tun->ifindex()).ok());
    events.clear();
    drain();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().kind, LinkEvent::Kind::kDeleted);
    EXPECT_EQ(events.back().link.name, "wplt4");

    PacketBuffers buf(2);
    for (std::size_t q = 0; q < 2; ++q) {
      pollfd p{tun->poll_fd(q), POLLIN, 0};
      EXPECT_EQ(::poll(&p, 1, 1000), 1);
      auto r = tun->read(q, buf.views, buf.sizes, 0);
      EXPECT_TRUE(r.gone) << "queue " << q << " error " << r.error;
    }
  });
}

}  // namespace
}  // namespace warren::platform
