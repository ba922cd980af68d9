// The registry in mesh mode (registry.h, "Mesh mode"): key-derived addresses, the recorded
// IPv4 collision index (stable across restart, re-join and other nodes coming and going), the
// "mesh" object of the enrollment answer, and the schema migration that records the index.

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>

#include "crypto/random.h"
#include "server/registry.h"
#include "server/store.h"

namespace warren::server {
namespace {

crypto::PublicKey key(int seed) {
  crypto::PrivateKey k;
  k.data()[5] = static_cast<std::uint8_t>(seed);
  k.data()[6] = static_cast<std::uint8_t>(seed >> 8);
  k.data()[2] = 11;
  return crypto::derive_public_key(k);
}

TunnelNetwork tn(const char* s) {
  auto p = *net::Prefix::parse(s);
  return TunnelNetwork{p.canonical(), p.address};
}

ServerConfig mesh_config(const char* prefix_v4 = "100.64.0.0/10") {
  ServerConfig c;
  c.interface = "wt0";
  c.ipv4 = tn("10.0.0.1/24");
  c.ipv6 = tn("fd00::1/64");
  c.public_endpoint = "vpn.example.com:51820";
  c.control_endpoint = "vpn.example.com:7443";
  c.routes = {c.ipv4->prefix};
  c.mesh = true;
  c.mesh_plan =
      *mesh::AddressPlan::create(*net::Prefix::parse(prefix_v4), *net::Prefix::parse("200::/7"));
  return c;
}

class RegistryMeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_mesh_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
  }
  void TearDown() override {
    reg_.reset();
    store_.reset();
    (void)!std::system(("rm -rf " + dir_).c_str());
  }
  /// (Re)opens the store and the registry: what a server restart does.
  void make(ServerConfig c) {
    reg_.reset();
    store_.reset();
    cfg_ = std::move(c);
    store_ = open_sqlite_store(dir_ + "/state.db");
    reg_ = std::make_unique<Registry>(cfg_, *store_, key(9999));
  }
  std::string invite(const std::string& name) {
    return reg_->create_invite(name, {}, 1, control::Fingerprint{}, 1000);
  }
  control::EnrollRequest request(const std::string& line, int seed) {
    auto inv = control::parse_invite(line);
    EXPECT_TRUE(inv.ok());
    control::EnrollRequest r;
    r.invite_id = inv->id;
    r.secret = inv->secret;
    r.public_key = key(seed);
    return r;
  }
  ClientRecord record(const std::string& name) {
    for (auto& c : reg_->clients())
      if (c.name == name)
        return c;
    ADD_FAILURE() << "no client " << name;
    return {};
  }
  std::string dir_;
  ServerConfig cfg_;
  std::unique_ptr<LeaseStore> store_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryMeshTest, AddressesFollowFromTheKeyAndTheAnswerCarriesMesh) {
  ServerConfig c = mesh_config();
  c.stun_port = 3478;
  c.stun_alternate_port = 3479;
  c.relay_port = 3480;
  make(c);
  auto r = reg_->enroll(request(invite("alice"), 1), 1000);
  ASSERT_TRUE(r.enrollment) << r.error_message;
  const std::string id = key(1).to_base64();
  ASSERT_EQ(r.enrollment->addresses.size(), 2u);
  EXPECT_EQ(r.enrollment->addresses[0].address, cfg_.mesh_plan.v4(id, 0));
  EXPECT_EQ(r.enrollment->addresses[0].length, 32);
  EXPECT_EQ(r.enrollment->addresses[1].address, cfg_.mesh_plan.v6(id));
  EXPECT_EQ(r.enrollment->addresses[1].length, 128);
  ASSERT_TRUE(r.enrollment->mesh);
  const auto& m = *r.enrollment->mesh;
  EXPECT_EQ(m.prefix_v4.to_string(), "100.64.0.0/10");
  EXPECT_EQ(m.prefix_v6.to_string(), "200::/7");
  EXPECT_EQ(m.domain, "warren");
  EXPECT_EQ(m.v4_index, 0u);
  EXPECT_EQ(m.stun, (std::vector<std::string>{"vpn.example.com:3478", "vpn.example.com:3479"}));
  EXPECT_EQ(m.relay, "vpn.example.com:3480");
  // The coordinator stays an ordinary peer with the configured routes.
  EXPECT_EQ(r.enrollment->routes, cfg_.routes);
  // Static leases: never released for idleness.
  for (const Lease& l : record("alice").leases)
    EXPECT_FALSE(l.dynamic);
}

TEST_F(RegistryMeshTest, NoMeshObjectOutsideMeshModeAndNoRelayWhenNone) {
  ServerConfig c = mesh_config();
  make(c);
  auto r = reg_->enroll(request(invite("alice"), 1), 1000);
  ASSERT_TRUE(r.enrollment && r.enrollment->mesh);
  EXPECT_TRUE(r.enrollment->mesh->relay.empty());
  EXPECT_TRUE(r.enrollment->mesh->stun.empty());
  c.mesh = false;
  make(c);
  EXPECT_FALSE(reg_->enrollment_for(record("alice")).mesh);
}

