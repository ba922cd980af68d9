// Handshake triage (Device::lane_of) and the EndpointBook behind it: which lane a datagram is
// queued in follows the peers' current endpoints exactly, through configuration, handshakes,
// roaming and removal, and never depends on anything the datagram could not forge for free.

#include <gtest/gtest.h>

#include "support/wg_harness.h"
#include "wg/endpoint_book.h"
#include "wg/messages.h"

namespace warren::wg {
namespace {

using test::Network;
using test::Node;

net::IpAddress ip(const char* s) {
  return *net::IpAddress::parse(s);
}

TEST(EndpointBook, CountsPeersPerAddress) {
  EndpointBook book;
  EXPECT_FALSE(book.contains(ip("192.0.2.1")));
  book.add(ip("192.0.2.1"));
  book.add(ip("192.0.2.1"));  // two peers behind one NAT
  book.add(ip("2001:db8::1"));
  EXPECT_EQ(book.size(), 2u);
  book.remove(ip("192.0.2.1"));
  EXPECT_TRUE(book.contains(ip("192.0.2.1")));  // the other peer is still there
  book.remove(ip("192.0.2.1"));
  EXPECT_FALSE(book.contains(ip("192.0.2.1")));
  book.remove(ip("192.0.2.9"));  // unknown: a no-op
  EXPECT_TRUE(book.contains(ip("2001:db8::1")));
  EXPECT_EQ(book.size(), 1u);
}

TEST(EndpointBook, MappedAndPlainIpv4AreOneAddress) {
  EndpointBook book;
  book.add(ip("::ffff:192.0.2.7"));
  EXPECT_TRUE(book.contains(ip("192.0.2.7")));
  book.remove(ip("192.0.2.7"));
  EXPECT_FALSE(book.contains(ip("::ffff:192.0.2.7")));
}

// The transport tag (net::Path::transport) is part of the address: the same address over
// another transport is not a known endpoint.
TEST(EndpointBook, TransportTagIsPartOfTheAddress) {
  EndpointBook book;
  book.add(ip("192.0.2.7"), 3);
  EXPECT_TRUE(book.contains(ip("192.0.2.7"), 3));
  EXPECT_FALSE(book.contains(ip("192.0.2.7")));
  book.add(ip("192.0.2.7"));
  book.remove(ip("192.0.2.7"), 3);
  EXPECT_FALSE(book.contains(ip("192.0.2.7"), 3));
  EXPECT_TRUE(book.contains(ip("192.0.2.7")));
}

class Lanes : public ::testing::Test {
 protected:
  Lanes()
      : a("a", 11, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1"),
        b("b", 12, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2"),
        c("c", 13, *net::Endpoint::parse("198.51.100.3:40000"), "10.0.0.3") {
    net.nodes = {&a, &b, &c};
  }

  // A genuine initiation from `from` to `to` (to must be from's peer).
  std::vector<std::uint8_t> initiation(Node& from) {
    from.sink.out().clear();
    net.send_ip(from, test::ipv4_packet(from.tunnel_ip.c_str(), "10.0.0.2", 20));
    EXPECT_FALSE(from.sink.out().empty());
    auto bytes = from.sink.out().at(0).bytes;
    from.sink.out().clear();
    EXPECT_EQ(load_le32(bytes.data()), kMessageInitiation);
    return bytes;
  }

  static net::Path from(const Node& n) { return net::Path{n.addr, std::nullopt, 0}; }

  Node a, b, c;
  Network net;
};

TEST(LaneName, NamesEveryLane) {
  EXPECT_STREQ(lane_name(Lane::kKnownEndpoint), "known_endpoint");
  EXPECT_STREQ(lane_name(Lane::kWithMac2), "with_mac2");
  EXPECT_STREQ(lane_name(Lane::kOther), "other");
  EXPECT_STREQ(lane_name(Lane::kDirect), "direct");
}

TEST_F(Lanes, OnlyWellSizedHandshakeMessagesAreQueued) {
  Network::connect(a, b);
  const net::Path p = from(a);
  std::vector<std::uint8_t> m(kInitiationSize, 0);
  store_le32(m.data(), kMessageInitiation);
  EXPECT_EQ(b.device.lane_of(p, m, net.now.mono), Lane::kOther);
  m.resize(kInitiationSize - 1);
  EXPECT_EQ(b.device.lane_of(p, m, net.now.mono), Lane::kDirect) << "short initiation";
  m.resize(kInitiationSize + 1);
  EXPECT_EQ(b.device.lane_of(p, m, net.now.mono), Lane::kDirect) << "long initiation";
  std::vector<std::uint8_t> r(kResponseSize, 0);
  store_le32(r.data(), kMessageResponse);
  EXPECT_EQ(b.device.lane_of(p, r, net.now.mono), Lane::kOther);
  r.resize(kInitiationSize);
  EXPECT_EQ(b.device.lane_of(p, r, net.now.mono), Lane::kDirect)
      << "response of an initiation's size";
  std::vector<std::uint8_t> cookie(kCookieReplySize, 0);
  store_le32(cookie.data(), kMessageCookieReply);
  EXPECT_EQ(b.device.lane_of(p, cookie, net.now.mono), Lane::kDirect);
  std::vector<std::uint8_t> data(64, 0);
  store_le32(data.data(), kMessageTransport);
  EXPECT_EQ(b.device.lane_of(p, data, net.now.mono), Lane::kDirect);
  EXPECT_EQ(b.device.lane_of(p, std::vector<std::uint8_t>{1, 0}, net.now.mono), Lane::kDirect);
  std::vector<std::uint8_t> reserved(kInitiationSize, 0);
  store_le32(reserved.data(), kMessageInitiation | 0x100u);  // non-zero reserved byte
  EXPECT_EQ(b.device.lane_of(p, reserved, net.now.mono), Lane::kDirect);
}

// Issue 12 (8): a mac2 earns its lane only when it is valid for the current cookie secret and
// the message's source; any non-zero mac2 used to, so a flood of forged ones took the lane.
TEST_F(Lanes, OnlyAValidMac2RanksAboveNoMac2) {
  Network::connect(c, b);
  Network::connect(b, c, /*with_endpoint=*/false);  // b does not know c's address
  b.device.force_under_load(true);
  auto m = initiation(c);
  EXPECT_EQ(b.device.lane_of(from(c), m, net.now.mono), Lane::kOther);
  auto forged = m;
  forged[msg::kInitMac2 + 15] = 1;
  EXPECT_EQ(b.device.lane_of(from(c), forged, net.now.mono), Lane::kOther)
      << "a forged mac2 (no cookie secret yet)";
  // b answers with a cookie; c's next initiation carries a genuine mac2.
  (void)b.device.decapsulate(from(c), m, net.now, b.sink);
  ASSERT_EQ(b.sink.out().size(), 1u);
  ASSERT_EQ(b.sink.out()[0].bytes.size(), kCookieReplySize);
  (void)c.device.decapsulate(from(b), b.sink.out()[0].bytes, net.now, c.sink);
  b.sink.out().clear();
  net.advance(std::chrono::seconds(6));  // past REKEY_TIMEOUT: a new initiation may leave
  auto genuine = initiation(c);          // a new handshake message, mac2 under the cookie
  ASSERT_NE(genuine[msg::kInitMac2], 0) << "c holds no cookie";
  EXPECT_EQ(b.device.lane_of(from(c), genuine, net.now.mono), Lane::kWithMac2);
  // Now that a secret exists, forgeries are checked against it and still fail.
  auto flipped = genuine;
  flipped[msg::kInitMac2 + 3] ^= 0x40;
  EXPECT_EQ(b.device.lane_of(from(c), flipped, net.now.mono), Lane::kOther);
  EXPECT_EQ(b.device.lane_of(from(c), forged, net.now.mono), Lane::kOther);
  // The cookie is bound to c's source address and port.
  net::Path elsewhere{*net::Endpoint::parse("198.51.100.3:40001"), std::nullopt, 0};
  EXPECT_EQ(b.device.lane_of(elsewhere, genuine, net.now.mono), Lane::kOther);
  // And to the secret's lifetime (kCookieRefreshTime).
  EXPECT_EQ(b.device.lane_of(from(c), genuine, net.now.mono + std::chrono::seconds(121)),
            Lane::kOther);
  b.device.force_under_load(std::nullopt);
}

TEST_F(Lanes, ConfiguredEndpointIsKnownAndFollowsRoamingAndRemoval) {
  Network::connect(a, b);
  Network::connect(b, a);  // b knows a at 192.0.2.1 from its configuration
  auto m = initiation(a);
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kKnownEndpoint);
  // Another port at the same address (a NAT rebinding) still counts: the book keys addresses.
  net::Path other_port{*net::Endpoint::parse("192.0.2.1:9"), std::nullopt, 0};
  EXPECT_EQ(b.device.lane_of(other_port, m, net.now.mono), Lane::kKnownEndpoint);
  // A stranger's address does not, whatever the message says.
  EXPECT_EQ(b.device.lane_of(from(c), m, net.now.mono), Lane::kOther);

  // The lost initiation is retransmitted and the staged packet delivered: a session.
  net.elapse(std::chrono::seconds(6));
  ASSERT_EQ(b.received.size(), 1u);
  // a roams: after an authenticated packet from its new address, the old one is unknown.
  const net::Endpoint old_addr = a.addr;
  a.addr = *net::Endpoint::parse("203.0.113.5:51820");
  net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 20));
  net.run();
  ASSERT_EQ(b.received.size(), 2u) << "the session works from the new address";
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kKnownEndpoint);
  EXPECT_EQ(b.device.lane_of(net::Path{old_addr, std::nullopt, 0}, m, net.now.mono), Lane::kOther);

