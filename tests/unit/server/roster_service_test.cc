// The coordinator's roster core (server/roster_service.h), driven directly: which clients are
// nodes, names, sessions and what each is sent, endpoint reports and their bounds. Every frame
// a session gets is applied to a node-side mesh::Roster, as a node would, so the deltas are
// checked by the real apply().

#include "server/roster_service.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace warren::server {
namespace {

crypto::PublicKey key(int seed) {
  crypto::PrivateKey k;
  k.data()[5] = static_cast<std::uint8_t>(seed);
  k.data()[6] = static_cast<std::uint8_t>(seed >> 8);
  k.data()[3] = 42;
  return crypto::derive_public_key(k);
}

net::Endpoint ep(const char* s) {
  return *net::Endpoint::parse(s);
}

/// A client record as the registry keeps a mesh node's (addresses derived with `index`).
ClientRecord node(const mesh::AddressPlan& plan, const std::string& name, int seed,
                  std::int64_t enrolled_at = 100, std::uint32_t index = 0) {
  ClientRecord c;
  c.name = name;
  c.public_key = key(seed);
  c.invite_id = "0123456789abcdef";
  c.enrolled_at = enrolled_at;
  c.mesh_v4_index = index;
  const std::string id = c.public_key.to_base64();
  c.leases = {Lease{plan.v4(id, index), false}, Lease{plan.v6(id), false}};
  return c;
}

class RosterCoreTest : public ::testing::Test {
 protected:
  RosterCoreTest() : core_(plan_, [this](const std::string& l) { log_.push_back(l); }) {}

  /// One tick; every frame is applied to its session's node roster. Returns the frame count.
  std::size_t tick() {
    auto frames = core_.tick();
    for (const auto& f : frames) {
      auto d = control::parse_roster_message(*f.message);
      EXPECT_TRUE(d.ok()) << d.message();
      if (!d.ok())
        continue;
      auto [it, fresh] = nodes_.try_emplace(f.session, plan_);
      auto s = it->second.apply(*d);
      EXPECT_TRUE(s.ok()) << "session " << f.session << ": " << s.message();
      last_[f.session] = *d;
      ++got_[f.session];
    }
    return frames.size();
  }
  std::set<std::string> names_at(SessionId s) {
    std::set<std::string> out;
    for (const auto& [k, e] : nodes_.at(s).nodes())
      if (e.state == mesh::NodeState::kActive)
        out.insert(e.name);
    return out;
  }

