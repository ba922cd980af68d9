// The mesh messages of the settings session (control/mesh_session.h) and the "mesh" object of
// the enrollment answer (control/enroll.h, MeshSettings): round trips and malformed input.

#include "control/mesh_session.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "control/enroll.h"
#include "control/session.h"

namespace warren::control {
namespace {

using nlohmann::json;

crypto::PublicKey some_key(std::uint8_t seed) {
  crypto::PrivateKey k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed + i);
  return crypto::derive_public_key(k);
}

net::Endpoint ep(const char* text) {
  return *net::Endpoint::parse(text);
}

Enrollment base_enrollment() {
  Enrollment e;
  e.name = "laptop";
  e.addresses = {*net::Prefix::parse("100.110.184.96/32"),
                 *net::Prefix::parse("28f:33d4:267b:73bd:9730:1a5e:dd33:5216/128")};
  e.server_public_key = some_key(9);
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  e.mtu = 1420;
  e.persistent_keepalive = 25;
  return e;
}

MeshSettings sample_mesh() {
  MeshSettings m;
  m.prefix_v4 = *net::Prefix::parse("100.64.0.0/10");
  m.prefix_v6 = *net::Prefix::parse("200::/7");
  m.domain = "warren";
  m.v4_index = 2;
  m.stun = {"203.0.113.1:3478", "203.0.113.1:3479"};
  m.relay = "203.0.113.1:3480";
  return m;
}

/// The enrollment JSON with `mesh` replaced by `m` (a JSON value).
std::string with_mesh(const json& m) {
  json j = json::parse(enrollment_to_json(base_enrollment()));
  j["mesh"] = m;
  return j.dump();
}

std::string error_of(const std::string& text) {
  try {
    (void)enrollment_from_json(text);
  } catch (const ControlError& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(MeshSettings, EnrollmentRoundTrip) {
  Enrollment e = base_enrollment();
  e.mesh = sample_mesh();
  const std::string text = enrollment_to_json(e);
  json j = json::parse(text);
  ASSERT_TRUE(j.contains("mesh"));
  EXPECT_EQ(j["mesh"]["prefix_v4"], "100.64.0.0/10");
  EXPECT_EQ(j["mesh"]["prefix_v6"], "200::/7");
  EXPECT_EQ(j["mesh"]["domain"], "warren");
  EXPECT_EQ(j["mesh"]["v4_index"], 2);
  EXPECT_EQ(j["mesh"]["relay"], "203.0.113.1:3480");
  EXPECT_EQ(j["mesh"]["stun"].size(), 2u);
  Enrollment back = enrollment_from_json(text);
  ASSERT_TRUE(back.mesh.has_value());
  EXPECT_EQ(*back.mesh, *e.mesh);
  EXPECT_EQ(enrollment_to_json(back), text);
}

TEST(MeshSettings, AbsentWithoutMeshAndRelayAbsentWhenNone) {
  Enrollment e = base_enrollment();
  EXPECT_FALSE(json::parse(enrollment_to_json(e)).contains("mesh"));
  EXPECT_FALSE(enrollment_from_json(enrollment_to_json(e)).mesh.has_value());
  e.mesh = sample_mesh();
  e.mesh->relay.clear();
  e.mesh->stun.clear();
  json j = json::parse(enrollment_to_json(e));
  EXPECT_FALSE(j["mesh"].contains("relay"));
  Enrollment back = enrollment_from_json(j.dump());
  EXPECT_TRUE(back.mesh->relay.empty());
  EXPECT_TRUE(back.mesh->stun.empty());
}

TEST(MeshSettings, DomainAndPrefixesAreCanonicalised) {
  json m = json::parse(enrollment_to_json([] {
             Enrollment e = base_enrollment();
             e.mesh = sample_mesh();
             return e;
           }()))["mesh"];
  m["domain"] = "Mesh.Example.";
  m["prefix_v4"] = "10.99.1.2/16";
  Enrollment back = enrollment_from_json(with_mesh(m));
  EXPECT_EQ(back.mesh->domain, "mesh.example");
  EXPECT_EQ(back.mesh->prefix_v4.to_string(), "10.99.0.0/16");
}

TEST(MeshSettings, MalformedFieldsAreNamed) {
  const json good = json::parse(enrollment_to_json([] {
                      Enrollment e = base_enrollment();
                      e.mesh = sample_mesh();
                      return e;
                    }()))["mesh"];
  struct Case {
    const char* key;
    json value;  // null: remove the key
    const char* expect;
  };
  const Case cases[] = {
      {"prefix_v4", nullptr, "mesh.prefix_v4\" is missing"},
      {"prefix_v4", 7, "mesh.prefix_v4\" is not a string"},
      {"prefix_v4", "100.64.0.0", "mesh IPv4 prefix 100.64.0.0/32"},
      {"prefix_v4", "100.64.0.0/x", "mesh.prefix_v4\" is not a prefix"},
      {"prefix_v4", "200::/7", "mesh"},            // wrong family: AddressPlan's rule
      {"prefix_v4", "10.0.0.0/31", "mesh"},        // too few host bits
      {"prefix_v6", "fd00::/96", "mesh"},          // too few hash bits
      {"domain", nullptr, "mesh.domain\" is missing"},
      {"domain", "bad..domain", "mesh.domain\" is not a mesh domain"},
      {"v4_index", nullptr, "mesh.v4_index\" is missing"},
      {"v4_index", -1, "mesh.v4_index\""},
      {"v4_index", 1025, "mesh.v4_index\""},
      {"v4_index", "0", "mesh.v4_index\""},
      {"stun", "203.0.113.1:3478", "mesh.stun\""},
      {"stun", json::array({"203.0.113.1"}), "mesh.stun\" holds an item that is not host:port"},
      {"stun", json::array({1}), "mesh.stun\""},
      {"relay", "nope", "mesh.relay\" is not host:port"},
      {"relay", 3479, "mesh.relay\" is not host:port"},
  };
  for (const auto& c : cases) {
    json m = good;
    if (c.value.is_null())
      m.erase(c.key);
    else
      m[c.key] = c.value;
    const std::string err = error_of(with_mesh(m));
    EXPECT_NE(err, "(parsed)") << c.key << " = " << c.value.dump();
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.key << ": " << err;
  }
  json nine = good;
  nine["stun"] = json::array();
  for (int i = 0; i < 9; ++i)
    nine["stun"].push_back("203.0.113.1:" + std::to_string(3000 + i));
  EXPECT_NE(error_of(with_mesh(nine)).find("mesh.stun"), std::string::npos);
  EXPECT_NE(error_of(with_mesh("a string")).find("\"mesh\" is not an object"), std::string::npos);
  EXPECT_EQ(error_of(with_mesh(good)), "(parsed)");
}

TEST(MeshSettings, AnOldClientsParserIgnoresUnknownKeys) {
  // What makes "mesh" safe to add: the enrollment parser ignores keys it does not know, so an
  // old client (whose parser is this one minus the "mesh" branch) reads the rest unchanged.
  json j = json::parse(enrollment_to_json(base_enrollment()));
  j["some_future_key"] = {{"x", 1}};
  Enrollment back = enrollment_from_json(j.dump());
  EXPECT_EQ(back.name, "laptop");
  EXPECT_FALSE(back.mesh.has_value());
}

// ---- roster ------------------------------------------------------------------------------

mesh::RosterDelta sample_delta() {
  const mesh::AddressPlan plan;
  mesh::Roster r(plan);
  auto a = mesh::make_entry(plan, "alpha", some_key(1));
  a.local_endpoints = {ep("192.0.2.10:51820")};
  a.reflexive = ep("198.51.100.7:40001");
  EXPECT_TRUE(r.upsert(a).ok());
  EXPECT_TRUE(r.upsert(mesh::make_entry(plan, "beta", some_key(2))).ok());
  auto d = r.diff(0);
  EXPECT_TRUE(d.ok());
  return *d;
}

TEST(RosterMessage, RoundTripAndBothEncoders) {
  const auto delta = sample_delta();
  const std::string text = roster_message_to_json(delta);
  EXPECT_EQ(text, roster_message_to_json(mesh::encode_delta(delta)));
  EXPECT_EQ(session_message_type(text), "roster");
  auto back = parse_roster_message(text);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, delta);
  // The generic session parser sees a message of an unknown-to-it type, to be ignored.
  auto generic = parse_session_message(text);
  ASSERT_TRUE(generic.ok());
  EXPECT_EQ(generic->type_name, "roster");
}

TEST(RosterMessage, MalformedInput) {
  const json good = json::parse(roster_message_to_json(sample_delta()));
  auto err = [](const json& j) {
    auto r = parse_roster_message(j.dump());
    return r.ok() ? std::string("(parsed)") : r.message();
  };
  EXPECT_EQ(err(good), "(parsed)");
  EXPECT_FALSE(parse_roster_message("not json").ok());
  EXPECT_FALSE(parse_roster_message("[1,2]").ok());
  json j = good;
  j["version"] = 1;
  EXPECT_NE(err(j).find("protocol version"), std::string::npos);
  j = good;
  j["type"] = "settings";
  EXPECT_NE(err(j).find("not a \"roster\" message"), std::string::npos);
  j = good;
  j.erase("delta");
  EXPECT_NE(err(j).find("\"delta\""), std::string::npos);
  j["delta"] = 12;
  EXPECT_NE(err(j).find("\"delta\""), std::string::npos);
  j["delta"] = "%%%%";
  EXPECT_NE(err(j).find("not base64"), std::string::npos);
  j["delta"] = "abc";  // not a multiple of 4
  EXPECT_NE(err(j).find("not base64"), std::string::npos);
  j["delta"] = to_base64(std::vector<std::uint8_t>{'W', 'R', 'S', 'T', 1});  // truncated delta
  auto r = parse_roster_message(j.dump());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EBADMSG);
  EXPECT_NE(r.message().find("\"delta\""), std::string::npos);
  // Every truncation of a good delta is an error, never a crash or a partial delta.
  const auto bytes = mesh::encode_delta(sample_delta());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    j["delta"] = to_base64(std::span<const std::uint8_t>(bytes.data(), n));
    EXPECT_FALSE(parse_roster_message(j.dump()).ok()) << n;
  }
}

