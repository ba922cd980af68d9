// The real enrollment path: EnrollServer over loopback TLS in front of a Registry and a SQLite
// store, as the running server wires them (without the data plane).

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "control/enroll.h"
#include "platform/tcp.h"
#include "server/registry.h"
#include "server/state.h"

namespace warren::server {
namespace {

crypto::PrivateKey private_key(int seed) {
  crypto::PrivateKey k;
  k.data()[5] = static_cast<std::uint8_t>(seed);
  k.data()[9] = 3;
  return k;
}

crypto::PublicKey key(int seed) {
  return crypto::derive_public_key(private_key(seed));
}

class EnrollOverTls : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_enr_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
    auto p = *net::Prefix::parse("10.5.0.1/29");
    cfg_.interface = "we0";
    cfg_.ipv4 = TunnelNetwork{p.canonical(), p.address};
    cfg_.strategy = PoolStrategy::kDynamic;
    cfg_.public_endpoint = "192.0.2.1:51820";
    cfg_.routes = {cfg_.ipv4->prefix};
    cfg_.database = dir_ + "/s.db";
    store_ = open_sqlite_store(cfg_.database);
    reg_ = std::make_unique<Registry>(cfg_, *store_, key(200));
    identity_ = control::TlsIdentity::generate();
    server_ = std::make_unique<control::EnrollServer>(
        identity_, "127.0.0.1:0",
        [this](const control::EnrollRequest& r) { return reg_->enroll(r, now_); });
    server_->start();
    cfg_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_->stop();
    (void)!std::system(("rm -rf " + dir_).c_str());
  }
  control::Invite invite(const std::string& name, int uses, std::chrono::seconds exp) {
    return *control::parse_invite(
        reg_->create_invite(name, exp, uses, identity_.fingerprint(), now_));
  }
  std::string code_of(const control::Invite& inv, const std::string& name, int seed) {
    try {
      (void)control::enroll(inv, name, private_key(seed));
      return "ok";
    } catch (const control::EnrollError& e) {
      return e.code();
    }
  }

