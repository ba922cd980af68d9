// The mesh node's roster side (client/mesh_node.h): roster deltas become exactly the engine
// changes the contract asks for, and nothing else.
#include "client/mesh_node.h"

#include <gtest/gtest.h>

#include "crypto/random.h"

namespace warren::client {
namespace {

crypto::PublicKey new_key() {
  return crypto::derive_public_key(crypto::generate_private_key(crypto::SystemRandom::instance()));
}

struct Mesh {
  mesh::AddressPlan plan;
  mesh::Roster coordinator{plan};  // the source of truth, as the server keeps it
  crypto::PublicKey self = new_key(), coord = new_key();
  MeshNode node{plan, self, coord};

  mesh::NodeEntry entry(const std::string& name, const crypto::PublicKey& key) {
    return mesh::make_entry(plan, name, key);
  }
  // The coordinator's delta from the node's version, through the wire codec.
  MeshNode::Update sync() {
    auto d = coordinator.diff(node.version());
    EXPECT_TRUE(d.ok()) << d.message();
    return node.on_delta(*mesh::decode_delta(mesh::encode_delta(*d)));
  }
};

const wg::PeerDelta* find(const MeshNode::Update& u, const crypto::PublicKey& k) {
  for (const auto& p : u.engine.peers)
    if (p.public_key == k)
      return &p;
  return nullptr;
}

TEST(MeshNode, ActiveEntriesBecomePeersButNotSelfOrCoordinator) {
  Mesh m;
  auto b = new_key(), c = new_key();
  auto eb = m.entry("b", b);
  eb.local_endpoints = {*net::Endpoint::parse("192.0.2.2:51820"),
                        *net::Endpoint::parse("192.0.2.3:51820")};
  auto ec = m.entry("c", c);
  ec.local_endpoints = {*net::Endpoint::parse("192.0.2.4:51820")};
  ec.reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  ASSERT_TRUE(m.coordinator.upsert(eb).ok());
  ASSERT_TRUE(m.coordinator.upsert(ec).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("me", m.self)).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("coordinator", m.coord)).ok());
  auto u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 2u);
  EXPECT_FALSE(u.request_snapshot);
  const auto* pb = find(u, b);
  ASSERT_TRUE(pb);
  EXPECT_EQ(pb->allowed_ips_add,
            (std::vector<net::Prefix>{net::Prefix{eb.v4, 32}, net::Prefix{eb.v6, 128}}));
  EXPECT_TRUE(pb->replace_allowed_ips);
  EXPECT_EQ(pb->endpoint, eb.local_endpoints.front());  // no reflexive: the first local one
  EXPECT_EQ(pb->persistent_keepalive, kMeshKeepalive);
  EXPECT_EQ(find(u, c)->endpoint, ec.reflexive);  // the reflexive one first
  EXPECT_FALSE(find(u, m.self));
  EXPECT_FALSE(find(u, m.coord));
  EXPECT_EQ(m.node.version(), m.coordinator.version());
}

TEST(MeshNode, OnlyChangesAreApplied) {
  Mesh m;
  auto b = new_key(), c = new_key();
  ASSERT_TRUE(m.coordinator.upsert(m.entry("b", b)).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("c", c)).ok());
  EXPECT_EQ(m.sync().engine.peers.size(), 2u);
  // c reports an endpoint: only c changes, and only its endpoint (the allowed IPs stay).
  auto ec = m.entry("c", c);
  ec.reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  ASSERT_TRUE(m.coordinator.upsert(ec).ok());
  auto u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_EQ(u.engine.peers[0].public_key, c);
  EXPECT_FALSE(u.engine.peers[0].replace_allowed_ips);
  EXPECT_TRUE(u.engine.peers[0].allowed_ips_add.empty());
  EXPECT_EQ(u.engine.peers[0].endpoint, ec.reflexive);
  // A change that does not matter to the peer (our own entry) changes nothing.
  auto me = m.entry("me", m.self);
  me.reflexive = *net::Endpoint::parse("198.51.100.9:1");
  ASSERT_TRUE(m.coordinator.upsert(me).ok());
  EXPECT_TRUE(m.sync().engine.peers.empty());
}