  mesh::AddressPlan plan_;
  std::vector<std::string> log_;
  RosterCore core_;
  std::map<SessionId, mesh::Roster> nodes_;
  std::map<SessionId, mesh::RosterDelta> last_;
  std::map<SessionId, int> got_;
};

TEST(MeshLabel, ClientNamesBecomeDnsLabels) {
  EXPECT_EQ(mesh_label("Laptop"), "laptop");
  EXPECT_EQ(mesh_label("alice.phone_2"), "alice-phone-2");
  EXPECT_EQ(mesh_label("team-bob"), "team-bob");
  EXPECT_EQ(mesh_label("_x_"), "x");
  EXPECT_EQ(mesh_label("__"), "node");
  EXPECT_EQ(mesh_label(std::string(70, 'a')), std::string(63, 'a'));
  EXPECT_EQ(mesh_label(std::string(62, 'a') + "_b"), std::string(62, 'a'));  // no trailing '-'
  for (const auto* n : {"Laptop", "a.b", "_x_", "__"})
    EXPECT_TRUE(mesh::valid_node_name(mesh_label(n))) << n;
}

TEST_F(RosterCoreTest, OnlyMeshNodesAreInTheRosterRevokedAndDisabledAsRevoked) {
  ClientRecord exported = node(plan_, "stock", 3);
  exported.invite_id.clear();
  ClientRecord hub = node(plan_, "old", 4);
  hub.leases = {Lease{*net::IpAddress::parse("10.8.0.5"), true}};
  ClientRecord revoked = node(plan_, "gone", 5);
  revoked.revoked_at = 500;
  ClientRecord disabled = node(plan_, "paused", 6);
  disabled.disabled_at = 600;
  core_.set_clients({node(plan_, "Alice", 1), node(plan_, "bob", 2), exported, hub, revoked,
                     disabled});
  EXPECT_EQ(tick(), 0u);  // nobody asked
  const auto& r = core_.roster();
  EXPECT_EQ(r.size(), 4u);
  EXPECT_EQ(r.find(key(1))->name, "alice");
  EXPECT_EQ(r.find(key(1))->state, mesh::NodeState::kActive);
  EXPECT_EQ(r.find(key(5))->state, mesh::NodeState::kRevoked);
  EXPECT_EQ(r.find(key(6))->state, mesh::NodeState::kRevoked);
  EXPECT_EQ(r.find(key(3)), nullptr);
  EXPECT_EQ(r.find(key(4)), nullptr);
  EXPECT_EQ(r.find(key(1))->v4, plan_.v4(key(1).to_base64(), 0));
}

TEST_F(RosterCoreTest, CollidingNamesGetSuffixesAndKeepThem) {
  core_.set_clients({node(plan_, "Alice", 1, 100), node(plan_, "alice", 2, 200),
                     node(plan_, "ALICE", 3, 300)});
  (void)tick();
  EXPECT_EQ(core_.roster().find(key(1))->name, "alice");
  EXPECT_EQ(core_.roster().find(key(2))->name, "alice-2");
  EXPECT_EQ(core_.roster().find(key(3))->name, "alice-3");
  // The first goes: the others keep their names (a name is not taken from a live node).
  core_.set_clients({node(plan_, "alice", 2, 200), node(plan_, "ALICE", 3, 300)});
  (void)tick();
  EXPECT_EQ(core_.roster().find(key(1)), nullptr);
  EXPECT_EQ(core_.roster().find(key(2))->name, "alice-2");
  EXPECT_EQ(core_.roster().find(key(3))->name, "alice-3");
  // A newcomer takes the free plain name.
  core_.set_clients({node(plan_, "alice", 2, 200), node(plan_, "ALICE", 3, 300),
                     node(plan_, "Alice!", 4, 400)});
  (void)tick();
  EXPECT_EQ(core_.roster().find(key(4))->name, "alice");
}

TEST_F(RosterCoreTest, RequestGetsSnapshotThenOneDeltaPerTickWhenTheRosterMoves) {
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  core_.request(7, key(1), 0);
  ASSERT_EQ(tick(), 1u);
  EXPECT_TRUE(last_[7].full);
  EXPECT_EQ(names_at(7), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(nodes_.at(7).version(), core_.roster().version());
  EXPECT_EQ(tick(), 0u) << "nothing moved: nothing sent";

  // Three changes between two ticks: one delta, from the version the node holds.
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2), node(plan_, "c", 3)});
  core_.report_endpoints(key(2), {{ep("192.0.2.2:51820")}, ep("198.51.100.2:40000")});
  ASSERT_EQ(tick(), 1u);
  EXPECT_FALSE(last_[7].full);
  EXPECT_EQ(names_at(7), (std::set<std::string>{"a", "b", "c"}));
  const mesh::NodeEntry* b = nodes_.at(7).find(key(2));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->reflexive, ep("198.51.100.2:40000"));
  EXPECT_EQ(b->local_endpoints, std::vector<net::Endpoint>{ep("192.0.2.2:51820")});

  // Revoked: the others see it revoked; removed (deleted): gone.
  ClientRecord c = node(plan_, "c", 3);
  c.revoked_at = 900;
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2), c});
  ASSERT_EQ(tick(), 1u);
  EXPECT_EQ(nodes_.at(7).find(key(3))->state, mesh::NodeState::kRevoked);
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  ASSERT_EQ(tick(), 1u);
  EXPECT_EQ(nodes_.at(7).find(key(3)), nullptr);
  EXPECT_EQ(nodes_.at(7).version(), core_.roster().version());
}

