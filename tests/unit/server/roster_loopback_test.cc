// The roster service end to end over loopback TLS: the real EnrollServer, Registry (SQLite),
// RosterService and two node sessions speaking the settings-session protocol with the mesh
// messages (control/mesh_session.h), as the runtime wires them (without the data plane).
// Measures and prints how long a third node's enrollment and a revoke take to reach both
// nodes (issue 13: within 2 s), and checks that endpoints one node reports reach the other.

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "control/enroll.h"
#include "control/mesh_session.h"
#include "control/session.h"
#include "server/registry.h"
#include "server/roster_service.h"
#include "server/store.h"

namespace warren::server {
namespace {

using Clock = std::chrono::steady_clock;

crypto::PrivateKey private_key(int seed) {
  crypto::PrivateKey k;
  k.data()[5] = static_cast<std::uint8_t>(seed);
  k.data()[9] = 17;
  return k;
}

crypto::PublicKey key(int seed) {
  return crypto::derive_public_key(private_key(seed));
}

net::Endpoint ep(const char* s) {
  return *net::Endpoint::parse(s);
}

/// A node's side of the settings session: connects, proves its key, reads the settings, sends
/// roster_request (and an endpoint report), then applies every roster frame to its own
/// mesh::Roster on a reader thread (which also answers pings; it is the only one using the
/// stream after the start).
class NodeSession {
 public:
  NodeSession(const std::string& endpoint, const control::Fingerprint& pin, int seed,
              const mesh::AddressPlan& plan, std::optional<control::EndpointReport> report)
      : roster_(plan) {
    auto hp = *control::split_host_port(endpoint);
    const auto deadline = control::SteadyClock::now() + std::chrono::seconds(5);
    stream_ = control::TlsStream::connect(hp.host, hp.port, pin, deadline);
    auto challenge =
        control::parse_enroll_hello(stream_->read_frame(control::kMaxMessageBytes, deadline));
    if (!challenge.ok())
      throw control::ControlError(challenge.message());
    auto proof = control::make_session_proof(
        private_key(seed), *challenge,
        stream_->export_keying_material(control::kExporterLabel));
    if (!proof.ok())
      throw control::ControlError(proof.message());
    stream_->write_frame(control::session_request_to_json({key(seed), *proof}), deadline);
    auto first = control::parse_session_message(
        stream_->read_frame(control::kMaxMessageBytes, deadline));
    if (!first.ok() || first->type != control::SessionMessageType::kSettings)
      throw control::ControlError("no settings: " + first.message());
    settings_ = *first->settings;
    stream_->write_frame(control::roster_request_to_json({0}), deadline);
    if (report)
      stream_->write_frame(control::endpoints_to_json(*report), deadline);
    reader_ = std::thread([this] { read(); });
  }
  ~NodeSession() {
    stream_->shutdown();
    reader_.join();
  }

  /// Waits until `pred(roster)` holds (or `timeout`); the time it took, or nullopt.
  template <typename Pred>
  std::optional<std::chrono::milliseconds> wait(Pred pred, Clock::time_point since,
                                                std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_until(lock, since + timeout, [&] { return pred(roster_); }))
      return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(seen_at_ - since);
  }
  const control::Enrollment& settings() const { return settings_; }
  int frames() {
    std::lock_guard lock(mutex_);
    return frames_;
  }

 private:
  void read() {
    try {
      for (;;) {
        const std::string text = stream_->read_frame(
            control::kMaxRosterMessageBytes, control::SteadyClock::now() + std::chrono::seconds(30));
        const std::string type = control::session_message_type(text);
        if (type == "ping") {
          stream_->write_frame(control::session_pong_to_json(),
                               control::SteadyClock::now() + std::chrono::seconds(5));
          continue;
        }
        if (type != "roster")
          continue;
        auto d = control::parse_roster_message(text);
        std::lock_guard lock(mutex_);
        ASSERT_TRUE(d.ok()) << d.message();
        auto s = roster_.apply(*d);
        ASSERT_TRUE(s.ok()) << s.message();
        ++frames_;
        seen_at_ = Clock::now();
        changed_.notify_all();
      }
    } catch (const control::ControlError&) {
      // shut down (or the server went away)
    }
  }