TEST(MeshNode, KeepaliveIsSwitchedOnWhenThePeerGetsItsFirstEndpoint) {
  // The engine handshakes at once only when persistent keepalive goes from 0 to on for a peer
  // with an endpoint: a peer first seen without one must get it switched on with the endpoint,
  // or this node never starts the simultaneous open (docs/MESH.md, "Hole punching").
  Mesh m;
  auto b = new_key();
  ASSERT_TRUE(m.coordinator.upsert(m.entry("b", b)).ok());
  auto u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_FALSE(u.engine.peers[0].endpoint);
  EXPECT_EQ(u.engine.peers[0].persistent_keepalive, 0);
  auto eb = m.entry("b", b);
  eb.reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  ASSERT_TRUE(m.coordinator.upsert(eb).ok());
  u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_EQ(u.engine.peers[0].endpoint, eb.reflexive);
  EXPECT_EQ(u.engine.peers[0].persistent_keepalive, kMeshKeepalive);
}

TEST(MeshNode, APeerBehindTheSameNatIsReachedAtItsLocalAddress) {
  Mesh m;
  auto b = new_key(), c = new_key();
  auto eb = m.entry("b", b);  // behind our router: the same reflexive address
  eb.local_endpoints = {*net::Endpoint::parse("192.168.1.20:51820")};
  eb.reflexive = *net::Endpoint::parse("198.51.100.4:40001");
  auto ec = m.entry("c", c);  // elsewhere
  ec.local_endpoints = {*net::Endpoint::parse("192.168.1.30:51820")};
  ec.reflexive = *net::Endpoint::parse("203.0.113.5:40000");
  ASSERT_TRUE(m.coordinator.upsert(eb).ok());
  ASSERT_TRUE(m.coordinator.upsert(ec).ok());
  auto u = m.sync();
  EXPECT_EQ(find(u, b)->endpoint, eb.reflexive);  // our own reflexive address not known yet
  auto me = m.entry("me", m.self);
  me.reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  ASSERT_TRUE(m.coordinator.upsert(me).ok());
  u = m.sync();  // our own report comes back in the roster
  // b moves: keepalive off, then on with the new endpoint (the engine sends to it at once).
  ASSERT_EQ(u.keepalive_off.peers.size(), 1u);
  EXPECT_EQ(u.keepalive_off.peers[0].public_key, b);
  EXPECT_EQ(u.keepalive_off.peers[0].persistent_keepalive, 0);
  EXPECT_TRUE(u.keepalive_off.peers[0].update_only);
  EXPECT_FALSE(u.keepalive_off.peers[0].endpoint);
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_EQ(u.engine.peers[0].public_key, b);
  EXPECT_EQ(u.engine.peers[0].endpoint, eb.local_endpoints.front());
  EXPECT_EQ(u.engine.peers[0].persistent_keepalive, kMeshKeepalive);
}

TEST(MeshNode, WhenThisNodesReflexiveEndpointMovesEveryPeerIsPunchedAgain) {
  Mesh m;
  auto b = new_key(), c = new_key();
  auto eb = m.entry("b", b);
  eb.reflexive = *net::Endpoint::parse("203.0.113.5:40000");
  ASSERT_TRUE(m.coordinator.upsert(eb).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("c", c)).ok());  // no endpoint: nothing to punch
  auto me = m.entry("me", m.self);
  me.reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  ASSERT_TRUE(m.coordinator.upsert(me).ok());
  (void)m.sync();
  me.reflexive = *net::Endpoint::parse("198.51.100.9:40000");  // our router's address changed
  ASSERT_TRUE(m.coordinator.upsert(me).ok());
  auto u = m.sync();
  ASSERT_EQ(u.keepalive_off.peers.size(), 1u);
  EXPECT_EQ(u.keepalive_off.peers[0].public_key, b);
  EXPECT_EQ(u.keepalive_off.peers[0].persistent_keepalive, 0);
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_EQ(u.engine.peers[0].endpoint, eb.reflexive);  // the same candidate, sent to again
  EXPECT_EQ(u.engine.peers[0].persistent_keepalive, kMeshKeepalive);
  EXPECT_FALSE(find(u, c));
  me.local_endpoints = {*net::Endpoint::parse("10.0.0.9:51820")};  // not our reflexive one
  ASSERT_TRUE(m.coordinator.upsert(me).ok());
  u = m.sync();
  EXPECT_TRUE(u.engine.peers.empty());
  EXPECT_TRUE(u.keepalive_off.peers.empty());
}