// ---- roster_request ------------------------------------------------------------------------

TEST(RosterRequest, RoundTripAndMalformed) {
  for (std::uint64_t from : {std::uint64_t{0}, std::uint64_t{42}, ~std::uint64_t{0}}) {
    const std::string text = roster_request_to_json({from});
    EXPECT_EQ(session_message_type(text), "roster_request");
    auto back = parse_roster_request(text);
    ASSERT_TRUE(back.ok()) << back.message();
    EXPECT_EQ(back->from, from);
  }
  json j = json::parse(roster_request_to_json({3}));
  j.erase("from");
  EXPECT_NE(parse_roster_request(j.dump()).message().find("\"from\""), std::string::npos);
  for (json bad : {json(-1), json("3"), json(1.5), json(nullptr)}) {
    j["from"] = bad;
    auto r = parse_roster_request(j.dump());
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.code(), EINVAL);
    EXPECT_NE(r.message().find("\"from\""), std::string::npos);
  }
  EXPECT_EQ(parse_roster_request(endpoints_to_json({})).code(), EPROTO);
  EXPECT_EQ(session_message_type("{}"), "");
  EXPECT_EQ(session_message_type("nonsense"), "");
}

// ---- endpoints ----------------------------------------------------------------------------

TEST(Endpoints, RoundTrip) {
  EndpointReport r;
  r.local = {ep("192.0.2.10:51820"), ep("[2001:db8::10]:51820")};
  r.reflexive = ep("198.51.100.7:40001");
  const std::string text = endpoints_to_json(r);
  json j = json::parse(text);
  EXPECT_EQ(j["local"][1], "[2001:db8::10]:51820");
  EXPECT_EQ(j["reflexive"], "198.51.100.7:40001");
  auto back = parse_endpoints(text);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(*back, r);
  r.reflexive.reset();
  EXPECT_FALSE(json::parse(endpoints_to_json(r)).contains("reflexive"));
  EXPECT_EQ(*parse_endpoints(endpoints_to_json(r)), r);
}

