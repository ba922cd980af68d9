// warren join against a real enrollment server on loopback TLS.
#include "client/join.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "crypto/random.h"

namespace warren::client {
namespace {

using namespace control;

class Join : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/warren-join-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    identity_ = TlsIdentity::generate();
    server_ =
        std::make_unique<EnrollServer>(identity_, "127.0.0.1:0", [this](const EnrollRequest& r) {
          std::lock_guard lock(mu_);
          if (r.invite_id != invite_.id ||
              !constant_time_equal(r.secret.span(), invite_.secret.span()))
            return EnrollReply::failure("invite_invalid", "this invite is not valid");
          // Like the server: one address per key.
          auto [it, fresh] = leases_.emplace(r.public_key, leases_.size() + 2);
          Enrollment e;
          e.name = "laptop";
          e.addresses = {*net::Prefix::parse("10.8.0." + std::to_string(it->second) + "/32")};
          e.server_public_key = server_key_;
          e.server_endpoint = "vpn.example.test:51820";
          e.routes = {*net::Prefix::parse("10.8.0.0/24"), *net::Prefix::parse("192.168.50.0/24")};
          e.dns = {*net::IpAddress::parse("10.8.0.1")};
          e.mtu = 1380;
          e.persistent_keepalive = 25;
          return EnrollReply{e, {}, {}};
        });
    server_->start();
    invite_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
    invite_.fingerprint = identity_.fingerprint();
    invite_.id = random_invite_id();
    invite_.secret = random_invite_secret();
    server_key_.bytes.fill(7);
  }
  void TearDown() override {
    server_->stop();
    std::filesystem::remove_all(dir_);
  }
  JoinOptions options() {
    JoinOptions o;
    o.interface = "wgj0";
    o.config_dir = dir_ + "/etc";
    o.timeout = std::chrono::seconds(5);
    return o;
  }
  static unsigned mode_of(const std::string& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }

  std::string dir_;
  TlsIdentity identity_;
  std::unique_ptr<EnrollServer> server_;
  Invite invite_;
  crypto::PublicKey server_key_;
  std::mutex mu_;
  std::map<crypto::PublicKey, std::size_t> leases_;
};

TEST_F(Join, WritesKeyAndConfigThenReusesTheKey) {
  ClientConfig c = join(format_invite(invite_), options(), crypto::SystemRandom::instance());
  const std::string key = dir_ + "/etc/wgj0.key", conf = dir_ + "/etc/wgj0.conf";
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(conf), 0600u);
  EXPECT_EQ(mode_of(dir_ + "/etc"), 0700u);
  ClientConfig loaded = load_config(conf);
  EXPECT_EQ(loaded.interface, "wgj0");
  ASSERT_EQ(loaded.addresses.size(), 1u);
  EXPECT_EQ(loaded.addresses[0].to_string(), "10.8.0.2/32");
  EXPECT_EQ(loaded.dns_servers.size(), 1u);
  EXPECT_EQ(loaded.mtu, 1380u);
  ASSERT_EQ(loaded.peers.size(), 1u);
  EXPECT_EQ(loaded.peers[0].public_key, server_key_);
  EXPECT_EQ(loaded.peers[0].endpoint->to_string(), "vpn.example.test:51820");
  EXPECT_EQ(loaded.peers[0].allowed_ips.size(), 2u);
  EXPECT_EQ(loaded.peers[0].persistent_keepalive, 25);
  EXPECT_EQ(loaded.server_name, invite_.control_endpoint);
  EXPECT_EQ(crypto::secret_to_base64(loaded.private_key), crypto::secret_to_base64(c.private_key));
  // Joining again reuses the key, so the (key-keyed) server hands out the same address.
  ClientConfig again = join(format_invite(invite_), options(), crypto::SystemRandom::instance());
  EXPECT_EQ(crypto::secret_to_base64(again.private_key), crypto::secret_to_base64(c.private_key));
  EXPECT_EQ(again.addresses, loaded.addresses);
  EXPECT_EQ(leases_.size(), 1u);
  // The key in the file is the one the server saw.
  EXPECT_TRUE(leases_.count(crypto::derive_public_key(c.private_key)));
}

TEST_F(Join, RefusalsAndBadInputChangeNothing) {
  Invite wrong = invite_;
  wrong.secret = random_invite_secret();
  try {
    (void)join(format_invite(wrong), options(), crypto::SystemRandom::instance());
    ADD_FAILURE() << "accepted";
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "invite_invalid");
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/etc/wgj0.conf"));
  EXPECT_THROW(join("warren1:garbage", options(), crypto::SystemRandom::instance()),
               std::runtime_error);
  JoinOptions bad = options();
  bad.interface = "no/slash";
  EXPECT_THROW(join(format_invite(invite_), bad, crypto::SystemRandom::instance()),
               std::runtime_error);
}

