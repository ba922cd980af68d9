// DeviceOptions::isolate_peers: a hub drops decrypted packets addressed to another peer.

#include <gtest/gtest.h>

#include "support/wg_harness.h"

namespace warren::wg {
namespace {

using test::Network;
using test::Node;

// Client `c` with the hub as its only peer, routing the whole /24 to it.
void connect_client(Node& c, const Node& hub) {
  ConfigDelta d;
  d.private_key = c.priv;
  PeerDelta p;
  p.public_key = hub.pub;
  p.endpoint = hub.addr;
  p.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.0/24"));
  d.peers.push_back(p);
  test::CollectingSink s;
  ASSERT_TRUE(c.device.apply(d, {}, s));
}

void run_case(bool isolate, std::size_t want_hub_received_for_b) {
  DeviceOptions opt;
  opt.isolate_peers = isolate;
  Node hub("hub", 11, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1", opt);
  Node a("a", 12, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2");
  Node b("b", 13, *net::Endpoint::parse("192.0.2.3:51820"), "10.0.0.3");
  Network net;
  net.nodes = {&hub, &a, &b};
  Network::connect(hub, a);
  Network::connect(hub, b);
  connect_client(a, hub);
  connect_client(b, hub);

  // a -> hub's own address is always delivered.
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.1", 40));
  net.run();
  ASSERT_EQ(hub.received.size(), 1u);
  // a -> b through the hub: delivered to the hub's TUN (for forwarding) only without isolation.
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.3", 40));
  net.run();
  EXPECT_EQ(hub.received.size(), 1u + want_hub_received_for_b);
  EXPECT_EQ(hub.device.drop_count(Drop::kPeerIsolated), isolate ? 1u : 0u);
  // Destinations that belong to no peer (the outside, via NAT) still pass.
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.77", 40));
  net.run();
  EXPECT_EQ(hub.received.size(), 2u + want_hub_received_for_b);
}

TEST(IsolatePeers, DropsPacketsForOtherPeers) {
  run_case(true, 0);
}
TEST(IsolatePeers, OffByDefaultForwards) {
  run_case(false, 1);
}

// A server's reload of client_to_client: set_isolate_peers switches it on a running device.
TEST(IsolatePeers, SwitchedOnARunningDevice) {
  Node hub("hub", 11, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1");
  Node a("a", 12, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2");
  Node b("b", 13, *net::Endpoint::parse("192.0.2.3:51820"), "10.0.0.3");
  Network net;
  net.nodes = {&hub, &a, &b};
  Network::connect(hub, a);
  Network::connect(hub, b);
  connect_client(a, hub);
  connect_client(b, hub);
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.3", 40));
  net.run();
  EXPECT_EQ(hub.received.size(), 1u);  // forwarded: isolation is off
  hub.device.set_isolate_peers(true);
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.3", 40));
  net.run();
  EXPECT_EQ(hub.received.size(), 1u);
  EXPECT_EQ(hub.device.drop_count(Drop::kPeerIsolated), 1u);
  hub.device.set_isolate_peers(false);
  (void)net.send_ip(a, test::ipv4_packet("10.0.0.2", "10.0.0.3", 40));
  net.run();
  EXPECT_EQ(hub.received.size(), 2u);
}

TEST(IsolatePeers, DropName) {
  EXPECT_STREQ(drop_name(Drop::kPeerIsolated), "peer_isolated");
}

}  // namespace
}  // namespace warren::wg