TEST(Endpoints, MalformedItemsAreNamed) {
  const json good = json::parse(endpoints_to_json({{ep("192.0.2.10:51820")}, std::nullopt}));
  auto err = [](const json& j) {
    auto r = parse_endpoints(j.dump());
    return r.ok() ? std::string("(parsed)") : r.message();
  };
  json j = good;
  j.erase("local");
  EXPECT_NE(err(j).find("\"local\""), std::string::npos);
  j["local"] = "192.0.2.10:51820";
  EXPECT_NE(err(j).find("\"local\""), std::string::npos);
  j["local"] = json::array({"vpn.example.com:51820"});  // names are not candidates
  EXPECT_NE(err(j).find("vpn.example.com:51820"), std::string::npos);
  j["local"] = json::array({"192.0.2.10:0"});
  EXPECT_NE(err(j).find("192.0.2.10:0"), std::string::npos);
  j["local"] = json::array({"192.0.2.10"});
  EXPECT_NE(err(j).find("\"local\""), std::string::npos);
  j["local"] = json::array({5});
  EXPECT_NE(err(j).find("non-string"), std::string::npos);
  j["local"] = json::array();
  for (int i = 0; i < 9; ++i)
    j["local"].push_back("192.0.2." + std::to_string(i + 1) + ":51820");
  EXPECT_NE(err(j).find("at most 8"), std::string::npos);
  j = good;
  j["reflexive"] = "x";
  EXPECT_NE(err(j).find("\"reflexive\""), std::string::npos);
  j["reflexive"] = nullptr;
  EXPECT_NE(err(j).find("\"reflexive\""), std::string::npos);
  j = good;
  j["type"] = "roster";
  EXPECT_EQ(parse_endpoints(j.dump()).code(), EPROTO);
}