TEST(MeshNode, RevokedAndRemovedPeersGo) {
  Mesh m;
  auto b = new_key(), c = new_key();
  ASSERT_TRUE(m.coordinator.upsert(m.entry("b", b)).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("c", c)).ok());
  (void)m.sync();
  ASSERT_TRUE(m.coordinator.revoke(c).ok());
  auto u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_TRUE(u.engine.peers[0].remove);
  EXPECT_EQ(u.engine.peers[0].public_key, c);
  ASSERT_TRUE(m.coordinator.remove(c).ok());
  EXPECT_TRUE(m.sync().engine.peers.empty());  // already gone from the engine
  ASSERT_TRUE(m.coordinator.remove(b).ok());
  u = m.sync();
  ASSERT_EQ(u.engine.peers.size(), 1u);
  EXPECT_TRUE(u.engine.peers[0].remove);
  EXPECT_EQ(u.engine.peers[0].public_key, b);
}

TEST(MeshNode, StaleDeltaAsksForASnapshotAndChangesNothing) {
  Mesh m;
  ASSERT_TRUE(m.coordinator.upsert(m.entry("b", new_key())).ok());
  (void)m.sync();
  ASSERT_TRUE(m.coordinator.upsert(m.entry("c", new_key())).ok());
  ASSERT_TRUE(m.coordinator.upsert(m.entry("d", new_key())).ok());
  auto skipped = m.coordinator.diff(m.coordinator.version() - 1);  // from a version we lack
  ASSERT_TRUE(skipped.ok());
  auto u = m.node.on_delta(*skipped);
  EXPECT_TRUE(u.request_snapshot);
  EXPECT_TRUE(u.engine.peers.empty());
  EXPECT_EQ(m.node.version(), 1u);
  auto snapshot = m.coordinator.diff(0);
  ASSERT_TRUE(snapshot.ok());
  u = m.node.on_delta(*snapshot);
  EXPECT_FALSE(u.request_snapshot);
  EXPECT_EQ(u.engine.peers.size(), 2u);  // c and d; b is unchanged
  // Garbage: logged, a snapshot asked for, nothing applied.
  const std::vector<std::uint8_t> garbage{1, 2, 3};
  u = m.node.on_delta(mesh::decode_delta(garbage));
  EXPECT_TRUE(u.request_snapshot);
  EXPECT_TRUE(u.engine.peers.empty());
  EXPECT_FALSE(u.log.empty());
}

TEST(MeshNode, LocalCandidates) {
  mesh::AddressPlan plan;
  auto la = [](std::uint32_t i, const char* p) {
    return platform::LinkAddress{i, *net::Prefix::parse(p)};
  };
  const std::vector<platform::LinkAddress> addrs = {
      la(1, "127.0.0.1/8"),      la(1, "::1/128"),          la(2, "fe80::1/64"),
      la(2, "2001:db8::10/64"),  la(2, "192.0.2.10/24"),    la(3, "169.254.1.1/16"),
      la(5, "100.70.1.1/32"),    la(4, "10.1.2.3/8"),       la(6, "203:1::1/64"),
      la(2, "192.0.2.10/24"),
  };
  auto c = local_candidates(addrs, 5, 51820, plan);
  std::vector<std::string> got;
  for (const auto& e : c)
    got.push_back(e.to_string());
  EXPECT_EQ(got, (std::vector<std::string>{"192.0.2.10:51820", "10.1.2.3:51820",
                                           "[2001:db8::10]:51820"}));
  EXPECT_TRUE(local_candidates(addrs, 5, 0, plan).empty());
  std::vector<platform::LinkAddress> many;
  for (int i = 0; i < 20; ++i)
    many.push_back(la(2, ("10.0.0." + std::to_string(i + 1) + "/24").c_str()));
  EXPECT_EQ(local_candidates(many, 5, 1, plan).size(), mesh::kMaxLocalEndpoints);
}

