#include <gtest/gtest.h>
#include <poll.h>

#include <array>
#include <map>
#include <set>

#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "unit/platform/test_packets.h"

namespace warren::platform::fake {
namespace {

using net::IpAddress;
using warren::testing::Buffers;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

TEST(FakeTunTest, InjectReadWithOffsetAndReadiness) {
  FakeTun tun("wplt0", 1, 1420);
  EXPECT_FALSE(readable(tun.poll_fd(0)));
  auto p1 = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10, 1);
  auto p2 = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.3"), 20, 2);
  tun.inject(p1);
  tun.inject(p2);
  EXPECT_TRUE(readable(tun.poll_fd(0)));
  EXPECT_EQ(tun.pending(), 2u);

  Buffers b(4);
  auto r = tun.read(0, b.views, b.sizes, 16);
  ASSERT_EQ(r.count, 2u);
  EXPECT_EQ(b.sizes[0], p1.size());
  EXPECT_EQ(b.sizes[1], p2.size());
  EXPECT_TRUE(std::equal(p1.begin(), p1.end(), b.storage[0].begin() + 16));
  EXPECT_FALSE(readable(tun.poll_fd(0)));
  auto again = tun.read(0, b.views, b.sizes, 16);
  EXPECT_EQ(again.count, 0u);
  EXPECT_TRUE(again.would_block());
}

TEST(FakeTunTest, WriteCollectsValidPacketsOnly) {
  FakeTun tun;
  auto p = testing::make_ip_packet(ip("fd00::1"), ip("fd00::2"), 8);
  std::vector<std::uint8_t> junk{1, 2, 3};
  std::array<ConstBytes, 2> pkts{ConstBytes(p), ConstBytes(junk)};
  auto r = tun.write(0, pkts);
  EXPECT_EQ(r.count, 1u);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_TRUE(tun.wait_written(1, std::chrono::milliseconds(10)));
  auto w = tun.take_written();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0], p);
}

TEST(FakeTunTest, FlowsStickToOneQueue) {
  FakeTun tun("wplt1", 4);
  auto a = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 4);
  for (int i = 0; i < 10; ++i)
    tun.inject(a);
  int nonempty = 0;
  for (std::size_t q = 0; q < 4; ++q)
    nonempty += readable(tun.poll_fd(q)) ? 1 : 0;
  EXPECT_EQ(nonempty, 1);
}

TEST(FakeTunTest, RemovalIsReportedAsGone) {
  FakeTun tun;
  tun.remove();
  EXPECT_TRUE(readable(tun.poll_fd(0)));
  Buffers b(1);
  auto r = tun.read(0, b.views, b.sizes, 0);
  EXPECT_TRUE(r.gone);
  std::array<ConstBytes, 0> none{};
  EXPECT_TRUE(tun.write(0, none).gone);
}

TEST(FakeNetworkTest, DeliversWithPathsAndPorts) {
  FakeNetwork net;
  FakeHost& a = net.add_host({ip("192.0.2.1"), ip("2001:db8::1")});
  FakeHost& b = net.add_host({ip("192.0.2.2"), ip("2001:db8::2")});
  auto ba = a.open(BindOptions{});
  auto bb = b.open(BindOptions{.port = 51820});
  ASSERT_TRUE(ba.ok());
  ASSERT_TRUE(bb.ok());
  EXPECT_NE((*ba)->port(), 0);
  EXPECT_EQ((*bb)->port(), 51820);
  EXPECT_EQ((*ba)->socket_count(), 2u);

  std::vector<std::uint8_t> m4{1, 2, 3}, m6{4, 5};
  std::array<OutDatagram, 2> out{
      OutDatagram{m4, net::Path{{ip("192.0.2.2"), 51820}, std::nullopt, 0}},
      OutDatagram{m6, net::Path{{ip("2001:db8::2"), 51820}, std::nullopt, 0}}};
  auto s = (*ba)->send(out);
  EXPECT_EQ(s.count, 2u);

  Buffers buf(8);
  EXPECT_TRUE(readable((*bb)->poll_fd(0)));
  auto r4 = (*bb)->receive(0, buf.views, buf.sizes, buf.paths);
  ASSERT_EQ(r4.count, 1u);
  EXPECT_EQ(buf.sizes[0], 3u);
  EXPECT_EQ(buf.paths[0].remote, (net::Endpoint{ip("192.0.2.1"), (*ba)->port()}));
  EXPECT_EQ(buf.paths[0].local, ip("192.0.2.2"));
  EXPECT_EQ(buf.paths[0].ifindex, b.ifindex());
  auto r6 = (*bb)->receive(1, buf.views, buf.sizes, buf.paths);
  ASSERT_EQ(r6.count, 1u);
  EXPECT_EQ(buf.paths[0].remote.address, ip("2001:db8::1"));
  EXPECT_FALSE(readable((*bb)->poll_fd(0)));
}

TEST(FakeNetworkTest, PortConflictsFollowKernelRules) {
  FakeNetwork net;
  FakeHost& h = net.add_host({ip("192.0.2.1")});
  auto first = h.open(BindOptions{.port = 1000, .reuse_port = true, .exclusive = true});
  ASSERT_TRUE(first.ok());
  auto plain = h.open(BindOptions{.port = 1000});
  EXPECT_EQ(plain.code(), EADDRINUSE);
  auto exclusive = h.open(BindOptions{.port = 1000, .reuse_port = true, .exclusive = true});
  EXPECT_EQ(exclusive.code(), EADDRINUSE);
  auto member = h.open(BindOptions{.port = 1000, .reuse_port = true, .exclusive = false});
  EXPECT_TRUE(member.ok());
  first->reset();
  member->reset();
  EXPECT_TRUE(h.open(BindOptions{.port = 1000}).ok());
}

