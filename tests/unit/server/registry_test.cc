// Address pool, SQLite store and enrollment policy (invites, re-join, revoke, idle release).

#include "server/registry.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "crypto/random.h"
#include "server/pool.h"
#include "server/store.h"

namespace warren::server {
namespace {

net::IpAddress ip(const char* s) {
  return *net::IpAddress::parse(s);
}

TunnelNetwork tn(const char* s) {
  auto p = *net::Prefix::parse(s);
  return TunnelNetwork{p.canonical(), p.address};
}

TEST(Pool, SkipsNetworkBroadcastServerAndReserved) {
  AddressPool p(tn("10.0.0.1/29"), {ip("10.0.0.3")});
  EXPECT_EQ(p.total(), 5u);  // .1-.6 minus the server
  EXPECT_FALSE(p.assignable(ip("10.0.0.0")));
  EXPECT_FALSE(p.assignable(ip("10.0.0.1")));
  EXPECT_FALSE(p.assignable(ip("10.0.0.7")));
  EXPECT_FALSE(p.assignable(ip("10.0.0.8")));
  EXPECT_TRUE(p.assignable(ip("10.0.0.3")));
  std::set<net::IpAddress> used;
  std::vector<std::string> got;
  while (auto a = p.pick(used)) {
    used.insert(*a);
    got.push_back(a->to_string());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
}

TEST(Pool, V6) {
  AddressPool p(tn("fd00::1/64"), {});
  EXPECT_EQ(p.total(), UINT64_MAX);
  std::set<net::IpAddress> used;
  auto a = p.pick(used);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "fd00::2");
  used.insert(*a);
  EXPECT_EQ(p.pick(used)->to_string(), "fd00::3");
  AddressPool small(tn("fd00::1/126"), {});
  EXPECT_EQ(small.total(), 2u);  // ::2, ::3 (no broadcast in IPv6)
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_srv_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
  }
  void TearDown() override { (void)!std::system(("rm -rf " + dir_).c_str()); }
  std::string db() const { return dir_ + "/state.db"; }
  std::string dir_;
};

ClientRecord client(const std::string& name, std::uint8_t seed, std::vector<Lease> leases) {
  ClientRecord c;
  c.name = name;
  crypto::PrivateKey k;
  k.data()[5] = seed;  // not byte 0: clamping would merge seeds
  k.data()[1] = 1;
  for (std::size_t i = 0; seed == 0 && i < name.size() && i < 20; ++i)
    k.data()[10 + i] = static_cast<std::uint8_t>(name[i]);
  c.public_key = crypto::derive_public_key(k);
  c.enrolled_at = 100;
  c.leases = std::move(leases);
  return c;
}

using StoreTest = TempDir;

TEST_F(StoreTest, PersistsAcrossReopenAndIs0600) {
  {
    auto s = open_sqlite_store(db());
    s->transaction([&](StoreTxn& t) {
      t.put_client(client("alice", 1, {{ip("10.0.0.2"), true}, {ip("fd00::2"), false}}));
      InviteRecord inv;
      inv.id = "0011223344556677";
      inv.name = "alice";
      inv.secret_hash[0] = 9;
      inv.uses_left = 3;
      t.put_invite(inv);
    });
  }
  struct stat st {};
  ASSERT_EQ(::stat(db().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto s = open_sqlite_store(db());
  auto all = s->clients();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "alice");
  EXPECT_EQ(all[0].leases, (std::vector<Lease>{{ip("10.0.0.2"), true}, {ip("fd00::2"), false}}));
  s->transaction([&](StoreTxn& t) {
    auto inv = t.find_invite("0011223344556677");
    ASSERT_TRUE(inv);
    EXPECT_EQ(inv->uses_left, 3);
    EXPECT_EQ(inv->secret_hash[0], 9);
    EXPECT_FALSE(t.find_invite("ffffffffffffffff"));
    EXPECT_TRUE(t.find_client_by_key(all[0].public_key));
  });
}

TEST_F(StoreTest, DuplicateAddressOrKeyRefusedAndRolledBack) {
  auto s = open_sqlite_store(db());
  s->transaction([&](StoreTxn& t) { t.put_client(client("a", 1, {{ip("10.0.0.2"), true}})); });
  EXPECT_THROW(s->transaction([&](StoreTxn& t) {
    t.put_client(client("b", 2, {{ip("10.0.0.3"), true}}));
    t.put_client(client("c", 3, {{ip("10.0.0.2"), true}}));  // taken: whole txn undone
  }),
               StoreError);
  EXPECT_THROW(s->transaction([&](StoreTxn& t) { t.put_client(client("d", 1, {})); }),
               StoreError);  // key of "a"
  auto all = s->clients();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "a");
}

TEST_F(StoreTest, ThrowInsideTransactionChangesNothing) {
  auto s = open_sqlite_store(db());
  EXPECT_THROW(s->transaction([&](StoreTxn& t) {
    t.put_client(client("a", 1, {{ip("10.0.0.2"), true}}));
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_TRUE(s->clients().empty());
}

TEST_F(StoreTest, FullDatabaseFailsCleanly) {
  auto s = open_sqlite_store(db());
  s->transaction([&](StoreTxn& t) { t.put_client(client("a", 1, {{ip("10.0.0.2"), true}})); });
  limit_sqlite_store_pages(*s, 0);
  EXPECT_THROW(s->transaction([&](StoreTxn& t) {
    for (int i = 0; i < 200; ++i)
      t.put_client(
          client("bulk" + std::to_string(i), static_cast<std::uint8_t>(i + 10),
                 {{net::IpAddress::v4(0x0a010000u + static_cast<std::uint32_t>(i)), true}}));
  }),
               StoreError);
  EXPECT_EQ(s->clients().size(), 1u);
}

TEST_F(StoreTest, NewerSchemaRefused) {
  { auto s = open_sqlite_store(db()); }
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=7", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  try {
    auto s = open_sqlite_store(db());
    FAIL() << "opened a schema from the future";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(db()), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, SchemaVersion1IsUpgraded) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  const char* v1 =
      "CREATE TABLE invites(id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash BLOB NOT NULL,"
      " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, max_uses INTEGER NOT NULL,"
      " uses_left INTEGER NOT NULL);"
      "CREATE TABLE clients(name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,"
      " invite_id TEXT NOT NULL, enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
      " revoked_at INTEGER NOT NULL);"
      "CREATE TABLE leases(address TEXT PRIMARY KEY, client_name TEXT NOT NULL REFERENCES"
      " clients(name) ON DELETE CASCADE, dynamic INTEGER NOT NULL);"
      "INSERT INTO invites VALUES('0011223344556677','alice',"
      " x'0000000000000000000000000000000000000000000000000000000000000000',1,0,1,1);"
      "PRAGMA user_version = 1;";
  ASSERT_EQ(sqlite3_exec(raw, v1, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto s = open_sqlite_store(db());
  s->transaction([&](StoreTxn& t) {
    auto inv = t.find_invite("0011223344556677");
    ASSERT_TRUE(inv);
    EXPECT_EQ(inv->name, "alice");
    EXPECT_FALSE(inv->revoked());
    inv->revoked_at = 5;
    t.put_invite(*inv);
  });
  s.reset();
  s = open_sqlite_store(db());  // version 2 now: opens without migrating again
  s->transaction([&](StoreTxn& t) { EXPECT_EQ(t.find_invite("0011223344556677")->revoked_at, 5); });
}

// Schema 3 (before `warren server disable`) gains clients.disabled_at; every row stays.
TEST_F(StoreTest, SchemaVersion3IsUpgradedKeepingItsData) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  const char* v3 =
      "CREATE TABLE invites(id TEXT PRIMARY KEY, name TEXT NOT NULL, secret_hash BLOB NOT NULL,"
      " created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, max_uses INTEGER NOT NULL,"
      " uses_left INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE clients(name TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,"
      " invite_id TEXT NOT NULL, enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
      " revoked_at INTEGER NOT NULL);"
      "CREATE TABLE leases(address TEXT PRIMARY KEY, client_name TEXT NOT NULL REFERENCES"
      " clients(name) ON DELETE CASCADE, dynamic INTEGER NOT NULL);"
      "CREATE INDEX leases_by_client ON leases(client_name);"
      "CREATE TABLE quarantine(address TEXT PRIMARY KEY, client_name TEXT NOT NULL,"
      " freed_at INTEGER NOT NULL);"
      "INSERT INTO invites VALUES('0011223344556677','alice',"
      " x'0000000000000000000000000000000000000000000000000000000000000000',1,0,1,0,0);"
      "INSERT INTO clients VALUES('alice','AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',"
      " '0011223344556677',10,20,0);"
      "INSERT INTO leases VALUES('10.0.0.2','alice',1);"
      "INSERT INTO quarantine VALUES('10.0.0.3','bob',15);"
      "PRAGMA user_version = 3;";
  ASSERT_EQ(sqlite3_exec(raw, v3, nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  auto s = open_sqlite_store(db());
  auto all = s->clients();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].name, "alice");
  EXPECT_EQ(all[0].invite_id, "0011223344556677");
  EXPECT_EQ(all[0].enrolled_at, 10);
  EXPECT_EQ(all[0].last_seen, 20);
  EXPECT_FALSE(all[0].disabled());
  EXPECT_EQ(all[0].leases, (std::vector<Lease>{{ip("10.0.0.2"), true}}));
  s->transaction([&](StoreTxn& t) {
    EXPECT_EQ(t.quarantined().size(), 1u);
    EXPECT_EQ(t.invites().size(), 1u);
    all[0].disabled_at = 30;
    t.put_client(all[0]);
  });
  s.reset();
  s = open_sqlite_store(db());  // version 5 now: opens without migrating again
  EXPECT_EQ(s->clients().at(0).disabled_at, 30);
  ASSERT_EQ(sqlite3_open(db().c_str(), &raw), SQLITE_OK);
  sqlite3_stmt* v = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &v, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(v), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(v, 0), 5);  // and on to 5 (mesh_v4_index)
  sqlite3_finalize(v);
  sqlite3_close(raw);
}

TEST_F(StoreTest, DataVersionMovesOnOtherConnectionsCommitsOnly) {
  auto server = open_sqlite_store(db());
  auto cli = open_sqlite_store(db());  // `warren server revoke` in another process
  const std::int64_t v0 = server->data_version();
  server->transaction([&](StoreTxn& t) { t.put_client(client("a", 1, {})); });
  EXPECT_EQ(server->data_version(), v0) << "its own commits must not trigger a re-sync";
  cli->transaction([&](StoreTxn& t) { t.put_client(client("b", 2, {})); });
  const std::int64_t v1 = server->data_version();
  EXPECT_NE(v1, v0);
  EXPECT_EQ(server->data_version(), v1);  // stable until the next foreign commit
}

TEST_F(StoreTest, ReadIsASnapshotThatRefusesWritesAndCommitsNothing) {
  auto s = open_sqlite_store(db());
  s->transaction([&](StoreTxn& t) { t.put_client(client("a", 1, {{ip("10.0.0.2"), true}})); });
  auto other = open_sqlite_store(db());
  const std::int64_t v0 = other->data_version();
  s->read([&](StoreTxn& t) { EXPECT_TRUE(t.find_client_by_name("a")); });
  EXPECT_THROW(s->read([&](StoreTxn& t) { t.put_client(client("b", 2, {})); }), StoreError);
  EXPECT_THROW(s->read([&](StoreTxn& t) { t.end_quarantine(ip("10.0.0.2")); }), StoreError);
  EXPECT_EQ(other->data_version(), v0);
  EXPECT_EQ(s->clients().size(), 1u);
}

// ---- registry ------------------------------------------------------------------------------

ServerConfig config(PoolStrategy strategy, const char* v4 = "10.0.0.1/28") {
  ServerConfig c;
  c.interface = "wt0";
  c.ipv4 = tn(v4);
  c.ipv6 = tn("fd00::1/64");
  c.strategy = strategy;
  c.public_endpoint = "vpn.example.com:51820";
  c.control_endpoint = "vpn.example.com:7443";
  c.routes = {c.ipv4->prefix};
  c.lease_idle_time = std::chrono::seconds(3600);
  return c;
}

crypto::PublicKey key(int seed) {
  crypto::PrivateKey k;
  k.data()[5] = static_cast<std::uint8_t>(seed);
  k.data()[6] = static_cast<std::uint8_t>(seed >> 8);
  k.data()[2] = 7;
  return crypto::derive_public_key(k);
}

control::EnrollRequest request(const std::string& line, const std::string& name, int seed) {
  auto inv = control::parse_invite(line);
  EXPECT_TRUE(inv.ok()) << inv.message();
  control::EnrollRequest r;
  r.invite_id = inv->id;
  r.secret = inv->secret;
  r.name = name;
  r.public_key = key(seed);
  return r;
}

class RegistryTest : public TempDir {
 protected:
  void make(ServerConfig c) {
    cfg_ = std::move(c);
    store_ = open_sqlite_store(db());
    reg_ = std::make_unique<Registry>(cfg_, *store_, key(9999));
  }
  std::string invite(const std::string& name, int uses = 1, std::chrono::seconds exp = {},
                     std::int64_t now = 1000) {
    return reg_->create_invite(name, exp, uses, control::Fingerprint{}, now);
  }
  ServerConfig cfg_;
  std::unique_ptr<LeaseStore> store_;
  std::unique_ptr<Registry> reg_;
};

TEST_F(RegistryTest, EnrollGivesAddressesAndSettings) {
  make(config(PoolStrategy::kDynamic));
  auto r = reg_->enroll(request(invite("alice"), "laptop", 1), 1000);
  ASSERT_TRUE(r.enrollment) << r.error_message;
  EXPECT_EQ(r.enrollment->name, "alice");
  ASSERT_EQ(r.enrollment->addresses.size(), 2u);
  EXPECT_EQ(r.enrollment->addresses[0].to_string(), "10.0.0.2/32");
  EXPECT_EQ(r.enrollment->addresses[1].to_string(), "fd00::2/128");
  EXPECT_EQ(r.enrollment->server_public_key, key(9999));
  EXPECT_EQ(r.enrollment->server_endpoint, "vpn.example.com:51820");
}

TEST_F(RegistryTest, InviteStoredAsHashOnly) {
  make(config(PoolStrategy::kDynamic));
  std::string line = invite("alice");
  auto inv = control::parse_invite(line);
  store_->transaction([&](StoreTxn& t) {
    auto rec = t.find_invite(inv->id);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->secret_hash, control::sha256(inv->secret.span()));
  });
}

TEST_F(RegistryTest, BadSecretExpiredUsedUpChangeNothing) {
  make(config(PoolStrategy::kDynamic));
  auto bad = request(invite("alice"), "", 1);
  bad.secret.data()[0] ^= 1;
  EXPECT_EQ(reg_->enroll(bad, 1000).error_code, "invite_invalid");
  bad.invite_id = "0000000000000000";
  EXPECT_EQ(reg_->enroll(bad, 1000).error_code, "invite_invalid");

  std::string exp = invite("bob", 1, std::chrono::seconds(60));
  EXPECT_EQ(reg_->enroll(request(exp, "", 2), 1060).error_code, "invite_expired");
  EXPECT_TRUE(reg_->enroll(request(exp, "", 2), 1059).enrollment);

  std::string once = invite("carol");
  EXPECT_TRUE(reg_->enroll(request(once, "", 3), 1000).enrollment);
  EXPECT_EQ(reg_->enroll(request(once, "", 4), 1000).error_code, "invite_used_up");
  EXPECT_EQ(store_->clients().size(), 2u);  // bob and carol only
}

TEST_F(RegistryTest, RejoinKeepsAddressAndDoesNotBurnUse) {
  make(config(PoolStrategy::kDynamic));
  std::string line = invite("alice");
  auto a = reg_->enroll(request(line, "", 1), 1000);
  auto b = reg_->enroll(request(line, "", 1), 2000);  // used up, but same key
  ASSERT_TRUE(a.enrollment && b.enrollment) << b.error_message;
  EXPECT_EQ(a.enrollment->addresses, b.enrollment->addresses);
  // And after a restart of the store.
  store_.reset();
  reg_.reset();
  make(config(PoolStrategy::kDynamic));
  auto c = reg_->enroll(request(line, "", 1), 3000);
  ASSERT_TRUE(c.enrollment);
  EXPECT_EQ(c.enrollment->addresses, a.enrollment->addresses);
}

// Issue 12 (2): the re-join path must not answer for a key its invite did not enroll. The
// attacker holds an old invite (used up) and a group invite (uses left) and knows alice's
// public key from `wg show`; neither gets alice's name or addresses, revives her released
// lease, burns a use, or writes anything.
TEST_F(RegistryTest, OldInvitePlusAnotherClientsKeyIsRefusedAndTellsNothing) {
  auto cfg = config(PoolStrategy::kDynamic);
  cfg.lease_idle_time = std::chrono::seconds(100);
  make(cfg);
  ASSERT_TRUE(reg_->enroll(request(invite("alice"), "", 1), 1000).enrollment);
  const std::string old = invite("bob");
  ASSERT_TRUE(reg_->enroll(request(old, "", 2), 1000).enrollment);
  const std::string group = invite("lab", 10);
  ASSERT_TRUE(reg_->enroll(request(group, "pc1", 3), 1000).enrollment);
  ASSERT_EQ(reg_->release_idle(1200).size(), 3u);  // everyone idle: leases released

  auto watcher = open_sqlite_store(db());  // sees every commit the registry makes
  const std::int64_t version = watcher->data_version();
  auto tells_nothing = [&](const control::EnrollReply& r) {
    EXPECT_FALSE(r.enrollment) << r.enrollment->name;
    for (const char* secret : {"alice", "10.0.0.2", "fd00::2", "revoked"})
      EXPECT_EQ(r.error_message.find(secret), std::string::npos) << r.error_message;
  };
  // The used-up invite answers exactly as it does for a key nobody has.
  auto stolen = reg_->enroll(request(old, "", 1), 1300);
  EXPECT_EQ(stolen.error_code, reg_->enroll(request(old, "", 77), 1300).error_code);
  EXPECT_EQ(stolen.error_code, "invite_used_up") << stolen.error_message;
  tells_nothing(stolen);
  // A usable group invite can only say that the key is taken.
  auto via_group = reg_->enroll(request(group, "x", 1), 1300);
  EXPECT_EQ(via_group.error_code, "key_in_use") << via_group.error_message;
  tells_nothing(via_group);
  EXPECT_EQ(watcher->data_version(), version) << "a refused re-join wrote to the database";
  // Revoked: the same answers, not "revoked".
  (void)reg_->revoke("alice", 1400);
  tells_nothing(reg_->enroll(request(old, "", 1), 1500));
  auto revoked = reg_->enroll(request(group, "x", 1), 1500);
  EXPECT_EQ(revoked.error_code, "key_in_use");
  tells_nothing(revoked);
  for (const auto& c : store_->clients()) {
    EXPECT_NE(c.name, "lab-x");
    if (c.name == "alice") {
      EXPECT_TRUE(c.leases.empty()) << "alice's released lease was revived";
    }
  }
  const std::string group_id = control::parse_invite(group)->id;
  for (const auto& inv : reg_->invites())
    if (inv.id == group_id) {
      EXPECT_EQ(inv.uses_left, 9) << "the refused request used the group invite";
    }
}

// A key made by `warren server export` was enrolled by no invite: the invite that first
// enrolled the name cannot fetch the new key's record.
TEST_F(RegistryTest, ExportedKeyDoesNotRejoinThroughTheNamesOldInvite) {
  make(config(PoolStrategy::kDynamic));
  const std::string line = invite("alice");
  ASSERT_TRUE(reg_->enroll(request(line, "", 1), 1000).enrollment);
  auto e = reg_->export_client("alice", 1100, crypto::SystemRandom::instance());
  auto req = request(line, "", 1);
  req.public_key = e.client.public_key;
  auto r = reg_->enroll(req, 1200);
  EXPECT_EQ(r.error_code, "invite_used_up") << r.error_message;
}

// A re-join that changes nothing is answered without a commit: a flood of them costs no
// fsync. One whose lease was released does write (and gets its own address back).
TEST_F(RegistryTest, RejoinThatChangesNothingWritesNothing) {
  auto cfg = config(PoolStrategy::kStaticOrDynamic);
  cfg.reservations["bob"] = {ip("10.0.0.9")};
  cfg.lease_idle_time = std::chrono::seconds(100);
  make(cfg);
  const std::string a = invite("alice"), b = invite("bob");
  auto first = reg_->enroll(request(a, "", 1), 1000);
  ASSERT_TRUE(first.enrollment);
  ASSERT_TRUE(reg_->enroll(request(b, "", 2), 1000).enrollment);
  auto watcher = open_sqlite_store(db());
  const std::int64_t v0 = watcher->data_version();
  for (int i = 0; i < 50; ++i) {
    auto r = reg_->enroll(request(i % 2 ? a : b, "", i % 2 ? 1 : 2), 1010 + i);
    ASSERT_TRUE(r.enrollment) << r.error_message;
  }
  EXPECT_EQ(watcher->data_version(), v0) << "an unchanged re-join committed";
  ASSERT_EQ(reg_->release_idle(1200), (std::vector<std::string>{"alice", "bob"}));
  const std::int64_t v1 = watcher->data_version();
  auto again = reg_->enroll(request(a, "", 1), 1300);
  ASSERT_TRUE(again.enrollment) << again.error_message;
  EXPECT_EQ(again.enrollment->addresses, first.enrollment->addresses);
  EXPECT_NE(watcher->data_version(), v1) << "the revived lease was not stored";
}

// Re-joining through the invite that enrolled the key: expired and used up do not matter (it
// was used when it enrolled the key); revoked by the operator refuses.
TEST_F(RegistryTest, RejoinThroughItsOwnInviteAfterExpiryButNotAfterInviteRevoke) {
  make(config(PoolStrategy::kDynamic));
  const std::string line = invite("alice", 1, std::chrono::seconds(60), 1000);
  ASSERT_TRUE(reg_->enroll(request(line, "", 1), 1010).enrollment);
  auto late = reg_->enroll(request(line, "", 1), 5000);  // expired and used up
  ASSERT_TRUE(late.enrollment) << late.error_message;
  EXPECT_EQ(late.enrollment->name, "alice");
  (void)reg_->revoke_invite(control::parse_invite(line)->id, 5100);
  EXPECT_EQ(reg_->enroll(request(line, "", 1), 5200).error_code, "invite_revoked");
}

TEST_F(RegistryTest, MultiUseInviteNamesAndNameTaken) {
  make(config(PoolStrategy::kDynamic));
  std::string line = invite("lab", 3);
  EXPECT_EQ(reg_->enroll(request(line, "", 1), 1000).error_code, "invalid_request");
  auto a = reg_->enroll(request(line, "pc1", 1), 1000);
  ASSERT_TRUE(a.enrollment);
  EXPECT_EQ(a.enrollment->name, "lab-pc1");
  EXPECT_EQ(reg_->enroll(request(line, "pc1", 2), 1000).error_code, "name_taken");
  EXPECT_TRUE(reg_->enroll(request(line, "pc2", 2), 1000).enrollment);
}

TEST_F(RegistryTest, StaticReservationsNeverGivenToOthers) {
  auto c = config(PoolStrategy::kStaticOrDynamic, "10.0.0.1/29");  // .2-.6
  c.reservations["alice"] = {ip("10.0.0.2")};
  make(c);
  auto b = reg_->enroll(request(invite("bob"), "", 2), 1000);
  ASSERT_TRUE(b.enrollment);
  EXPECT_EQ(b.enrollment->addresses[0].to_string(), "10.0.0.3/32");
  auto a = reg_->enroll(request(invite("alice"), "", 1), 1000);
  ASSERT_TRUE(a.enrollment);
  EXPECT_EQ(a.enrollment->addresses[0].to_string(), "10.0.0.2/32");
  // Exhaustion: .4 .5 .6 left for dynamic clients.
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(
        reg_->enroll(request(invite("d" + std::to_string(i)), "", 10 + i), 1000).enrollment);
  auto full = reg_->enroll(request(invite("late"), "", 20), 1000);
  EXPECT_EQ(full.error_code, "pool_exhausted");
  EXPECT_NE(full.error_message.find("exhausted"), std::string::npos);
  EXPECT_EQ(store_->clients().size(), 5u);
}

TEST_F(RegistryTest, StaticOnly) {
  auto c = config(PoolStrategy::kStatic);
  c.reservations["alice"] = {ip("10.0.0.9")};
  make(c);
  EXPECT_THROW(invite("bob"), RegistryError);
  auto a = reg_->enroll(request(invite("alice"), "", 1), 1000);
  ASSERT_TRUE(a.enrollment);
  ASSERT_EQ(a.enrollment->addresses.size(), 1u);  // no v6 reservation: none
  EXPECT_EQ(a.enrollment->addresses[0].to_string(), "10.0.0.9/32");
}

TEST_F(RegistryTest, RevokeFreesAddressAndRefusesKey) {
  auto cfg = config(PoolStrategy::kDynamic);
  cfg.address_quarantine = std::chrono::seconds(0);  // reuse at once (see Quarantine* below)
  make(cfg);
  std::string line = invite("alice");
  auto a = reg_->enroll(request(line, "", 1), 1000);
  auto before = reg_->revoke("alice", 1100);
  EXPECT_EQ(before.public_key, key(1));
  EXPECT_THROW(reg_->revoke("alice", 1100), RegistryError);
  EXPECT_THROW(reg_->revoke("nobody", 1100), RegistryError);
  EXPECT_EQ(reg_->enroll(request(line, "", 1), 1200).error_code, "revoked");
  auto b = reg_->enroll(request(invite("bob"), "", 2), 1300);
  ASSERT_TRUE(b.enrollment);
  EXPECT_EQ(b.enrollment->addresses, a.enrollment->addresses);  // returned to the pool
}

// `warren server disable`: off the interface (peer_sync_test), lease kept, re-join refused
// with its own code; enable undoes it. Idle release does not take a disabled client's lease.
TEST_F(RegistryTest, DisableKeepsLeaseRefusesRejoinEnableRestores) {
  make(config(PoolStrategy::kDynamic));
  std::string line = invite("alice");
  auto a = reg_->enroll(request(line, "", 1), 1000);
  ASSERT_TRUE(a.enrollment) << a.error_message;
  EXPECT_EQ(client_state(store_->clients().at(0)), "active");
  auto d = reg_->disable("alice", 1100);
  EXPECT_EQ(d.disabled_at, 1100);
  EXPECT_EQ(client_state(store_->clients().at(0)), "disabled");
  EXPECT_EQ(store_->clients().at(0).leases.size(), 2u);  // v4 and v6 kept
  auto refused = reg_->enroll(request(line, "", 1), 1200);
  EXPECT_EQ(refused.error_code, "disabled") << refused.error_message;
  EXPECT_FALSE(refused.enrollment);
  try {
    (void)reg_->disable("alice", 1200);
    FAIL() << "disabled twice";
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.code(), "already_disabled");
  }
  EXPECT_TRUE(reg_->release_idle(1100 + 10 * 3600).empty()) << "a disabled client keeps its lease";
  // Its address is nobody else's meanwhile.
  auto b = reg_->enroll(request(invite("bob"), "", 2), 1300);
  ASSERT_TRUE(b.enrollment);
  EXPECT_NE(b.enrollment->addresses, a.enrollment->addresses);
  auto enabled = reg_->enable("alice");
  EXPECT_EQ(enabled.disabled_at, 0);
  try {
    (void)reg_->enable("alice");
    FAIL() << "enabled twice";
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.code(), "not_disabled");
  }
  auto again = reg_->enroll(request(line, "", 1), 1400);
  ASSERT_TRUE(again.enrollment) << again.error_message;
  EXPECT_EQ(again.enrollment->addresses, a.enrollment->addresses);
  for (auto code_of : {+[](Registry& r) { (void)r.disable("nobody", 1); },
                       +[](Registry& r) { (void)r.enable("nobody"); }}) {
    try {
      code_of(*reg_);
      FAIL() << "unknown client accepted";
    } catch (const RegistryError& e) {
      EXPECT_EQ(e.code(), "unknown_client");
    }
  }
  (void)reg_->revoke("alice", 1500);
  EXPECT_EQ(client_state(store_->clients().at(0)), "revoked");
  EXPECT_THROW((void)reg_->disable("alice", 1600), RegistryError);
}