TEST(MeshNode, EndpointsReportedOnlyWhenChanged) {
  Mesh m;
  MeshEndpoints e{{*net::Endpoint::parse("192.0.2.10:51820")}, std::nullopt};
  EXPECT_TRUE(m.node.endpoints_changed(e));
  EXPECT_FALSE(m.node.endpoints_changed(e));
  e.reflexive = *net::Endpoint::parse("198.51.100.7:40001");
  EXPECT_TRUE(m.node.endpoints_changed(e));
  EXPECT_FALSE(m.node.endpoints_changed(e));
}

// ---- candidate cycling ----

using namespace std::chrono_literals;

struct Cycling : ::testing::Test {
  CandidateCycler cycler{2s};
  MonoTime now{std::chrono::seconds(1000)};
  CandidateCycler::Peer peer;
  net::Endpoint reflexive = *net::Endpoint::parse("198.51.100.4:40000");
  net::Endpoint local = *net::Endpoint::parse("10.2.0.2:51820");

  void SetUp() override {
    peer.key = new_key();
    peer.candidates = {reflexive, local};
    peer.endpoint = reflexive;  // where MeshNode pointed it
  }
  std::vector<wg::PeerDelta> step(Duration dt) {
    now += dt;
    auto out = cycler.tick({peer}, now);
    for (const auto& d : out)
      peer.endpoint = d.endpoint;  // the engine applies it
    return out;
  }
};

TEST_F(Cycling, NoHandshakeMovesToTheNextCandidateThenStays) {
  EXPECT_TRUE(step(0s).empty());
  EXPECT_TRUE(step(1s).empty());
  auto d = step(1s);  // 2 s on the reflexive candidate without anything back
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].public_key, peer.key);
  EXPECT_TRUE(d[0].update_only);
  EXPECT_EQ(d[0].endpoint, local);
  EXPECT_EQ(d[0].transport, 0);
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(step(1s).empty()) << i;  // the last one: left to the relay policy
}

TEST_F(Cycling, ASessionOrAnythingReceivedSettlesIt) {
  (void)step(0s);
  peer.rx_packets = 1;  // the other side's initiation arrived: the core roams as it must
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(step(1s).empty()) << i;
  CandidateCycler fresh{2s};
  peer.rx_packets = 0;
  peer.has_session = true;
  (void)fresh.tick({peer}, now);
  EXPECT_TRUE(fresh.tick({peer}, now + 5s).empty());
}

TEST_F(Cycling, ARelayedPeerIsTheRelayPolicys) {
  (void)step(0s);
  peer.transport = 1;
  peer.endpoint.reset();
  for (int i = 0; i < 10; ++i)
    EXPECT_TRUE(step(1s).empty()) << i;
}

TEST_F(Cycling, NewCandidatesStartAgainFromWhereTheEngineIs) {
  (void)step(0s);
  ASSERT_EQ(step(2s).size(), 1u);  // now on the local candidate
  // The roster brings a new reflexive endpoint first (MeshNode points the engine at it).
  net::Endpoint moved = *net::Endpoint::parse("198.51.100.5:40000");
  peer.candidates = {moved, reflexive, local};
  peer.endpoint = moved;
  EXPECT_TRUE(step(1s).empty());  // seen: 2 s from now on the new first candidate
  EXPECT_TRUE(step(1s).empty());
  auto d = step(1s);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].endpoint, reflexive);
  d = step(2s);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].endpoint, local);
}

TEST(MeshNode, CandidatesChosenFirstThenTheRest) {
  Mesh m;
  auto b = new_key();
  auto eb = m.entry("b", b);
  eb.local_endpoints = {*net::Endpoint::parse("192.168.1.20:51820"),
                        *net::Endpoint::parse("198.51.100.4:40001")};
  eb.reflexive = *net::Endpoint::parse("198.51.100.4:40001");
  ASSERT_TRUE(m.coordinator.upsert(eb).ok());
  (void)m.sync();
  EXPECT_EQ(m.node.candidates(b),
            (std::vector<net::Endpoint>{*eb.reflexive, eb.local_endpoints.front()}));
  EXPECT_TRUE(m.node.candidates(m.self).empty());
  EXPECT_TRUE(m.node.candidates(new_key()).empty());
}

}  // namespace
}  // namespace warren::client
