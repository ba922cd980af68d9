// The settings session (control/session.h): its messages, its proof, and the session over real
// loopback TLS through EnrollServer (caps, pings, idle drop, pushes) and SessionClient.

#include "control/session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/encoding.h"

namespace warren::control {
namespace {

crypto::PrivateKey some_private(std::uint8_t seed) {
  crypto::PrivateKey k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed + i);
  return k;
}

crypto::PublicKey some_key(std::uint8_t seed) {
  return crypto::derive_public_key(some_private(seed));
}

Enrollment settings(const std::string& route) {
  Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
  e.server_public_key = some_key(3);
  e.server_endpoint = "127.0.0.1:51820";
  e.routes = {*net::Prefix::parse(route)};
  e.dns = {*net::IpAddress::parse("10.8.0.1")};
  e.mtu = 1380;
  e.persistent_keepalive = 25;
  return e;
}

std::string with(const std::string& json, const char* key, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(json);
  j[key] = value;
  return j.dump();
}

// ---- messages ------------------------------------------------------------------------------

TEST(SessionMessages, SettingsPingPongRoundTrip) {
  auto m = parse_session_message(session_settings_to_json(settings("10.8.0.0/24")));
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->type, SessionMessageType::kSettings);
  ASSERT_TRUE(m->settings);
  EXPECT_EQ(m->settings->routes, settings("10.8.0.0/24").routes);
  EXPECT_EQ(m->settings->dns, settings("10.8.0.0/24").dns);
  EXPECT_EQ(m->settings->mtu, 1380u);
  EXPECT_EQ(m->settings->persistent_keepalive, 25);
  EXPECT_EQ(parse_session_message(session_ping_to_json())->type, SessionMessageType::kPing);
  EXPECT_EQ(parse_session_message(session_pong_to_json())->type, SessionMessageType::kPong);
}

TEST(SessionMessages, UnknownTypesAreIgnoredOtherVersionsRefused) {
  auto m = parse_session_message(R"({"version":2,"type":"roster","peers":[]})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, SessionMessageType::kOther);
  EXPECT_EQ(m->type_name, "roster");
  EXPECT_FALSE(parse_session_message(with(session_ping_to_json(), "version", 3)).ok());
  EXPECT_FALSE(parse_session_message(R"({"type":"ping"})").ok());
  EXPECT_FALSE(parse_session_message(R"({"version":2})").ok());
  EXPECT_FALSE(parse_session_message("[]").ok());
  EXPECT_FALSE(parse_session_message("not json").ok());
  // A settings message must carry well-formed settings.
  EXPECT_FALSE(parse_session_message(R"({"version":2,"type":"settings"})").ok());
  EXPECT_FALSE(
      parse_session_message(R"({"version":2,"type":"settings","settings":{"name":1}})").ok());
}

TEST(SessionMessages, RefusalCarriesCodeAndMessage) {
  auto m = parse_session_message(
      R"({"version":2,"ok":false,"error":{"code":"unknown_client","message":"no such key"}})");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, SessionMessageType::kRefused);
  EXPECT_EQ(m->error_code, "unknown_client");
  EXPECT_EQ(m->error_message, "no such key");
}

TEST(SessionRequest, RoundTripAndErrors) {
  SessionRequest r{some_key(1), EnrollProof{}};
  r.proof.data()[0] = 7;
  const std::string json = session_request_to_json(r);
  EXPECT_TRUE(is_session_request(json));
  auto back = parse_session_request(json);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->public_key, r.public_key);
  EXPECT_EQ(back->proof.data()[0], 7);

  EXPECT_FALSE(is_session_request(R"({"version":2,"type":"enroll"})"));
  EXPECT_FALSE(is_session_request("garbage"));
  auto no_proof = parse_session_request(with(json, "proof", 5));
  ASSERT_FALSE(no_proof.ok());
  EXPECT_EQ(request_error_code(no_proof.error()), "proof_invalid");
  auto v1 = parse_session_request(with(json, "version", 1));
  ASSERT_FALSE(v1.ok());
  EXPECT_EQ(request_error_code(v1.error()), "unsupported_version");
  auto bad_key = parse_session_request(with(json, "public_key", "AAAA"));
  ASSERT_FALSE(bad_key.ok());
  EXPECT_EQ(request_error_code(bad_key.error()), "invalid_request");
}