TEST_F(Join, KeyFileChecks) {
  std::filesystem::create_directories(dir_ + "/k");
  const std::string p = dir_ + "/k/x.key";
  std::string warning;
  auto k1 = load_or_create_key(p, crypto::SystemRandom::instance(), &warning);
  EXPECT_TRUE(warning.empty());
  EXPECT_EQ(mode_of(p), 0600u);
  ::chmod(p.c_str(), 0644);
  auto k2 = load_or_create_key(p, crypto::SystemRandom::instance(), &warning);
  EXPECT_NE(warning.find("readable by group or others"), std::string::npos);
  EXPECT_EQ(crypto::secret_to_base64(k1), crypto::secret_to_base64(k2));
  std::ofstream(dir_ + "/k/bad.key") << "not a key\n";
  EXPECT_THROW(load_or_create_key(dir_ + "/k/bad.key", crypto::SystemRandom::instance()),
               std::runtime_error);
  // A link at the key's path is never followed (it could make root read or create elsewhere).
  std::ofstream(dir_ + "/k/target") << "";
  ASSERT_EQ(::symlink((dir_ + "/k/target").c_str(), (dir_ + "/k/link.key").c_str()), 0);
  try {
    (void)load_or_create_key(dir_ + "/k/link.key", crypto::SystemRandom::instance());
    ADD_FAILURE() << "a link was followed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
}

// Root writes the key and the config: a config directory others can write is refused, naming
// it, and nothing is written or sent.
TEST_F(Join, WritableConfigDirectoryIsRefused) {
  std::filesystem::create_directories(dir_ + "/etc");
  ::chmod((dir_ + "/etc").c_str(), 0777);
  try {
    (void)join(format_invite(invite_), options(), crypto::SystemRandom::instance());
    ADD_FAILURE() << "accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing to use " + dir_ +
                                         "/etc: it is writable by group or others (mode 0777)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/etc/wgj0.key"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/etc/wgj0.conf"));
  EXPECT_TRUE(leases_.empty()) << "nothing was enrolled";
}

}  // namespace
}  // namespace warren::client

namespace warren::client {
namespace {

// 20 hosts joining at once can fill the server's request queue; it answers "busy, try again
// shortly" having handled nothing (CI of this stop: one of test_server's 20 concurrent joins
// under ASan). join tries again by itself within its timeout; other refusals stay final.
TEST(JoinBusy, ABusyServerIsAskedAgainAndTheJoinGetsIn) {
  char tmpl[] = "/tmp/warren-joinbusy-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  control::TlsIdentity identity = control::TlsIdentity::generate();
  control::Invite invite;
  invite.fingerprint = identity.fingerprint();
  invite.id = control::random_invite_id();
  invite.secret = control::random_invite_secret();
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  int entered = 0;
  control::EnrollServerOptions opt;
  opt.workers = 1;
  opt.max_queued_requests = 1;
  opt.max_connections_per_source = 64;
  control::EnrollServer server(
      identity, "127.0.0.1:0",
      [&](const control::EnrollRequest& r) {
        {
          std::unique_lock lock(m);
          ++entered;
          cv.notify_all();
          cv.wait(lock, [&] { return release; });
        }
        control::Enrollment e;
        e.name = r.name;
        e.addresses = {*net::Prefix::parse("10.8.0." + std::to_string(1 + entered) + "/32")};
        e.server_public_key.bytes.fill(7);
        e.server_endpoint = "vpn.example.test:51820";
        return control::EnrollReply{e, {}, {}};
      },
      opt);
  server.start();
  invite.control_endpoint = "127.0.0.1:" + std::to_string(server.port());
  // Two requests hold the worker and the one queue slot until released.
  std::vector<std::thread> holders;
  for (int i = 0; i < 2; ++i) {
    holders.emplace_back([&, i] {
      try {
        (void)control::enroll(invite, "h" + std::to_string(i),
                              crypto::generate_private_key(crypto::SystemRandom::instance()));
      } catch (...) {
      }
    });
    if (i == 0) {
      std::unique_lock lock(m);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return entered == 1; }));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the second one is queued
  // Released while the join waits between its attempts: its first answer was "busy".
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::lock_guard lock(m);
    release = true;
    cv.notify_all();
  });
  JoinOptions o;
  o.interface = "wgb0";
  o.config_dir = dir + "/etc";
  o.timeout = std::chrono::seconds(10);
  ClientConfig c = join(control::format_invite(invite), o, crypto::SystemRandom::instance());
  EXPECT_EQ(c.addresses.size(), 1u);
  releaser.join();
  for (auto& t : holders)
    t.join();
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace warren::client