// Issue 12 (1): whoever holds a group invite must not get a revoked member back, nor its
// reservation.
TEST_F(RegistryTest, GroupInviteCannotReviveRevokedMember) {
  auto c = config(PoolStrategy::kStaticOrDynamic);
  c.reservations["lab-pc1"] = {ip("10.0.0.9")};
  make(c);
  std::string group = invite("lab", 50);
  auto a = reg_->enroll(request(group, "pc1", 1), 1000);
  ASSERT_TRUE(a.enrollment) << a.error_message;
  EXPECT_EQ(a.enrollment->addresses[0].to_string(), "10.0.0.9/32");
  (void)reg_->revoke("lab-pc1", 1100);
  auto again = reg_->enroll(request(group, "pc1", 2), 1200);  // a new key, the same name
  EXPECT_EQ(again.error_code, "revoked") << again.error_message;
  EXPECT_NE(again.error_message.find("lab-pc1"), std::string::npos) << again.error_message;
  // The group still works for other names, and the reservation went to nobody.
  EXPECT_TRUE(reg_->enroll(request(group, "pc2", 3), 1200).enrollment);
  for (const auto& cl : store_->clients())
    for (const auto& l : cl.leases)
      EXPECT_NE(l.address, ip("10.0.0.9")) << cl.name;
}