  std::string dir_;
  ServerConfig cfg_;
  std::unique_ptr<LeaseStore> store_;
  std::unique_ptr<Registry> reg_;
  control::TlsIdentity identity_;
  std::unique_ptr<control::EnrollServer> server_;
  std::atomic<std::int64_t> now_{10'000};
};

TEST_F(EnrollOverTls, GoodRejoinUsedUpExpired) {
  auto inv = invite("alice", 1, std::chrono::seconds(3600));
  auto e = control::enroll(inv, "laptop", private_key(1));
  EXPECT_EQ(e.name, "alice");
  ASSERT_EQ(e.addresses.size(), 1u);
  EXPECT_EQ(e.addresses[0].to_string(), "10.5.0.2/32");
  EXPECT_EQ(e.server_public_key, key(200));
  EXPECT_EQ(e.server_endpoint, "192.0.2.1:51820");
  // Same key again: same address, no use burned (the invite had one).
  EXPECT_EQ(control::enroll(inv, "laptop", private_key(1)).addresses, e.addresses);
  EXPECT_EQ(code_of(inv, "other", 2), "invite_used_up");

  auto soon = invite("bob", 1, std::chrono::seconds(60));
  now_ += 61;
  EXPECT_EQ(code_of(soon, "", 3), "invite_expired");
  EXPECT_EQ(store_->clients().size(), 1u);
}

// [enrollment] listen with two addresses: one server (one loop, shared caps) answers on both.
TEST_F(EnrollOverTls, OneServerOnSeveralAddresses) {
  auto probe = platform::tcp_listen("[::]:0");
  if (!probe)
    GTEST_SKIP() << "no IPv6: " << probe.message();
  const std::string port = std::to_string((*probe)->port());
  probe->reset();
  auto both = std::make_unique<control::EnrollServer>(
      identity_, std::vector<std::string>{"127.0.0.1:" + port, "[::1]:" + port},
      [this](const control::EnrollRequest& r) { return reg_->enroll(r, now_); });
  both->start();
  EXPECT_EQ(std::to_string(both->port()), port);
  cfg_.control_endpoint = "127.0.0.1:" + port;
  EXPECT_EQ(code_of(invite("v4", 1, std::chrono::hours(1)), "v4", 1), "ok");
  cfg_.control_endpoint = "[::1]:" + port;
  EXPECT_EQ(code_of(invite("v6", 1, std::chrono::hours(1)), "v6", 2), "ok");
  both->stop();
  // An address that cannot be bound is named.
  try {
    control::EnrollServer bad(identity_, std::vector<std::string>{"127.0.0.1:0", "192.0.2.1:7443"},
                              [](const control::EnrollRequest&) { return control::EnrollReply{}; });
    ADD_FAILURE() << "bound 192.0.2.1";
  } catch (const control::ControlError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 192.0.2.1:7443"), std::string::npos)
        << e.what();
  }
}

TEST_F(EnrollOverTls, ExhaustionIsAClearError) {
  auto inv = invite("grp", 10, {});
  for (int i = 0; i < 5; ++i)  // /29: .2 .. .6
    EXPECT_EQ(code_of(inv, "m" + std::to_string(i), 10 + i), "ok");
  try {
    (void)control::enroll(inv, "m9", private_key(30));
    FAIL();
  } catch (const control::EnrollError& e) {
    EXPECT_EQ(e.code(), "pool_exhausted");
    EXPECT_NE(std::string(e.what()).find("10.5.0.0/29 is exhausted"), std::string::npos)
        << e.what();
  }
}

// Issue 12 (2), the attack: a holder of the group invite that enrolled a victim, who knows only
// the victim's PUBLIC key (visible in `wg show` on any peer), asks to re-join as the victim. In
// protocol version 1 this request went straight to Registry::enroll, whose re-join path answered
// with the victim's name and addresses (the last block below shows that it still would). Now it
// is refused with proof_invalid and learns nothing, and so is a genuine proof replayed from
// another connection.
TEST_F(EnrollOverTls, RejoinWithOnlyThePublicKeyIsRefusedAndLearnsNothing) {
  auto group = invite("lab", 5, std::chrono::seconds(3600));
  const auto victim = control::enroll(group, "pc1", private_key(1));
  ASSERT_EQ(victim.name, "lab-pc1");
  ASSERT_EQ(victim.addresses.size(), 1u);
  const std::string victim_address = victim.addresses[0].address.to_string();

  auto exchange = [&](const std::function<std::string(const crypto::PublicKey&,
                                                      const control::ExporterValue&)>& make) {
    auto deadline = control::SteadyClock::now() + std::chrono::seconds(5);
    auto s = control::TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(),
                                         deadline);
    auto challenge = control::parse_enroll_hello(s->read_frame(control::kMaxMessageBytes, deadline));
    EXPECT_TRUE(challenge.ok()) << challenge.message();
    s->write_frame(make(*challenge, s->export_keying_material(control::kExporterLabel)), deadline);
    return s->read_frame(control::kMaxMessageBytes, deadline);
  };
  control::EnrollRequest forged;
  forged.invite_id = group.id;
  forged.secret = group.secret;
  forged.name = "pc1";
  forged.public_key = key(1);  // the victim's public key; the attacker lacks its private key

  std::string reply = exchange([&](const crypto::PublicKey& challenge,
                                   const control::ExporterValue& channel) {
    control::EnrollRequest r = forged;
    r.proof = *control::make_enroll_proof(private_key(66), challenge, channel, r.invite_id);
    return control::enroll_request_to_json(r);
  });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  EXPECT_EQ(reply.find("lab-pc1"), std::string::npos) << reply;
  EXPECT_EQ(reply.find(victim_address), std::string::npos) << reply;

  // Replay: the victim's genuine proof, recorded on another connection.
  std::string recorded;
  (void)exchange([&](const crypto::PublicKey& challenge, const control::ExporterValue& channel) {
    control::EnrollRequest r = forged;
    r.proof = *control::make_enroll_proof(private_key(1), challenge, channel, r.invite_id);
    recorded = control::enroll_request_to_json(r);
    return std::string("{}");
  });
  reply = exchange([&](const crypto::PublicKey&, const control::ExporterValue&) { return recorded; });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  EXPECT_EQ(reply.find(victim_address), std::string::npos) << reply;

  // Control: the handler alone (all a version-1 server had) would have answered the forged
  // request with the victim's enrollment; the wire-level proof is what stops it.
  auto direct = reg_->enroll(forged, now_);
  ASSERT_TRUE(direct.enrollment) << direct.error_code;
  EXPECT_EQ(direct.enrollment->name, "lab-pc1");
  EXPECT_EQ(direct.enrollment->addresses, victim.addresses);
}