TEST_F(RegistryMeshTest, IPv6ControlHostIsBracketed) {
  ServerConfig c = mesh_config();
  c.control_endpoint = "[2001:db8::1]:7443";
  c.stun_port = 3478;
  make(c);
  auto r = reg_->enroll(request(invite("alice"), 1), 1000);
  ASSERT_TRUE(r.enrollment && r.enrollment->mesh);
  EXPECT_EQ(r.enrollment->mesh->stun, (std::vector<std::string>{"[2001:db8::1]:3478"}));
}

// [quic] (issue 15): the answer offers the WireGuard endpoint's host with the first QUIC
// listen port; without [quic] there is no "quic" object. (Not mesh specific; the fixture fits.)
TEST_F(RegistryMeshTest, QuicEndpointIsPublicHostWithTheFirstQuicPort) {
  ServerConfig c = mesh_config();
  c.mesh = false;
  make(c);
  auto r = reg_->enroll(request(invite("alice"), 1), 1000);
  ASSERT_TRUE(r.enrollment) << r.error_message;
  EXPECT_FALSE(r.enrollment->quic);
  c.quic_listen = {"0.0.0.0:443", "[::]:8443"};
  make(c);
  auto q = reg_->enrollment_for(record("alice")).quic;
  ASSERT_TRUE(q);
  EXPECT_EQ(q->endpoint, "vpn.example.com:443");
  c.public_endpoint = "[2001:db8::1]:51820";
  c.quic_listen = {"[::]:8443"};
  make(c);
  q = reg_->enrollment_for(record("alice")).quic;
  ASSERT_TRUE(q);
  EXPECT_EQ(q->endpoint, "[2001:db8::1]:8443");
  // It travels in the JSON answer and back.
  const control::Enrollment back = control::enrollment_from_json(
      control::enrollment_to_json(reg_->enrollment_for(record("alice"))));
  ASSERT_TRUE(back.quic);
  EXPECT_EQ(back.quic->endpoint, "[2001:db8::1]:8443");
}

TEST_F(RegistryMeshTest, ForcedCollisionGetsARecordedIndexStableAcrossRestartAndRejoin) {
  // In a /30 every key derives 10.99.1.2 or 10.99.1.3 (host values 0 and 1 are bumped):
  // collisions are certain. Find a key whose index-0 address is the first node's.
  const char* prefix = "10.99.1.0/30";
  make(mesh_config(prefix));
  const auto& plan = cfg_.mesh_plan;
  const std::string first_line = invite("first");
  auto first = reg_->enroll(request(first_line, 1), 1000);
  ASSERT_TRUE(first.enrollment) << first.error_message;
  const net::IpAddress first_v4 = first.enrollment->addresses[0].address;
  EXPECT_EQ(first_v4, plan.v4(key(1).to_base64(), 0));
  int seed = 2;
  while (plan.v4(key(seed).to_base64(), 0) != first_v4)
    ++seed;
  ASSERT_LT(seed, 100);  // each try is a coin flip
  const std::string second_line = invite("second");
  auto second = reg_->enroll(request(second_line, seed), 1000);
  ASSERT_TRUE(second.enrollment) << second.error_message;
  const std::uint32_t index = second.enrollment->mesh->v4_index;
  EXPECT_GE(index, 1u);
  const net::IpAddress second_v4 = second.enrollment->addresses[0].address;
  EXPECT_NE(second_v4, first_v4);
  EXPECT_EQ(second_v4, plan.v4(key(seed).to_base64(), index));
  EXPECT_EQ(record("second").mesh_v4_index, index);

  // A restart (store and registry reopened) keeps the record; a re-join keeps index and address.
  make(mesh_config(prefix));
  EXPECT_EQ(record("second").mesh_v4_index, index);
  auto again = reg_->enroll(request(second_line, seed), 2000);
  ASSERT_TRUE(again.enrollment) << again.error_message;
  EXPECT_EQ(again.enrollment->mesh->v4_index, index);
  EXPECT_EQ(again.enrollment->addresses, second.enrollment->addresses);

  // Both addresses of the /30 are taken now: a third key finds no free index.
  auto full = reg_->enroll(request(invite("third"), 500), 5000);
  EXPECT_FALSE(full.enrollment);
  EXPECT_EQ(full.error_code, "pool_exhausted");
  EXPECT_NE(full.error_message.find("mesh.prefix_v4"), std::string::npos) << full.error_message;

  // The first node's addresses are freed (its record loses them, as when it is deleted): the
  // second's index 0 is free now, yet it keeps its index — an address never changes while the
  // key does not.
  store_->transaction([&](StoreTxn& t) {
    auto c = *t.find_client_by_name("first");
    c.leases.clear();
    t.put_client(c);
  });
  auto third = reg_->enroll(request(second_line, seed), 6000);
  ASSERT_TRUE(third.enrollment) << third.error_message;
  EXPECT_EQ(third.enrollment->addresses[0].address, second_v4);
  EXPECT_EQ(third.enrollment->mesh->v4_index, index);
}