TEST_F(RegistryTest, InviteFromBeforeTheRevocationCannotReviveTheName) {
  make(config(PoolStrategy::kDynamic));
  std::string old = invite("alice", 1, {}, 1000);  // never used
  (void)reg_->export_client("alice", 1050, crypto::SystemRandom::instance());
  (void)reg_->revoke("alice", 1100);
  EXPECT_EQ(reg_->enroll(request(old, "", 1), 1200).error_code, "revoked");
  EXPECT_TRUE(store_->clients().at(0).revoked());
}

TEST_F(RegistryTest, NewInviteForTheRevokedNameEnrollsItAgain) {
  make(config(PoolStrategy::kDynamic));
  ASSERT_TRUE(reg_->enroll(request(invite("alice"), "", 1), 1000).enrollment);
  (void)reg_->revoke("alice", 1100);
  std::string fresh = invite("alice", 1, {}, 1200);  // the operator's explicit decision
  auto r = reg_->enroll(request(fresh, "", 2), 1300);
  ASSERT_TRUE(r.enrollment) << r.error_message;
  EXPECT_EQ(r.enrollment->name, "alice");
  auto all = store_->clients();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_FALSE(all[0].revoked());
  EXPECT_EQ(all[0].public_key, key(2));
}

TEST_F(RegistryTest, InvitesAreListedAndRevocable) {
  make(config(PoolStrategy::kDynamic));
  std::string a = invite("alice", 1, std::chrono::seconds(3600), 1000);
  std::string lab = invite("lab", 10, {}, 1001);
  ASSERT_TRUE(reg_->enroll(request(lab, "pc1", 1), 1002).enrollment);
  auto list = reg_->invites();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "alice");
  EXPECT_EQ(list[0].expires_at, 4600);
  EXPECT_EQ(list[1].name, "lab");
  EXPECT_EQ(list[1].uses_left, 9);
  EXPECT_FALSE(list[1].revoked());

  const std::string lab_id = control::parse_invite(lab)->id;
  auto rec = reg_->revoke_invite(lab_id, 1100);
  EXPECT_EQ(rec.revoked_at, 1100);
  auto refused = reg_->enroll(request(lab, "pc2", 2), 1200);
  EXPECT_EQ(refused.error_code, "invite_revoked");
  // Its members stay enrolled: revoking an invite is not revoking its clients.
  EXPECT_FALSE(store_->clients().at(0).revoked());
  try {
    (void)reg_->revoke_invite(lab_id, 1300);
    FAIL() << "revoked twice";
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.code(), "already_revoked");
  }
  try {
    (void)reg_->revoke_invite("0123456789abcdef", 1300);
    FAIL() << "revoked an unknown invite";
  } catch (const RegistryError& e) {
    EXPECT_EQ(e.code(), "unknown_invite");
  }
  EXPECT_EQ(reg_->invites()[1].revoked_at, 1100);
}