  // Removing the peer forgets its endpoint.
  ConfigDelta d;
  PeerDelta p;
  p.public_key = a.pub;
  p.remove = true;
  d.peers.push_back(p);
  test::CollectingSink s;
  ASSERT_TRUE(b.device.apply(d, net.now, s));
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kOther);
}

TEST_F(Lanes, EndpointLearnedFromAHandshakeIsKnown) {
  Network::connect(a, b);
  Network::connect(b, a, /*with_endpoint=*/false);
  auto m = initiation(a);
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kOther)
      << "b has no endpoint for a yet";
  (void)b.device.decapsulate(from(a), m, net.now, b.sink);
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kKnownEndpoint);
}

TEST_F(Lanes, ReplacingPeersAndMovingTheConfiguredEndpointKeepTheBookExact) {
  Network::connect(a, b);
  Network::connect(b, a);
  auto m = initiation(a);
  ConfigDelta move;
  PeerDelta p;
  p.public_key = a.pub;
  p.update_only = true;
  p.endpoint = *net::Endpoint::parse("198.51.100.200:1");
  move.peers.push_back(p);
  test::CollectingSink s;
  ASSERT_TRUE(b.device.apply(move, net.now, s));
  EXPECT_EQ(b.device.lane_of(from(a), m, net.now.mono), Lane::kOther);
  EXPECT_EQ(b.device.lane_of(net::Path{*p.endpoint, std::nullopt, 0}, m, net.now.mono),
            Lane::kKnownEndpoint);
  ConfigDelta replace;
  replace.replace_peers = true;
  ASSERT_TRUE(b.device.apply(replace, net.now, s));
  EXPECT_EQ(b.device.lane_of(net::Path{*p.endpoint, std::nullopt, 0}, m, net.now.mono),
            Lane::kOther);
}

}  // namespace
}  // namespace warren::wg