TEST_F(RosterCoreTest, ARequestFromAKnownVersionGetsTheDiffAStaleOneASnapshot) {
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  core_.request(1, key(1), 0);
  ASSERT_EQ(tick(), 1u);
  const std::uint64_t held = nodes_.at(1).version();
  const mesh::Roster kept = nodes_.at(1);  // what the node keeps across a reconnect
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2), node(plan_, "c", 3)});
  (void)tick();  // session 1 gets its delta; then it reconnects, asking from `held`
  core_.session_closed(1);
  core_.request(2, key(1), held);
  nodes_.insert_or_assign(2, kept);
  ASSERT_EQ(tick(), 1u);
  EXPECT_FALSE(last_[2].full);
  EXPECT_EQ(last_[2].from_version, held);
  EXPECT_EQ(last_[2].added.size(), 1u);
  // A version this roster never had (newer): the snapshot.
  core_.request(3, key(2), core_.roster().version() + 50);
  ASSERT_EQ(tick(), 1u);
  EXPECT_TRUE(last_[3].full);
  EXPECT_EQ(last_[3].added.size(), 3u);
}

TEST_F(RosterCoreTest, VersionsOfAnEarlierRunAreNotValidInThisOne) {
  // The service starts its versions at the Unix time in microseconds; a node that held
  // version 5 of an earlier run (which counted from 0) must get a snapshot, not diff(5).
  RosterCore later(plan_, [](const std::string&) {}, 1'000'000);
  later.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  later.request(1, key(1), 5);
  auto frames = later.tick();
  ASSERT_EQ(frames.size(), 1u);
  auto d = control::parse_roster_message(*frames[0].message);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->full);
  EXPECT_GT(d->to_version, 1'000'000u);
  // The same with a core starting at 0 would have answered diff(5): the test's premise.
  RosterCore naive(plan_, [](const std::string&) {});
  naive.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  for (const char* e : {"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"}) {
    naive.report_endpoints(key(1), {{ep(e)}, {}});
    (void)naive.tick();
  }
  naive.request(1, key(1), 2);
  auto f2 = naive.tick();
  ASSERT_EQ(f2.size(), 1u);
  EXPECT_FALSE(control::parse_roster_message(*f2[0].message)->full);
}

TEST_F(RosterCoreTest, InactiveNodesGetNothingUntilActive) {
  ClientRecord a = node(plan_, "a", 1);
  a.disabled_at = 5;
  core_.set_clients({a, node(plan_, "b", 2)});
  core_.request(1, key(1), 0);  // disabled: waits
  core_.request(2, key(9), 0);  // not a node at all: waits
  EXPECT_EQ(tick(), 0u);
  a.disabled_at = 0;
  core_.set_clients({a, node(plan_, "b", 2)});
  ASSERT_EQ(tick(), 1u);
  EXPECT_EQ(got_[1], 1);
  EXPECT_EQ(got_.count(2), 0u);
  // Revoked while in session: no more deltas.
  a.revoked_at = 9;
  core_.set_clients({a, node(plan_, "b", 2), node(plan_, "c", 3)});
  EXPECT_EQ(tick(), 0u);
}