// Issue 12 (5): the next client must not inherit a revoked client's address (conntrack
// entries, address-keyed firewall rules, other clients' sessions to it).
TEST_F(RegistryTest, QuarantineKeepsARevokedAddressFromTheNextClient) {
  make(config(PoolStrategy::kDynamic));  // quarantine: 1 h by default
  ASSERT_EQ(cfg_.address_quarantine, std::chrono::seconds(3600));
  auto a = reg_->enroll(request(invite("alice"), "", 1), 1000);
  ASSERT_TRUE(a.enrollment);
  EXPECT_EQ(a.enrollment->addresses[0].to_string(), "10.0.0.2/32");
  (void)reg_->revoke("alice", 1100);
  auto b = reg_->enroll(request(invite("bob"), "", 2), 1200);
  ASSERT_TRUE(b.enrollment) << b.error_message;
  EXPECT_EQ(b.enrollment->addresses[0].to_string(), "10.0.0.3/32");
  EXPECT_EQ(b.enrollment->addresses[1].to_string(), "fd00::3/128");
  // Just before the hour is up it is still held back; then it returns to the pool.
  auto c = reg_->enroll(request(invite("carol"), "", 3), 1100 + 3599);
  EXPECT_EQ(c.enrollment->addresses[0].to_string(), "10.0.0.4/32");
  auto d = reg_->enroll(request(invite("dave"), "", 4), 1100 + 3600);
  EXPECT_EQ(d.enrollment->addresses[0].to_string(), "10.0.0.2/32");
}