TEST(SessionProof, OnlyTheKeyHolderVerifiesAndItIsNoEnrollmentProof) {
  const auto challenge = some_private(50);
  const auto challenge_pub = crypto::derive_public_key(challenge);
  ExporterValue channel{};
  channel.data()[0] = 1;
  auto proof = make_session_proof(some_private(1), challenge_pub, channel);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(verify_session_proof(challenge, channel, {some_key(1), *proof}));
  EXPECT_FALSE(verify_session_proof(challenge, channel, {some_key(2), *proof}));
  ExporterValue other = channel;
  other.data()[0] = 2;
  EXPECT_FALSE(verify_session_proof(challenge, other, {some_key(1), *proof}));
  // The same proof as an enrollment's, for any invite id: refused (domain separation).
  EnrollRequest as_enroll;
  as_enroll.invite_id = "0123456789abcdef";
  as_enroll.public_key = some_key(1);
  as_enroll.proof = *proof;
  EXPECT_FALSE(verify_enroll_proof(challenge, channel, as_enroll));
}

// ---- over loopback TLS ----------------------------------------------------------------------

class LoopbackSession : public ::testing::Test {
 protected:
  void SetUp() override {
    identity_ = TlsIdentity::generate();
    EnrollServerOptions opt;
    opt.max_connections_per_source = 1;  // sessions must not count here
    opt.max_sessions_per_source = 2;
    opt.session_ping_interval = std::chrono::milliseconds(100);
    opt.session_idle_timeout = std::chrono::milliseconds(1000);
    server_ = std::make_unique<EnrollServer>(
        identity_, "127.0.0.1:0",
        [](const EnrollRequest&) {
          return EnrollReply::failure("invite_invalid", "no invites in this test");
        },
        opt);
    server_->set_session_handler([this](const crypto::PublicKey& k) -> std::optional<Enrollment> {
      ++calls_;
      if (k != some_key(1) && k != some_key(2) && k != some_key(4))
        return std::nullopt;
      std::lock_guard lock(mutex_);
      return settings(route_);
    });
    server_->start();
  }
  void TearDown() override { server_->stop(); }

  /// A session spoken by hand: hello, request with a proof for `key`; returns the stream.
  std::unique_ptr<TlsStream> open(const crypto::PrivateKey& key) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(5);
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    auto challenge = parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline));
    EXPECT_TRUE(challenge.ok());
    auto proof =
        make_session_proof(key, *challenge, s->export_keying_material(kExporterLabel));
    s->write_frame(session_request_to_json({crypto::derive_public_key(key), *proof}), deadline);
    return s;
  }
  SessionMessage next(TlsStream& s, std::chrono::milliseconds within = std::chrono::seconds(2)) {
    auto m = parse_session_message(s.read_frame(kMaxMessageBytes, SteadyClock::now() + within));
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : SessionMessage{};
  }
  void set_route(const std::string& r) {
    std::lock_guard lock(mutex_);
    route_ = r;
  }

  TlsIdentity identity_;
  std::unique_ptr<EnrollServer> server_;
  std::mutex mutex_;
  std::string route_ = "10.8.0.0/24";
  std::atomic<int> calls_{0};
};

TEST_F(LoopbackSession, SettingsFirstThenPingsThenPushesAfterAChange) {
  auto s = open(some_private(1));
  SessionMessage first = next(*s);
  ASSERT_EQ(first.type, SessionMessageType::kSettings);
  EXPECT_EQ(first.settings->routes[0].to_string(), "10.8.0.0/24");
  EXPECT_EQ(server_->active_sessions(), 1u);
  EXPECT_EQ(next(*s).type, SessionMessageType::kPing);  // quiet for a ping interval
  s->write_frame(session_pong_to_json(), SteadyClock::now() + std::chrono::seconds(1));
  set_route("10.9.0.0/24");
  server_->settings_changed();
  SessionMessage pushed;
  for (int i = 0; i < 20 && pushed.type != SessionMessageType::kSettings; ++i)
    pushed = next(*s);  // pings may come first
  ASSERT_EQ(pushed.type, SessionMessageType::kSettings);
  EXPECT_EQ(pushed.settings->routes[0].to_string(), "10.9.0.0/24");
}

TEST_F(LoopbackSession, UnknownKeyIsRefused) {
  auto s = open(some_private(9));
  SessionMessage m = next(*s);
  EXPECT_EQ(m.type, SessionMessageType::kRefused);
  EXPECT_EQ(m.error_code, "unknown_client");
  EXPECT_EQ(server_->active_sessions(), 0u);
}