  std::unique_ptr<control::TlsStream> stream_;
  control::Enrollment settings_;
  std::mutex mutex_;
  std::condition_variable changed_;
  mesh::Roster roster_;         // guarded by mutex_
  Clock::time_point seen_at_;  // guarded by mutex_: when the last frame was applied
  int frames_ = 0;              // guarded by mutex_
  std::thread reader_;
};

class RosterLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    char d[] = "/tmp/warren_roster_XXXXXX";
    ASSERT_NE(::mkdtemp(d), nullptr);
    dir_ = d;
    auto p = *net::Prefix::parse("10.6.0.1/24");
    cfg_.interface = "wr0";
    cfg_.ipv4 = TunnelNetwork{p.canonical(), p.address};
    cfg_.public_endpoint = "192.0.2.1:51820";
    cfg_.routes = {cfg_.ipv4->prefix};
    cfg_.mesh = true;
    cfg_.stun_port = 3478;
    store_ = open_sqlite_store(dir_ + "/s.db");
    reg_ = std::make_unique<Registry>(cfg_, *store_, key(200));
    identity_ = control::TlsIdentity::generate();
    server_ = std::make_unique<control::EnrollServer>(
        identity_, "127.0.0.1:0", [this](const control::EnrollRequest& r) {
          std::lock_guard lock(mutex_);
          auto reply = reg_->enroll(r, 1000);
          if (reply.enrollment)
            roster_->clients_changed(store_->clients());
          return reply;
        });
    server_->set_session_handler(
        [this](const crypto::PublicKey& k) -> std::optional<control::Enrollment> {
          std::lock_guard lock(mutex_);
          for (const auto& c : store_->clients())
            if (c.public_key == k && !c.revoked() && !c.disabled())
              return reg_->enrollment_for(c);
          return std::nullopt;
        });
    roster_ = std::make_unique<RosterService>(
        cfg_.mesh_plan,
        [this](SessionId s, std::shared_ptr<const std::string> m) {
          server_->send_to_session(s, std::move(m));
        },
        [](const std::string& line) { std::fprintf(stderr, "[roster] %s\n", line.c_str()); });
    control::SessionEvents events;
    events.on_message = [this](SessionId s, const crypto::PublicKey& k, std::string_view type,
                               std::string_view m) { roster_->on_session_message(s, k, type, m); };
    events.on_closed = [this](SessionId s) { roster_->on_session_closed(s); };
    server_->set_session_events(std::move(events));
    roster_->start();
    server_->start();
    cfg_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    server_->stop();
    roster_->stop();
    (void)!std::system(("rm -rf " + dir_).c_str());
  }
  control::Enrollment join(const std::string& name, int seed) {
    control::Invite inv;
    {
      std::lock_guard lock(mutex_);
      inv = *control::parse_invite(
          reg_->create_invite(name, {}, 1, identity_.fingerprint(), 1000));
    }
    return control::enroll(inv, name, private_key(seed));
  }

  std::string dir_;
  ServerConfig cfg_;
  std::mutex mutex_;  // the runtime's Server mutex: registry and store, then the roster
  std::unique_ptr<LeaseStore> store_;
  std::unique_ptr<Registry> reg_;
  control::TlsIdentity identity_;
  std::unique_ptr<RosterService> roster_;
  std::unique_ptr<control::EnrollServer> server_;
};

TEST_F(RosterLoopback, EnrollmentRevokeAndEndpointsReachEveryNodeWithinTwoSeconds) {
  const auto a_enrolled = join("alpha", 1);
  ASSERT_TRUE(a_enrolled.mesh);
  EXPECT_EQ(a_enrolled.mesh->stun, std::vector<std::string>{"127.0.0.1:3478"});
  (void)join("beta", 2);
  const std::string endpoint = cfg_.control_endpoint;
  const auto& plan = cfg_.mesh_plan;
  NodeSession a(endpoint, identity_.fingerprint(), 1, plan,
                control::EndpointReport{{ep("192.0.2.10:51820")}, ep("198.51.100.7:40001")});
  NodeSession b(endpoint, identity_.fingerprint(), 2, plan, std::nullopt);
  EXPECT_TRUE(a.settings().mesh);
  const auto two_s = std::chrono::milliseconds(2000);

  // Both get the snapshot; a's endpoints reach b.
  auto has = [](const crypto::PublicKey& k) {
    return [k](const mesh::Roster& r) {
      const auto* e = r.find(k);
      return e && e->state == mesh::NodeState::kActive;
    };
  };
  const auto t0 = Clock::now();
  ASSERT_TRUE(a.wait(has(key(2)), t0, two_s)) << "a never saw b";
  ASSERT_TRUE(b.wait(has(key(1)), t0, two_s)) << "b never saw a";
  auto endpoints_of_a = [](const mesh::Roster& r) {
    const auto* e = r.find(key(1));
    return e && e->reflexive == ep("198.51.100.7:40001") &&
           e->local_endpoints == std::vector<net::Endpoint>{ep("192.0.2.10:51820")};
  };
  auto endpoints_ms = b.wait(endpoints_of_a, t0, two_s);
  ASSERT_TRUE(endpoints_ms) << "a's endpoints never reached b";

  // A third node enrolls: on both within 2 s of its enrollment.
  const auto t_enroll = Clock::now();
  (void)join("gamma", 3);
  auto a_gamma = a.wait(has(key(3)), t_enroll, two_s);
  auto b_gamma = b.wait(has(key(3)), t_enroll, two_s);
  ASSERT_TRUE(a_gamma && b_gamma) << "gamma did not reach both within 2 s";

  // gamma is revoked: gone (revoked) on both within 2 s.
  auto revoked = [](const mesh::Roster& r) {
    const auto* e = r.find(key(3));
    return e && e->state == mesh::NodeState::kRevoked;
  };
  const auto t_revoke = Clock::now();
  {
    std::lock_guard lock(mutex_);
    reg_->revoke("gamma", 2000);
    roster_->clients_changed(store_->clients());
  }
  auto a_revoke = a.wait(revoked, t_revoke, two_s);
  auto b_revoke = b.wait(revoked, t_revoke, two_s);
  ASSERT_TRUE(a_revoke && b_revoke) << "the revoke did not reach both within 2 s";

  std::printf("roster loopback: a's endpoints at b %lld ms after the sessions started; "
              "enrollment at a %lld ms, at b %lld ms; revoke at a %lld ms, at b %lld ms "
              "(limit 2000 ms, tick %lld ms)\n",
              static_cast<long long>(endpoints_ms->count()),
              static_cast<long long>(a_gamma->count()), static_cast<long long>(b_gamma->count()),
              static_cast<long long>(a_revoke->count()), static_cast<long long>(b_revoke->count()),
              static_cast<long long>(RosterService::kTick.count()));
  EXPECT_EQ(roster_->sessions(), 2u);
  // Coalesced: a handful of frames for four changes, not one per change per node.
  EXPECT_LE(a.frames(), 6);
}

}  // namespace
}  // namespace warren::server