TEST_F(RegistryTest, QuarantinedAddressGoesBackToItsFormerHolder) {
  auto cfg = config(PoolStrategy::kDynamic);
  cfg.lease_idle_time = std::chrono::seconds(100);
  make(cfg);
  std::string line = invite("alice");
  ASSERT_TRUE(reg_->enroll(request(line, "", 1), 1000).enrollment);
  EXPECT_EQ(reg_->release_idle(1200), std::vector<std::string>{"alice"});
  auto b = reg_->enroll(request(invite("bob"), "", 2), 1300);
  EXPECT_EQ(b.enrollment->addresses[0].to_string(), "10.0.0.3/32");  // not alice's
  auto again = reg_->enroll(request(line, "", 1), 1400);  // alice re-joins
  ASSERT_TRUE(again.enrollment) << again.error_message;
  EXPECT_EQ(again.enrollment->addresses[0].to_string(), "10.0.0.2/32");
  EXPECT_EQ(again.enrollment->addresses[1].to_string(), "fd00::2/128");
}

TEST_F(RegistryTest, ReservationsAreNotQuarantined) {
  auto cfg = config(PoolStrategy::kStaticOrDynamic);
  cfg.reservations["alice"] = {ip("10.0.0.9")};
  make(cfg);
  ASSERT_TRUE(reg_->enroll(request(invite("alice"), "", 1), 1000).enrollment);
  (void)reg_->revoke("alice", 1100);
  auto r = reg_->enroll(request(invite("alice", 1, {}, 1200), "", 2), 1200);
  ASSERT_TRUE(r.enrollment) << r.error_message;
  EXPECT_EQ(r.enrollment->addresses[0].to_string(), "10.0.0.9/32");
}