TEST_F(EnrollOverTls, WrongCertificateNeverReachesRegistry) {
  auto inv = invite("alice", 1, {});
  inv.fingerprint = control::TlsIdentity::generate().fingerprint();
  EXPECT_EQ(code_of(inv, "", 1), "transport");
  store_->transaction([&](StoreTxn& t) { EXPECT_EQ(t.find_invite(inv.id)->uses_left, 1); });
}

TEST(PrivateKeyFile, CreatedThenReadAndPermissionsWarned) {
  char d[] = "/tmp/warren_key_XXXXXX";
  ASSERT_NE(::mkdtemp(d), nullptr);
  std::string path = std::string(d) + "/k";
  std::string warning;
  auto a = load_or_create_private_key(path, &warning);
  EXPECT_TRUE(warning.empty());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = load_or_create_private_key(path, &warning);
  EXPECT_EQ(crypto::derive_public_key(a), crypto::derive_public_key(b));
  EXPECT_TRUE(warning.empty());
  ::chmod(path.c_str(), 0644);
  (void)load_or_create_private_key(path, &warning);
  EXPECT_NE(warning.find("readable by group or others"), std::string::npos) << warning;
  { std::ofstream(path) << "not a key\n"; }
  EXPECT_THROW(load_or_create_private_key(path, &warning), std::runtime_error);
  (void)!std::system((std::string("rm -rf ") + d).c_str());
}

// Issue 12 (8): the TLS key and the database are checked at start like the WireGuard key:
// a mode open to group or others, or a foreign owner, is reported (a warning each).
TEST(StateFiles, TlsKeyAndDatabaseModesAndOwnersAreChecked) {
  char d[] = "/tmp/warren_state_XXXXXX";
  ASSERT_NE(::mkdtemp(d), nullptr);
  const std::string dir = d;
  ServerConfig cfg;
  cfg.interface = "ws0";
  cfg.database = dir + "/s.db";
  cfg.private_key_file = dir + "/ws0.key";
  cfg.public_endpoint = "192.0.2.1:51820";
  auto warnings = [&] {
    ServerState st = open_state(cfg);
    std::string all;
    for (const auto& w : st.warnings)
      all += w + "\n";
    return all;
  };
  EXPECT_EQ(warnings(), "") << "created files must pass";
  ASSERT_EQ(::chmod(cfg.tls_key_file().c_str(), 0640), 0);
  ASSERT_EQ(::chmod(cfg.database.c_str(), 0606), 0);
  std::string w = warnings();
  EXPECT_NE(w.find(cfg.tls_key_file() +
                   " (the control channel's TLS key) is readable by group or "
                   "others (mode 0640; run: chmod 600 " +
                   cfg.tls_key_file() + ")"),
            std::string::npos)
      << w;
  EXPECT_NE(w.find(cfg.database + " (the lease database) is readable by group or others (mode "
                                  "0606"),
            std::string::npos)
      << w;
  EXPECT_EQ(w.find(cfg.private_key_file), std::string::npos) << w;
  ASSERT_EQ(::chmod(cfg.tls_key_file().c_str(), 0600), 0);
  ASSERT_EQ(::chmod(cfg.database.c_str(), 0620), 0);  // writable only: anyone may enroll anyone
  w = warnings();
  EXPECT_EQ(w.find(cfg.tls_key_file()), std::string::npos) << w;
  EXPECT_NE(w.find(cfg.database + " (the lease database) is writable by group or others"),
            std::string::npos)
      << w;
  ASSERT_EQ(::chmod(cfg.database.c_str(), 0600), 0);
  EXPECT_EQ(warnings(), "");
  if (::geteuid() == 0) {  // a file another user owns: that user can read or replace it
    ASSERT_EQ(::chown(cfg.tls_key_file().c_str(), 65534, 65534), 0);
    ASSERT_EQ(::chown(cfg.private_key_file.c_str(), 65534, 65534), 0);
    w = warnings();
    EXPECT_NE(w.find(cfg.tls_key_file() + " (the control channel's TLS key) is owned by uid 65534, "
                                          "neither root nor this server's user"),
              std::string::npos)
        << w;
    EXPECT_NE(w.find(cfg.private_key_file + " (the WireGuard private key) is owned by uid 65534"),
              std::string::npos)
        << w;
  }
  (void)!std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace warren::server