TEST_F(RegistryMeshTest, RevokedNodeKeepsItsAddressesFromNewNodes) {
  make(mesh_config("10.99.1.0/30"));
  auto a = reg_->enroll(request(invite("a"), 1), 1000);
  ASSERT_TRUE(a.enrollment);
  reg_->revoke("a", 1100);
  const ClientRecord revoked = record("a");
  EXPECT_TRUE(revoked.revoked());
  EXPECT_EQ(revoked.leases.size(), 2u) << "a revoked mesh node's addresses stay recorded";
  // Every new node avoids the revoked one's address.
  for (int seed = 2; seed < 6; ++seed) {
    auto r = reg_->enroll(request(invite("n" + std::to_string(seed)), seed), 1200);
    if (!r.enrollment) {
      EXPECT_EQ(r.error_code, "pool_exhausted");
      break;
    }
    EXPECT_NE(r.enrollment->addresses[0].address, a.enrollment->addresses[0].address);
  }
}

TEST_F(RegistryMeshTest, ServerAndDnsResponderAddressesAreNeverANodes) {
  // The server's tunnel address inside the mesh prefix: no node may derive it.
  ServerConfig c = mesh_config("10.99.1.0/30");
  c.ipv4 = tn("10.99.1.2/30");
  c.routes = {c.ipv4->prefix};
  make(c);
  for (int seed = 1; seed < 5; ++seed) {
    auto r = reg_->enroll(request(invite("n" + std::to_string(seed)), seed), 1000);
    if (!r.enrollment) {
      EXPECT_EQ(r.error_code, "pool_exhausted");
      continue;
    }
    EXPECT_EQ(r.enrollment->addresses[0].address.to_string(), "10.99.1.3");
  }
}

TEST_F(RegistryMeshTest, AClientFromBeforeMeshModeGetsMeshAddressesAtItsNextJoin) {
  ServerConfig hub = mesh_config();
  hub.mesh = false;
  make(hub);
  const std::string line = invite("old");
  auto before = reg_->enroll(request(line, 1), 1000);
  ASSERT_TRUE(before.enrollment);
  EXPECT_EQ(before.enrollment->addresses[0].address.to_string(), "10.0.0.2");
  make(mesh_config());
  auto after = reg_->enroll(request(line, 1), 2000);
  ASSERT_TRUE(after.enrollment) << after.error_message;
  EXPECT_EQ(after.enrollment->addresses[0].address, cfg_.mesh_plan.v4(key(1).to_base64(), 0));
  EXPECT_TRUE(after.enrollment->mesh);
}

TEST_F(RegistryMeshTest, SchemaVersion4IsUpgradedWithIndexZero) {
  const std::string db = dir_ + "/state.db";
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  const char* v4 =
      "CREATE TABLE invites(id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash BLOB NOT NULL,"
      " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, max_uses INTEGER NOT NULL,"
      " uses_left INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE clients(name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,"
      " invite_id TEXT NOT NULL, enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
      " revoked_at INTEGER NOT NULL, disabled_at INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE leases(address TEXT PRIMARY KEY, client_name TEXT NOT NULL REFERENCES"
      " clients(name) ON DELETE CASCADE, dynamic INTEGER NOT NULL);"
      "CREATE INDEX leases_by_client ON leases(client_name);"
      "CREATE TABLE quarantine(address TEXT PRIMARY KEY, client_name TEXT NOT NULL,"
      " freed_at INTEGER NOT NULL);"
      "PRAGMA user_version = 4;";
  ASSERT_EQ(sqlite3_exec(raw, v4, nullptr, nullptr, nullptr), SQLITE_OK);
  const std::string insert =
      "INSERT INTO clients VALUES('a','" + key(1).to_base64() + "','',1,0,0,0);";
  ASSERT_EQ(sqlite3_exec(raw, insert.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto s = open_sqlite_store(db);
  ASSERT_EQ(s->clients().size(), 1u);
  EXPECT_EQ(s->clients()[0].mesh_v4_index, 0u);
  s->transaction([&](StoreTxn& t) {
    auto c = *t.find_client_by_name("a");
    c.mesh_v4_index = 7;
    t.put_client(c);
  });
  s.reset();
  s = open_sqlite_store(db);
  EXPECT_EQ(s->clients()[0].mesh_v4_index, 7u);
  auto schema = read_sqlite_schema(db);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(schema->version, 5);
  EXPECT_EQ(schema->supported, 5);
}

}  // namespace
}  // namespace warren::server