TEST_F(RegistryTest, IdleDynamicLeasesReleasedStaticKept) {
  auto c = config(PoolStrategy::kStaticOrDynamic);
  c.reservations["alice"] = {ip("10.0.0.9"), ip("fd00::9")};
  make(c);
  ASSERT_TRUE(reg_->enroll(request(invite("alice"), "", 1), 1000).enrollment);
  ASSERT_TRUE(reg_->enroll(request(invite("bob"), "", 2), 1000).enrollment);
  ASSERT_TRUE(reg_->enroll(request(invite("carol"), "", 3), 1000).enrollment);
  store_->touch({{"carol", 4000}});
  EXPECT_TRUE(reg_->release_idle(4599).empty());
  EXPECT_EQ(reg_->release_idle(4600), std::vector<std::string>{"bob"});
  for (const auto& cl : store_->clients()) {
    if (cl.name == "bob")
      EXPECT_TRUE(cl.leases.empty());
    else
      EXPECT_FALSE(cl.leases.empty()) << cl.name;
    EXPECT_EQ(client_state(cl), cl.name == "bob" ? "released" : "active") << cl.name;
  }
  EXPECT_EQ(reg_->release_idle(7600), std::vector<std::string>{"carol"});
}

TEST_F(RegistryTest, ExportMakesKeyAndConfig) {
  make(config(PoolStrategy::kDynamic));
  auto e = reg_->export_client("phone", 1000, crypto::SystemRandom::instance());
  EXPECT_EQ(e.client.public_key, crypto::derive_public_key(e.private_key));
  std::string conf = reg_->wg_quick_config(e.client, e.private_key);
  EXPECT_NE(conf.find("PrivateKey = " + crypto::secret_to_base64(e.private_key)),
            std::string::npos);
  EXPECT_NE(conf.find("Address = 10.0.0.2/32, fd00::2/128"), std::string::npos) << conf;
  EXPECT_NE(conf.find("Endpoint = vpn.example.com:51820"), std::string::npos);
  EXPECT_NE(conf.find("PublicKey = " + key(9999).to_base64()), std::string::npos);
  // Re-export: new key, same address.
  auto e2 = reg_->export_client("phone", 1001, crypto::SystemRandom::instance());
  EXPECT_NE(e2.client.public_key, e.client.public_key);
  EXPECT_EQ(e2.client.leases, e.client.leases);
}