TEST(Endpoints, CheckKeepsDialableAndNamesTheRest) {
  EndpointReport r;
  r.local = {ep("192.0.2.10:51820"),    ep("0.0.0.0:51820"),     ep("127.0.0.1:51820"),
             ep("[::1]:51820"),         ep("224.0.0.1:51820"),   ep("[fe80::1]:51820"),
             ep("192.0.2.10:51820"),    ep("[2001:db8::1]:51820"), ep("255.255.255.255:1")};
  r.reflexive = ep("[::]:40000");
  auto c = check_endpoint_report(r);
  EXPECT_EQ(c.kept.local,
            (std::vector<net::Endpoint>{ep("192.0.2.10:51820"), ep("[2001:db8::1]:51820")}));
  EXPECT_FALSE(c.kept.reflexive.has_value());
  ASSERT_EQ(c.rejected.size(), 8u);
  EXPECT_NE(c.rejected[0].find("0.0.0.0:51820: unspecified"), std::string::npos);
  EXPECT_NE(c.rejected[1].find("loopback"), std::string::npos);
  EXPECT_NE(c.rejected[4].find("link-local"), std::string::npos);
  EXPECT_NE(c.rejected[5].find("listed twice"), std::string::npos);
  EXPECT_NE(c.rejected[7].find("[::]:40000"), std::string::npos);
  r = {};
  r.reflexive = ep("198.51.100.7:40001");
  EXPECT_EQ(check_endpoint_report(r).kept, r);
  EXPECT_TRUE(check_endpoint_report(r).rejected.empty());
}

}  // namespace
}  // namespace warren::control