TEST_F(RosterCoreTest, EndpointFloodCostsOneVersionStepATickAndBadOnesAreLogged) {
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2)});
  (void)tick();
  const std::uint64_t v0 = core_.roster().version();
  for (int i = 0; i < 1000; ++i)
    core_.report_endpoints(
        key(1), {{*net::Endpoint::parse("192.0.2." + std::to_string(1 + i % 200) + ":51820")}, {}});
  (void)tick();
  EXPECT_EQ(core_.roster().version(), v0 + 1);
  EXPECT_EQ(core_.roster().find(key(1))->local_endpoints,
            std::vector<net::Endpoint>{ep("192.0.2.200:51820")});  // the latest wins
  // The same report again: no version step.
  core_.report_endpoints(key(1), {{ep("192.0.2.200:51820")}, {}});
  (void)tick();
  EXPECT_EQ(core_.roster().version(), v0 + 1);
  // Unusable candidates are dropped with a log line naming them; the rest is kept.
  log_.clear();
  core_.report_endpoints(key(2), {{ep("127.0.0.1:51820"), ep("192.0.2.9:51820")},
                                  ep("0.0.0.0:1")});
  (void)tick();
  EXPECT_EQ(core_.roster().find(key(2))->local_endpoints,
            std::vector<net::Endpoint>{ep("192.0.2.9:51820")});
  EXPECT_FALSE(core_.roster().find(key(2))->reflexive);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find("127.0.0.1:51820: loopback"), std::string::npos) << log_[0];
  EXPECT_NE(log_[0].find("0.0.0.0:1"), std::string::npos) << log_[0];
  EXPECT_NE(log_[0].find("reported by b"), std::string::npos) << log_[0];
  // Reports of a key that is no node change nothing.
  const std::uint64_t v1 = core_.roster().version();
  core_.report_endpoints(key(77), {{ep("192.0.2.1:1")}, {}});
  (void)tick();
  EXPECT_EQ(core_.roster().version(), v1);
}

TEST_F(RosterCoreTest, ATickStaysWithinItsByteBudgetAndServesTheRestRoundRobin) {
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2), node(plan_, "c", 3)});
  (void)tick();
  core_.set_max_bytes_per_tick(1);  // every frame is over it: one frame a tick
  for (int i = 1; i <= 3; ++i)
    core_.request(static_cast<SessionId>(i), key(i), 0);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(tick(), 1u);
  EXPECT_EQ(tick(), 0u);
  EXPECT_EQ(got_.size(), 3u) << "every session served once, none twice";
  // A flood of requests from one session cannot starve the others.
  core_.set_clients({node(plan_, "a", 1), node(plan_, "b", 2), node(plan_, "c", 3),
                     node(plan_, "d", 4)});
  got_.clear();
  for (int round = 0; round < 3; ++round) {
    core_.request(1, key(1), 0);
    (void)tick();
  }
  EXPECT_EQ(got_.size(), 3u);  // sessions 2 and 3 got their deltas despite session 1
  core_.set_max_bytes_per_tick(RosterCore::kMaxBytesPerTick);
  EXPECT_LE(tick(), 3u);
  for (int i = 1; i <= 3; ++i)
    EXPECT_EQ(nodes_.at(static_cast<SessionId>(i)).version(), core_.roster().version());
}

TEST_F(RosterCoreTest, ManySessionsShareOneEncodingAndAllConverge) {
  std::vector<ClientRecord> clients;
  for (int i = 1; i <= 50; ++i)
    clients.push_back(node(plan_, "n" + std::to_string(i), i, i));
  core_.set_clients(clients);
  for (int i = 1; i <= 50; ++i)
    core_.request(static_cast<SessionId>(i), key(i), 0);
  EXPECT_EQ(tick(), 50u);
  clients.push_back(node(plan_, "late", 51, 51));
  core_.set_clients(clients);
  auto frames = core_.tick();
  ASSERT_EQ(frames.size(), 50u);
  for (const auto& f : frames)
    EXPECT_EQ(f.message.get(), frames[0].message.get()) << "one encoding for all";
  for (const auto& f : frames) {
    auto d = control::parse_roster_message(*f.message);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(nodes_.at(f.session).apply(*d).ok());
    last_[f.session] = *d;
  }
  for (int i = 1; i <= 50; ++i) {
    EXPECT_EQ(nodes_.at(static_cast<SessionId>(i)).size(), 51u);
    EXPECT_EQ(last_[static_cast<SessionId>(i)].added.size(), 1u);
  }
  EXPECT_EQ(core_.sessions(), 50u);
  for (int i = 1; i <= 50; ++i)
    core_.session_closed(static_cast<SessionId>(i));
  EXPECT_EQ(core_.sessions(), 0u);
}

}  // namespace
}  // namespace warren::server