TEST_F(LoopbackSession, SessionsHaveTheirOwnCapAndLeaveTheEnrollmentCapFree) {
  auto a = open(some_private(1));
  auto b = open(some_private(2));
  EXPECT_EQ(next(*a).type, SessionMessageType::kSettings);
  EXPECT_EQ(next(*b).type, SessionMessageType::kSettings);
  // Two sessions from one source although one enrollment connection is its cap...
  EXPECT_EQ(server_->active_sessions(), 2u);
  // ...and the third is over the session cap of 2.
  auto c = open(some_private(4));
  SessionMessage m = next(*c);
  EXPECT_EQ(m.type, SessionMessageType::kRefused);
  EXPECT_EQ(m.error_code, "busy");
  // The refused one counted as an enrollment connection until it is gone.
  c.reset();
  for (int i = 0; i < 300 && server_->active_connections() > 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(server_->active_connections(), 2u);
  // An enrollment from the same source still gets its answer (the handler's refusal).
  Invite inv;
  inv.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  inv.fingerprint = identity_.fingerprint();
  inv.id = random_invite_id();
  inv.secret = random_invite_secret();
  try {
    (void)enroll(inv, "x", some_private(5), std::chrono::seconds(3));
    ADD_FAILURE() << "the test handler refuses every enrollment";
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "invite_invalid");
  }
}

TEST_F(LoopbackSession, ASessionThatStopsAnsweringIsDropped) {
  auto s = open(some_private(1));
  EXPECT_EQ(next(*s).type, SessionMessageType::kSettings);
  ASSERT_EQ(server_->active_sessions(), 1u);
  // We read nothing and send nothing: the server drops us after the idle timeout (1 s).
  for (int i = 0; i < 300 && server_->active_sessions() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->active_sessions(), 0u);
}

TEST_F(LoopbackSession, AnsweringPingsKeepsTheSession) {
  auto s = open(some_private(1));
  EXPECT_EQ(next(*s).type, SessionMessageType::kSettings);
  const auto until = SteadyClock::now() + std::chrono::milliseconds(2500);  // > idle timeout
  while (SteadyClock::now() < until) {
    if (next(*s).type == SessionMessageType::kPing)
      s->write_frame(session_pong_to_json(), SteadyClock::now() + std::chrono::seconds(1));
  }
  EXPECT_EQ(server_->active_sessions(), 1u);
}

TEST_F(LoopbackSession, ClientGetsSettingsAndPushesAndReconnects) {
  SessionClientOptions o;
  o.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  o.fingerprint = identity_.fingerprint();
  o.idle_timeout = std::chrono::milliseconds(2000);
  std::mutex mu;
  std::vector<std::string> seen;
  SessionClient client(
      o, some_private(1),
      [&](const Enrollment& e) {
        std::lock_guard lock(mu);
        seen.push_back(e.routes[0].to_string());
      },
      [](const std::string&) {});
  client.start();
  auto count = [&] {
    std::lock_guard lock(mu);
    return seen.size();
  };
  for (int i = 0; i < 300 && count() < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(count(), 1u);
  set_route("10.9.0.0/24");
  server_->settings_changed();
  for (int i = 0; i < 300 && count() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(count(), 2u);
  EXPECT_EQ(seen[1], "10.9.0.0/24");
  // The client answers pings: after several idle timeouts it still holds its one session.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(client.sessions(), 1u);
  EXPECT_EQ(server_->active_sessions(), 1u);
  client.stop();
  for (int i = 0; i < 300 && server_->active_sessions() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->active_sessions(), 0u);
}

TEST_F(LoopbackSession, ClientReconnectsAfterTheServerComesBack) {
  SessionClientOptions o;
  const std::uint16_t port = server_->port();
  o.control_endpoint = "127.0.0.1:" + std::to_string(port);
  o.fingerprint = identity_.fingerprint();
  std::atomic<int> got{0};
  std::vector<std::string> log;
  std::mutex mu;
  SessionClient client(
      o, some_private(1), [&](const Enrollment&) { ++got; },
      [&](const std::string& m) {
        std::lock_guard lock(mu);
        log.push_back(m);
      });
  client.start();
  for (int i = 0; i < 300 && got < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(got, 1);
  // The server goes away (a restart): the client logs it and keeps trying.
  server_.reset();
  server_ = std::make_unique<EnrollServer>(
      identity_, "127.0.0.1:" + std::to_string(port),
      [](const EnrollRequest&) { return EnrollReply::failure("internal", "unused"); });
  server_->set_session_handler(
      [](const crypto::PublicKey&) -> std::optional<Enrollment> { return settings("10.7.0.0/24"); });
  server_->start();
  for (int i = 0; i < 600 && got < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(got, 2) << "no new session within 6 s of the server's return";
  EXPECT_EQ(client.sessions(), 2u);
  std::lock_guard lock(mu);
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& m) {
    return m.find("keeping the current settings, reconnecting") != std::string::npos;
  }));
}

}  // namespace
}  // namespace warren::control