// ---- over loopback TLS: session events, send_to_session, the 32 MiB limit ---------------------

namespace warren::control {
namespace {

crypto::PrivateKey node_private(std::uint8_t seed) {
  crypto::PrivateKey k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed * 3 + i);
  return k;
}

class MeshLoopback : public ::testing::Test {
 protected:
  void SetUp() override {
    identity_ = TlsIdentity::generate();
    server_ = std::make_unique<EnrollServer>(
        identity_, "127.0.0.1:0",
        [](const EnrollRequest&) { return EnrollReply::failure("invite_invalid", "none"); });
    server_->set_session_handler([](const crypto::PublicKey& k) -> std::optional<Enrollment> {
      if (k != crypto::derive_public_key(node_private(1)))
        return std::nullopt;
      return base_enrollment();
    });
    SessionEvents events;
    events.on_established = [this](std::uint64_t id, const crypto::PublicKey& k) {
      std::lock_guard lock(mutex_);
      established_.emplace_back(id, k);
      changed_.notify_all();
    };
    events.on_message = [this](std::uint64_t id, const crypto::PublicKey&, std::string_view type,
                               std::string_view text) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(id, std::string(type), std::string(text));
      changed_.notify_all();
    };
    events.on_closed = [this](std::uint64_t id) {
      std::lock_guard lock(mutex_);
      closed_.push_back(id);
      changed_.notify_all();
    };
    server_->set_session_events(std::move(events));
    server_->start();
  }
  void TearDown() override { server_->stop(); }
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(3), pred);
  }
  /// A roster message of about `bytes` bytes (one node with a long run of endpoints is not
  /// possible, so many nodes).
  static std::string big_roster(std::size_t nodes) {
    const mesh::AddressPlan plan;
    mesh::Roster r(plan);
    for (std::size_t i = 0; i < nodes; ++i) {
      crypto::PrivateKey k;
      k.data()[3] = static_cast<std::uint8_t>(i);
      k.data()[4] = static_cast<std::uint8_t>(i >> 8);
      k.data()[7] = 9;
      EXPECT_TRUE(
          r.upsert(mesh::make_entry(plan, "n" + std::to_string(i), crypto::derive_public_key(k)))
              .ok());
    }
    return roster_message_to_json(*r.diff(0));
  }

  TlsIdentity identity_;
  std::unique_ptr<EnrollServer> server_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<std::uint64_t, crypto::PublicKey>> established_;
  std::vector<std::tuple<std::uint64_t, std::string, std::string>> messages_;
  std::vector<std::uint64_t> closed_;
};

TEST_F(MeshLoopback, NodeMessagesReachTheServiceAndItsFramesReachTheNode) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
  auto challenge = parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline));
  ASSERT_TRUE(challenge.ok());
  auto proof = make_session_proof(node_private(1), *challenge,
                                  s->export_keying_material(kExporterLabel));
  s->write_frame(session_request_to_json({crypto::derive_public_key(node_private(1)), *proof}),
                 deadline);
  ASSERT_EQ(parse_session_message(s->read_frame(kMaxMessageBytes, deadline))->type,
            SessionMessageType::kSettings);
  ASSERT_TRUE(wait([&] { return established_.size() == 1; }));
  const std::uint64_t id = established_[0].first;
  EXPECT_EQ(established_[0].second, crypto::derive_public_key(node_private(1)));
  s->write_frame(roster_request_to_json({5}), deadline);
  s->write_frame(endpoints_to_json({{*net::Endpoint::parse("192.0.2.1:51820")}, std::nullopt}),
                 deadline);
  ASSERT_TRUE(wait([&] { return messages_.size() == 2; }));
  EXPECT_EQ(std::get<0>(messages_[0]), id);
  EXPECT_EQ(std::get<1>(messages_[0]), "roster_request");
  EXPECT_EQ(parse_roster_request(std::get<2>(messages_[0]))->from, 5u);
  EXPECT_EQ(std::get<1>(messages_[1]), "endpoints");
  // A frame far above the 16 KiB channel limit reaches an established session whole.
  const std::string big = big_roster(600);
  ASSERT_GT(big.size(), 2 * kMaxMessageBytes);
  server_->send_to_session(id, big);
  server_->send_to_session(id + 1000, "{}");  // no such session: dropped
  EXPECT_EQ(s->read_frame(kMaxRosterMessageBytes, deadline), big);
  s.reset();
  EXPECT_TRUE(wait([&] { return closed_.size() == 1 && closed_[0] == id; }));
}

