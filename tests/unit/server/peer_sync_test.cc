// PeerSync (issue 12 item 5): which addresses a re-sync takes away from peers, and that their
// conntrack entries, and only theirs, are deleted.

#include "server/peer_sync.h"

#include <gtest/gtest.h>

#include "platform/fake/fake_conntrack.h"

namespace warren::server {
namespace {

net::IpAddress ip(const char* s) {
  return *net::IpAddress::parse(s);
}
net::Prefix prefix(const char* s) {
  return *net::Prefix::parse(s);
}

crypto::PublicKey key(std::uint8_t seed) {
  crypto::PrivateKey k;
  k.data()[3] = seed;
  k.data()[7] = 1;
  return crypto::derive_public_key(k);
}

ClientRecord client(const char* name, std::uint8_t seed, std::vector<Lease> leases) {
  ClientRecord c;
  c.name = name;
  c.public_key = key(seed);
  c.leases = std::move(leases);
  return c;
}

wg::PeerSnapshot peer(std::uint8_t seed, std::vector<net::Prefix> ips) {
  wg::PeerSnapshot p;
  p.public_key = key(seed);
  p.allowed_ips = std::move(ips);
  return p;
}

TEST(PeerSync, RevokedAndReleasedAddressesAreFreedKeptOnesAreNot) {
  ClientRecord alice = client("alice", 1, {{ip("10.0.0.2"), true}, {ip("fd00::2"), true}});
  ClientRecord bob = client("bob", 2, {});  // its idle dynamic lease was released
  ClientRecord carol = client("carol", 3, {{ip("10.0.0.4"), true}});
  carol.revoked_at = 500;
  ClientRecord dave = client("dave", 4, {{ip("10.0.0.5"), true}});
  const std::vector<wg::PeerSnapshot> now = {
      peer(1, {prefix("10.0.0.2/32"), prefix("fd00::2/128")}), peer(2, {prefix("10.0.0.3/32")}),
      peer(3, {prefix("10.0.0.4/32"), prefix("fd00::4/128"), prefix("192.168.9.0/24")}),
      peer(4, {prefix("10.0.0.5/32"), prefix("10.0.0.6/32")}),  // .6 added by hand
  };
  PeerSync plan = plan_peer_sync({alice, bob, carol, dave}, now);
  EXPECT_EQ(plan.freed, (std::vector<net::IpAddress>{ip("10.0.0.3"), ip("10.0.0.4"), ip("10.0.0.6"),
                                                     ip("fd00::4")}))
      << "a /24 a peer routed is not a client's address: never flushed";
  std::vector<crypto::PublicKey> removed, set;
  for (const auto& d : plan.delta.peers)
    (d.remove ? removed : set).push_back(d.public_key);
  EXPECT_EQ(removed, (std::vector<crypto::PublicKey>{key(2), key(3)}));
  EXPECT_EQ(set.size(), 2u);  // alice and dave, with exactly their leases
  EXPECT_TRUE(
      plan_peer_sync({alice, dave}, {peer(1, {prefix("10.0.0.2/32"), prefix("fd00::2/128")}),
                                     peer(4, {prefix("10.0.0.5/32")})})
          .freed.empty());
}

// `warren server disable`: the peer goes, its lease stays in the record; enabling brings the
// peer back with the same addresses.
TEST(PeerSync, DisabledClientIsNoPeerAndEnabledIsAgain) {
  ClientRecord alice = client("alice", 1, {{ip("10.0.0.2"), true}});
  alice.disabled_at = 700;
  const std::vector<wg::PeerSnapshot> now = {peer(1, {prefix("10.0.0.2/32")})};
  PeerSync plan = plan_peer_sync({alice}, now);
  ASSERT_EQ(plan.delta.peers.size(), 1u);
  EXPECT_TRUE(plan.delta.peers[0].remove);
  EXPECT_EQ(plan.freed, std::vector<net::IpAddress>{ip("10.0.0.2")});
  alice.disabled_at = 0;
  plan = plan_peer_sync({alice}, {});
  ASSERT_EQ(plan.delta.peers.size(), 1u);
  EXPECT_FALSE(plan.delta.peers[0].remove);
  EXPECT_EQ(plan.delta.peers[0].allowed_ips_add, std::vector<net::Prefix>{prefix("10.0.0.2/32")});
}

TEST(PeerSync, NewlyRoutedAddressesAreThoseTheKeyDoesNotRouteYet) {
  const std::vector<wg::PeerSnapshot> now = {peer(1, {prefix("10.0.0.2/32")})};
  EXPECT_TRUE(newly_routed(now, key(1), {prefix("10.0.0.2/32")}).empty()) << "a re-join";
  EXPECT_EQ(newly_routed(now, key(1), {prefix("10.0.0.2/32"), prefix("fd00::2/128")}),
            std::vector<net::IpAddress>{ip("fd00::2")});
  EXPECT_EQ(newly_routed(now, key(2), {prefix("10.0.0.7/32")}),
            std::vector<net::IpAddress>{ip("10.0.0.7")});
}

TEST(PeerSync, ForgetFlowsDeletesOnlyTheFreedAddressesEntries) {
  platform::fake::FakeConntrack ct;
  ct.add_flow(ip("10.0.0.4"), ip("198.51.100.7"));  // carol's flow out
  ct.add_flow(ip("10.0.0.2"), ip("10.0.0.4"));      // alice to carol
  ct.add_flow(ip("10.0.0.2"), ip("198.51.100.7"));  // alice's own
  ct.flows.push_back({ip("203.0.113.9"), ip("192.0.2.1"), ip("10.0.0.4"),
                      ip("203.0.113.9")});           // a port forward DNAT'ed to carol
  ct.add_flow(ip("10.0.0.40"), ip("198.51.100.7"));  // a lookalike address
  EXPECT_EQ(forget_flows(ct, {ip("10.0.0.4")}), "10.0.0.4: 3 conntrack entries deleted");
  ASSERT_EQ(ct.flows.size(), 2u);
  EXPECT_EQ(ct.flows[0].orig_src, ip("10.0.0.2"));
  EXPECT_EQ(ct.flows[1].orig_src, ip("10.0.0.40"));
  ct.add_flow(ip("fd00::4"), ip("2001:db8::1"));
  EXPECT_EQ(forget_flows(ct, {ip("10.0.0.40"), ip("fd00::4")}),
            "10.0.0.40 fd00::4: 2 conntrack entries deleted");
  ct.fail_next(EPERM);
  const std::string failed = forget_flows(ct, {ip("10.0.0.2")});
  EXPECT_NE(failed.find("10.0.0.2: cannot delete their conntrack entries"), std::string::npos)
      << failed;
  EXPECT_EQ(ct.flows.size(), 1u);
}

}  // namespace
}  // namespace warren::server