TEST_F(RegistryTest, StorageFailureGivesErrorAndChangesNothing) {
  make(config(PoolStrategy::kDynamic));
  std::string line = invite("alice");
  limit_sqlite_store_pages(*store_, 0);
  // Fill the clients and leases tables' pages, one committed row at a time, until the next
  // row does not fit: the enrollment then needs a page the "disk" does not have.
  int stored = 0;
  for (int i = 0; i < 5000; ++i) {
    try {
      store_->transaction([&](StoreTxn& t) {
        t.put_client(
            client("fill" + std::to_string(i), 0,
                   {{net::IpAddress::v4(0x0b000000u + static_cast<std::uint32_t>(i)), true}}));
      });
      ++stored;
    } catch (const StoreError&) {
      break;
    }
  }
  ASSERT_LT(stored, 5000);
  auto r = reg_->enroll(request(line, "", 1), 1000);
  EXPECT_EQ(r.error_code, "storage_error") << r.error_message;
  EXPECT_EQ(store_->clients().size(), static_cast<std::size_t>(stored));
  store_->transaction([&](StoreTxn& t) {
    EXPECT_FALSE(t.find_client_by_key(key(1)));
    EXPECT_EQ(t.find_invite(control::parse_invite(line)->id)->uses_left, 1);
  });
}

// Many threads, each with its own connection to the same database (as separate processes
// would be), enroll at once: every address is distinct.
TEST_F(RegistryTest, ConcurrentEnrollmentsGetDistinctAddresses) {
  auto c = config(PoolStrategy::kDynamic, "10.0.0.1/24");
  make(c);
  std::string line = reg_->create_invite("many", {}, 1000, control::Fingerprint{}, 1000);
  constexpr int kThreads = 6, kPer = 10;
  std::vector<std::thread> threads;
  std::mutex m;
  std::vector<std::string> addrs;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = open_sqlite_store(db());
      Registry reg(c, *store, key(9999));
      for (int i = 0; i < kPer; ++i) {
        int id = t * kPer + i;
        auto r = reg.enroll(request(line, "c" + std::to_string(id), 100 + id), 1000);
        if (!r.enrollment) {
          ++failures;
          continue;
        }
        std::lock_guard lock(m);
        for (const auto& a : r.enrollment->addresses)
          addrs.push_back(a.to_string());
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(addrs.size(), 2u * kThreads * kPer);
  std::set<std::string> unique(addrs.begin(), addrs.end());
  EXPECT_EQ(unique.size(), addrs.size());
}

}  // namespace
}  // namespace warren::server