TEST(MeshBacklog, ASessionThatDoesNotReadIsClosedWhenItsBacklogIsFull) {
  const TlsIdentity identity = TlsIdentity::generate();
  EnrollServerOptions opt;
  opt.max_session_backlog = 256 * 1024;
  EnrollServer server(
      identity, "127.0.0.1:0",
      [](const EnrollRequest&) { return EnrollReply::failure("invite_invalid", "none"); }, opt);
  server.set_session_handler([](const crypto::PublicKey&) -> std::optional<Enrollment> {
    return base_enrollment();
  });
  std::mutex m;
  std::condition_variable cv;
  std::optional<std::uint64_t> id;
  bool closed = false;
  SessionEvents events;
  events.on_established = [&](std::uint64_t s, const crypto::PublicKey&) {
    std::lock_guard lock(m);
    id = s;
    cv.notify_all();
  };
  events.on_closed = [&](std::uint64_t) {
    std::lock_guard lock(m);
    closed = true;
    cv.notify_all();
  };
  server.set_session_events(std::move(events));
  server.start();
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  auto s = TlsStream::connect("127.0.0.1", server.port(), identity.fingerprint(), deadline);
  auto challenge = parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline));
  ASSERT_TRUE(challenge.ok());
  auto proof = make_session_proof(node_private(1), *challenge,
                                  s->export_keying_material(kExporterLabel));
  s->write_frame(session_request_to_json({crypto::derive_public_key(node_private(1)), *proof}),
                 deadline);
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(3), [&] { return id.has_value(); }));
  }
  // The node reads nothing: 64 KiB frames pile up until the 256 KiB backlog is exceeded (the
  // socket buffers take some first), then the session is closed, not the memory grown.
  const auto frame = std::make_shared<const std::string>(64 * 1024, 'x');
  for (int i = 0; i < 400; ++i) {
    server.send_to_session(*id, frame);
    std::lock_guard lock(m);
    if (closed)
      break;
    if (i % 20 == 19)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::unique_lock lock(m);
  EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(3), [&] { return closed; }))
      << "25 MiB queued for a session that reads nothing, and it is still open";
  EXPECT_EQ(server.active_sessions(), 0u);
  lock.unlock();
  server.stop();
}

TEST_F(MeshLoopback, SessionClientReadsRosterFramesAboveTheChannelLimitWithoutReconnecting) {
  std::mutex m;
  std::condition_variable cv;
  int settings = 0;
  SessionClientOptions o;
  o.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  o.fingerprint = identity_.fingerprint();
  SessionClient client(
      o, node_private(1),
      [&](const Enrollment&) {
        std::lock_guard lock(m);
        ++settings;
        cv.notify_all();
      },
      [](const std::string&) {});
  client.start();
  ASSERT_TRUE(wait([&] { return established_.size() == 1; }));
  server_->send_to_session(established_[0].first, big_roster(600));
  server_->settings_changed();  // after the big frame: a second settings message
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return settings >= 2; }));
  }
  // Read on the same session: no reconnect (a 16 KiB limit would have dropped it and the
  // settings would have come on a second session, after a 1 s backoff).
  EXPECT_EQ(client.sessions(), 1u);
  {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(established_.size(), 1u);
    EXPECT_TRUE(closed_.empty());
  }
  client.stop();
}

}  // namespace
}  // namespace warren::control