TEST(FakeNetworkTest, ReuseportGroupHashesSendersStably) {
  FakeNetwork net;
  FakeHost& server = net.add_host({ip("192.0.2.1")});
  auto g0 = server.open(BindOptions{.port = 7, .ipv6 = false, .reuse_port = true});
  auto g1 =
      server.open(BindOptions{.port = 7, .ipv6 = false, .reuse_port = true, .exclusive = false});
  ASSERT_TRUE(g0.ok() && g1.ok());
  std::vector<std::unique_ptr<UdpBind>> clients;
  std::map<std::uint16_t, int> seen;  // client port -> group member (0/1)
  FakeHost& c = net.add_host({ip("192.0.2.9")});
  for (int i = 0; i < 16; ++i)
    clients.push_back(std::move(c.open(BindOptions{.ipv6 = false}).value()));
  std::vector<std::uint8_t> msg{9};
  Buffers buf(64);
  for (int round = 0; round < 3; ++round) {
    for (auto& cl : clients) {
      std::array<OutDatagram, 1> out{OutDatagram{msg, net::Path{{ip("192.0.2.1"), 7}, {}, 0}}};
      ASSERT_EQ(cl->send(out).count, 1u);
    }
    for (int member = 0; member < 2; ++member) {
      auto& b = member == 0 ? *g0 : *g1;
      auto r = b->receive(0, buf.views, buf.sizes, buf.paths);
      for (std::size_t i = 0; i < r.count; ++i) {
        auto [it, inserted] = seen.emplace(buf.paths[i].remote.port, member);
        EXPECT_EQ(it->second, member) << "a sender moved between group members";
      }
    }
  }
  std::set<int> members;
  for (auto& [port, m] : seen)
    members.insert(m);
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_EQ(members.size(), 2u) << "16 senders should spread over both members";
}

TEST(FakeNetworkTest, StaleStickySourceIsDroppedAndReported) {
  FakeNetwork net;
  FakeHost& a = net.add_host({ip("192.0.2.1"), ip("192.0.2.11")});
  FakeHost& b = net.add_host({ip("192.0.2.2")});
  auto ba = a.open(BindOptions{.ipv6 = false});
  auto bb = b.open(BindOptions{.ipv6 = false});
  std::vector<std::uint8_t> msg{1};
  std::array<OutDatagram, 1> out{
      OutDatagram{msg, net::Path{{ip("192.0.2.2"), (*bb)->port()}, ip("192.0.2.11"), 1}}};
  ASSERT_EQ((*ba)->send(out).count, 1u);
  EXPECT_FALSE(out[0].source_dropped);
  Buffers buf(4);
  ASSERT_EQ((*bb)->receive(0, buf.views, buf.sizes, buf.paths).count, 1u);
  EXPECT_EQ(buf.paths[0].remote.address, ip("192.0.2.11"));

  a.remove_address(ip("192.0.2.11"));
  ASSERT_EQ((*ba)->send(out).count, 1u);
  EXPECT_TRUE(out[0].source_dropped);
  ASSERT_EQ((*bb)->receive(0, buf.views, buf.sizes, buf.paths).count, 1u);
  EXPECT_EQ(buf.paths[0].remote.address, ip("192.0.2.1"));
}

// Sends 200 numbered datagrams through impairments; returns the received sequence numbers.
std::vector<int> run_impaired(const Impairments& imp) {
  FakeNetwork net(imp);
  FakeHost& a = net.add_host({ip("192.0.2.1")});
  FakeHost& b = net.add_host({ip("192.0.2.2")});
  auto ba = a.open(BindOptions{.ipv6 = false});
  auto bb = b.open(BindOptions{.ipv6 = false});
  for (int i = 0; i < 200; ++i) {
    std::vector<std::uint8_t> msg{static_cast<std::uint8_t>(i)};
    std::array<OutDatagram, 1> out{
        OutDatagram{msg, net::Path{{ip("192.0.2.2"), (*bb)->port()}, {}, 0}}};
    (void)(*ba)->send(out);
  }
  net.flush();
  std::vector<int> got;
  Buffers buf(128);
  for (;;) {
    auto r = (*bb)->receive(0, buf.views, buf.sizes, buf.paths);
    if (r.count == 0)
      break;
    for (std::size_t i = 0; i < r.count; ++i)
      got.push_back(buf.storage[i][0]);
  }
  return got;
}

TEST(FakeNetworkTest, ImpairmentsAreSeededAndHaveEffect) {
  auto clean = run_impaired({});
  ASSERT_EQ(clean.size(), 200u);
  EXPECT_TRUE(std::is_sorted(clean.begin(), clean.end()));

  Impairments lossy{.loss = 0.2, .duplicate = 0.1, .reorder = 0.1, .seed = 42};
  auto a = run_impaired(lossy);
  auto b = run_impaired(lossy);
  EXPECT_EQ(a, b) << "same seed, same outcome";
  EXPECT_LT(std::set<int>(a.begin(), a.end()).size(), 200u);  // something was lost
  EXPECT_FALSE(std::is_sorted(a.begin(), a.end()));           // something was reordered
  std::map<int, int> counts;
  for (int x : a)
    ++counts[x];
  EXPECT_TRUE(std::any_of(counts.begin(), counts.end(), [](auto& kv) { return kv.second > 1; }));
}

}  // namespace
}  // namespace warren::platform::fake
