// Invites, enrollment messages, and enrollment over real loopback TLS.

#include "control/enroll.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/random.h"

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

/// `json` with `key` removed (a request as an older or a forging client would send it).
std::string without(const std::string& json, const char* key) {
  auto j = nlohmann::json::parse(json);
  j.erase(key);
  return j.dump();
}

std::string with_version(const std::string& json, int version) {
  auto j = nlohmann::json::parse(json);
  j["version"] = version;
  return j.dump();
}

Invite make_invite(std::string endpoint, const Fingerprint& f) {
  Invite inv;
  inv.control_endpoint = std::move(endpoint);
  inv.fingerprint = f;
  inv.id = random_invite_id();
  inv.secret = random_invite_secret();
  return inv;
}

TEST(Invite, RoundTrip) {
  Fingerprint f{};
  f[0] = 0xab;
  f[31] = 0x01;
  Invite inv = make_invite("vpn.example.com:7443", f);
  std::string line = format_invite(inv);
  EXPECT_TRUE(line.starts_with("warren1:"));
  EXPECT_EQ(line.find_first_of(" \n=+/"), std::string::npos);
  auto back = parse_invite("  " + line + "\n");
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->control_endpoint, "vpn.example.com:7443");
  EXPECT_EQ(back->fingerprint, f);
  EXPECT_EQ(back->id, inv.id);
  EXPECT_TRUE(constant_time_equal(back->secret.span(), inv.secret.span()));
}

TEST(Invite, V6Endpoint) {
  Invite inv = make_invite("[2001:db8::1]:7443", Fingerprint{});
  auto back = parse_invite(format_invite(inv));
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_EQ(back->control_endpoint, "[2001:db8::1]:7443");
}

TEST(Invite, BadFormatsHaveClearErrors) {
  std::string good = format_invite(make_invite("h:1", Fingerprint{}));
  struct Case {
    std::string text;
    std::string needle;
  } cases[] = {
      {"", "does not start with"},
      {"warren2:AAAA", "does not start with"},
      {"warren1:", "version"},
      {"warren1:!!!!", "base64url"},
      {"warren1:AgAA", "version"},  // version 2
      {good.substr(0, good.size() - 10), "too short"},
      {"warren1:" + to_base64url(std::vector<std::uint8_t>(80, 1)), "host:port"},
  };
  for (const auto& c : cases) {
    auto r = parse_invite(c.text);
    EXPECT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.message().find(c.needle), std::string::npos) << c.text << " -> " << r.message();
  }
  std::vector<std::uint8_t> bad(73 + 5, 0);
  bad[0] = 1;
  std::string ep = "nport";
  std::copy(ep.begin(), ep.end(), bad.begin() + 73);
  auto r = parse_invite("warren1:" + to_base64url(bad));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.message().find("host:port"), std::string::npos) << r.message();
}

// Issue 12 (8): the invite's host is resolved, printed and logged; an invite made by an
// attacker must not smuggle control characters (terminal escapes, fake log lines) into them.
TEST(Invite, HostMustBeANameOrAddress) {
  for (const char* ep : {"vpn.example.com\n2026-12-07 fake log line:7443",
                         "evil\x1b]0;owned\x07.com:7443", "a b:7443", "host;reboot:7443",
                         "-oProxyCommand=x:7443"}) {
    auto r = parse_invite(format_invite(make_invite(ep, Fingerprint{})));
    EXPECT_FALSE(r.ok()) << ep;
    EXPECT_NE(r.message().find("is not a host name or an IP address"), std::string::npos) << r.message();
    EXPECT_EQ(r.message().find_first_of("\n\x1b\x07"), std::string::npos) << "echoed raw: " << r.message();
  }
  EXPECT_TRUE(parse_invite(format_invite(make_invite("vpn.example.com.:7443", Fingerprint{}))).ok());
}

TEST(Base64Url, RoundTripAllLengths) {
  for (std::size_t n = 0; n < 40; ++n) {
    std::vector<std::uint8_t> b(n);
    for (std::size_t i = 0; i < n; ++i)
      b[i] = static_cast<std::uint8_t>(i * 37 + n);
    auto s = to_base64url(b);
    auto back = from_base64url(s);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, b);
  }
  EXPECT_FALSE(from_base64url("A"));
  EXPECT_FALSE(from_base64url("AB"));  // non-canonical trailing bits
  EXPECT_FALSE(from_base64url("A+=="));
}

TEST(HostPort, Split) {
  EXPECT_EQ(split_host_port("a.b:1")->host, "a.b");
  EXPECT_EQ(split_host_port("[::1]:65535")->port, 65535);
  EXPECT_FALSE(split_host_port("a.b"));
  EXPECT_FALSE(split_host_port("a.b:0"));
  EXPECT_FALSE(split_host_port("a.b:65536"));
  EXPECT_FALSE(split_host_port(":80"));
  EXPECT_FALSE(split_host_port("::1:80"));
  EXPECT_FALSE(split_host_port("a:b"));
}

TEST(EnrollRequest, ParseRejectsMalformed) {
  EnrollRequest r;
  r.invite_id = "0123456789abcdef";
  r.secret = random_invite_secret();
  r.name = "alice";
  r.public_key = some_key(1);
  auto ok = parse_enroll_request(enroll_request_to_json(r));
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(ok->name, "alice");
  EXPECT_EQ(ok->public_key, r.public_key);
  EXPECT_TRUE(constant_time_equal(ok->secret.span(), r.secret.span()));
  for (const char* bad :
       {"", "[]", "{", "{\"version\":1}", "{\"version\":2,\"type\":\"enroll\"}",
        "{\"version\":1,\"type\":\"enroll\",\"invite_id\":\"xyz\"}", "{\"version\":\"1\"}"}) {
    EXPECT_FALSE(parse_enroll_request(bad).ok()) << bad;
  }
}

TEST(EnrollRequest, VersionAndProofErrorsHaveTheirOwnCodes) {
  EnrollRequest r;
  r.invite_id = "0123456789abcdef";
  r.secret = random_invite_secret();
  r.public_key = some_key(1);
  r.proof.data()[0] = 0x5a;
  const std::string good = enroll_request_to_json(r);
  auto back = parse_enroll_request(good);
  ASSERT_TRUE(back.ok()) << back.message();
  EXPECT_TRUE(constant_time_equal(back->proof.span(), r.proof.span()));

  // A version-1 client (no proof): told to upgrade, not "invalid".
  const std::string v1 = with_version(without(good, "proof"), 1);
  auto old = parse_enroll_request(v1);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(request_error_code(old.error()), "unsupported_version");
  EXPECT_NE(old.message().find("upgrade"), std::string::npos) << old.message();

  const std::string no_proof = without(good, "proof");
  ASSERT_EQ(no_proof.find("proof"), std::string::npos) << no_proof;
  auto np = parse_enroll_request(no_proof);
  ASSERT_FALSE(np.ok());
  EXPECT_EQ(request_error_code(np.error()), "proof_invalid");
  auto sj = nlohmann::json::parse(good);
  sj["proof"] = "AAAA";
  const std::string short_proof = sj.dump();
  auto sp = parse_enroll_request(short_proof);
  ASSERT_FALSE(sp.ok());
  EXPECT_EQ(request_error_code(sp.error()), "proof_invalid");
  auto bad = parse_enroll_request("{\"version\":2,\"type\":\"enroll\",\"invite_id\":\"xyz\"}");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(request_error_code(bad.error()), "invalid_request");
}

TEST(EnrollProof, OnlyTheKeyHolderOnThisChannelVerifies) {
  const crypto::PrivateKey challenge = some_private(40);
  const crypto::PublicKey challenge_pub = crypto::derive_public_key(challenge);
  ExporterValue channel;
  channel.data()[3] = 9;
  EnrollRequest r;
  r.invite_id = "0123456789abcdef";
  r.public_key = some_key(1);
  auto proof = make_enroll_proof(some_private(1), challenge_pub, channel, r.invite_id);
  ASSERT_TRUE(proof.ok()) << proof.message();
  r.proof = *proof;
  EXPECT_TRUE(verify_enroll_proof(challenge, channel, r));

  // Another key's holder claiming key 1.
  EnrollRequest forged = r;
  forged.proof = *make_enroll_proof(some_private(2), challenge_pub, channel, r.invite_id);
  EXPECT_FALSE(verify_enroll_proof(challenge, channel, forged));
  // The right proof on another connection (other exporter value, other challenge key).
  ExporterValue other_channel;
  other_channel.data()[3] = 10;
  EXPECT_FALSE(verify_enroll_proof(challenge, other_channel, r));
  EXPECT_FALSE(verify_enroll_proof(some_private(41), channel, r));
  // Bound to the invite id too.
  EnrollRequest other_invite = r;
  other_invite.invite_id = "fedcba9876543210";
  EXPECT_FALSE(verify_enroll_proof(challenge, channel, other_invite));

  // A low-order point gives an all-zero X25519 result: refused on both sides.
  crypto::PublicKey low_order{};  // the all-zero point
  auto refused = make_enroll_proof(some_private(1), low_order, channel, r.invite_id);
  EXPECT_FALSE(refused.ok());
  EnrollRequest zero = r;
  zero.public_key = low_order;
  zero.proof = EnrollProof{};
  EXPECT_FALSE(verify_enroll_proof(challenge, channel, zero));
}

TEST(EnrollHello, RoundTripAndErrors) {
  auto k = parse_enroll_hello(enroll_hello_to_json(some_key(7)));
  ASSERT_TRUE(k.ok()) << k.message();
  EXPECT_EQ(*k, some_key(7));
  for (const char* bad : {"", "{}", "{\"version\":1,\"type\":\"hello\",\"challenge_key\":\"x\"}",
                          "{\"version\":2,\"ok\":false}",
                          "{\"version\":2,\"type\":\"hello\",\"challenge_key\":\"AAAA\"}"})
    EXPECT_FALSE(parse_enroll_hello(bad).ok()) << bad;
}

// A version-1 client (warren before protocol 2, e.g. 93d8638) sends its request at once and reads
// the server's first frame as its reply, looking only at "ok" and "error". This is that client's
// reading, as it was: the hello must make it report an upgrade, not "malformed reply".
TEST(EnrollHello, AVersionOneClientReadingTheHelloIsToldToUpgrade) {
  auto j = nlohmann::json::parse(enroll_hello_to_json(some_key(7)), nullptr, false);
  ASSERT_TRUE(j.is_object());
  ASSERT_TRUE(j.contains("ok") && j["ok"].is_boolean()) << "v1 client: \"malformed reply\"";
  EXPECT_FALSE(j["ok"].get<bool>());
  ASSERT_TRUE(j.contains("error") && j["error"].is_object());
  EXPECT_EQ(j["error"]["code"], "unsupported_version");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("upgrade warren on this client"),
            std::string::npos);
}

TEST(Enrollment, JsonRoundTrip) {
  Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32"), *net::Prefix::parse("fd00::2/128")};
  e.server_public_key = some_key(9);
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("0.0.0.0/0")};
  e.dns = {*net::IpAddress::parse("10.8.0.1")};
  e.mtu = 1380;
  e.persistent_keepalive = 25;
  Enrollment b = enrollment_from_json(enrollment_to_json(e));
  EXPECT_EQ(b.name, e.name);
  EXPECT_EQ(b.addresses, e.addresses);
  EXPECT_EQ(b.server_public_key, e.server_public_key);
  EXPECT_EQ(b.server_endpoint, e.server_endpoint);
  EXPECT_EQ(b.routes, e.routes);
  EXPECT_EQ(b.dns, e.dns);
  EXPECT_EQ(b.mtu, 1380u);
  EXPECT_EQ(b.persistent_keepalive, 25);
  EXPECT_THROW(enrollment_from_json("{\"name\":1}"), ControlError);
}

// ---- over loopback TLS ----------------------------------------------------------------------

class LoopbackEnroll : public ::testing::Test {
 protected:
  void SetUp() override {
    identity_ = TlsIdentity::generate();
    EnrollServerOptions opt;
    opt.request_timeout = std::chrono::milliseconds(1500);
    opt.max_connections = 8;
    opt.max_connections_per_source = 64;  // every test client comes from 127.0.0.1
    restart(opt);
  }

  /// (Re)starts the server with `opt`; the handler enrolls invite_'s holders.
  void restart(const EnrollServerOptions& opt) {
    if (server_)
      server_->stop();
    server_ = std::make_unique<EnrollServer>(
        identity_, "127.0.0.1:0",
        [this](const EnrollRequest& r) {
          ++calls_;
          if (r.invite_id != invite_.id)
            return EnrollReply::failure("invite_invalid", "unknown invite");
          if (!constant_time_equal(r.secret.span(), invite_.secret.span()))
            return EnrollReply::failure("invite_invalid", "unknown invite");
          Enrollment e;
          e.name = r.name;
          e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
          e.server_public_key = some_key(3);
          e.server_endpoint = "127.0.0.1:51820";
          e.persistent_keepalive = 25;
          return EnrollReply{e, {}, {}};
        },
        opt);
    server_->start();
    invite_ = make_invite("127.0.0.1:" + std::to_string(server_->port()), identity_.fingerprint());
  }
  void TearDown() override { server_->stop(); }

  /// A plain TCP connection to the server from `source` (any 127/8 address is loopback).
  int raw_connect(const char* source = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source) {
      sockaddr_in b{};
      b.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &b.sin_addr);
      EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }

  /// One exchange spoken by hand: reads the hello, sends make_request(challenge key, exporter
  /// value) and returns the reply.
  std::string raw_exchange(
      const std::function<std::string(const crypto::PublicKey&, const ExporterValue&)>&
          make_request) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(5);
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    auto challenge = parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline));
    EXPECT_TRUE(challenge.ok()) << challenge.message();
    s->write_frame(make_request(*challenge, s->export_keying_material(kExporterLabel)), deadline);
    return s->read_frame(kMaxMessageBytes, deadline);
  }
  EnrollRequest request_for(const crypto::PublicKey& key) {
    EnrollRequest r;
    r.invite_id = invite_.id;
    r.secret = invite_.secret;
    r.name = "mallory";
    r.public_key = key;
    return r;
  }

  TlsIdentity identity_;
  std::unique_ptr<EnrollServer> server_;
  Invite invite_;
  std::atomic<int> calls_{0};
};

TEST_F(LoopbackEnroll, Good) {
  Enrollment e = enroll(invite_, "alice", some_private(1));
  EXPECT_EQ(e.name, "alice");
  ASSERT_EQ(e.addresses.size(), 1u);
  EXPECT_EQ(e.addresses[0].to_string(), "10.8.0.2/32");
  EXPECT_EQ(e.server_public_key, some_key(3));
  EXPECT_EQ(e.persistent_keepalive, 25);
  EXPECT_EQ(calls_.load(), 1);
}

// Issue 12 (2): whoever knows only a client's public key (e.g. from `wg show`) and holds an
// invite cannot enroll as that client: no proof, a proof made with another key, and a proof
// copied from another connection are all refused before the handler runs.
TEST_F(LoopbackEnroll, RequestsWithoutProofOfPossessionNeverReachTheHandler) {
  const crypto::PublicKey victim = some_key(1);
  // No proof at all (what a version-2 request built from the public key alone would be).
  std::string reply = raw_exchange([&](const crypto::PublicKey&, const ExporterValue&) {
    return without(enroll_request_to_json(request_for(victim)), "proof");
  });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  // A proof made with the attacker's own private key.
  reply = raw_exchange([&](const crypto::PublicKey& challenge, const ExporterValue& channel) {
    EnrollRequest r = request_for(victim);
    r.proof = *make_enroll_proof(some_private(66), challenge, channel, r.invite_id);
    return enroll_request_to_json(r);
  });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  // A genuine proof by the victim, recorded on one connection and replayed on another.
  std::string recorded;
  reply = raw_exchange([&](const crypto::PublicKey& challenge, const ExporterValue& channel) {
    EnrollRequest r = request_for(victim);
    r.proof = *make_enroll_proof(some_private(1), challenge, channel, r.invite_id);
    recorded = enroll_request_to_json(r);
    return std::string("{}");  // the victim's connection itself is spent on something else
  });
  EXPECT_NE(reply.find("\"invalid_request\""), std::string::npos) << reply;
  reply = raw_exchange([&](const crypto::PublicKey&, const ExporterValue&) { return recorded; });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  EXPECT_EQ(reply.find("enrollment"), std::string::npos) << reply;
  EXPECT_EQ(calls_.load(), 0);
  // The key's holder enrolls fine.
  EXPECT_EQ(enroll(invite_, "alice", some_private(1)).name, "alice");
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(LoopbackEnroll, VersionOneRequestIsToldToUpgrade) {
  std::string reply = raw_exchange([&](const crypto::PublicKey&, const ExporterValue&) {
    return with_version(without(enroll_request_to_json(request_for(some_key(1))), "proof"), 1);
  });
  EXPECT_NE(reply.find("\"unsupported_version\""), std::string::npos) << reply;
  EXPECT_NE(reply.find("upgrade warren"), std::string::npos) << reply;
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(LoopbackEnroll, WrongFingerprintRejectedBeforeSending) {
  Invite bad = invite_;
  bad.fingerprint[5] ^= 1;
  try {
    (void)enroll(bad, "alice", some_private(1));
    FAIL() << "enrolled despite a wrong fingerprint";
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "transport");
    EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls_.load(), 0);  // the request (and the secret) never reached the server
}

TEST_F(LoopbackEnroll, BadSecretRefusedWithCode) {
  Invite bad = invite_;
  bad.secret.data()[0] ^= 1;
  try {
    (void)enroll(bad, "alice", some_private(1));
    FAIL();
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "invite_invalid");
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos);
  }
}

// The counts behind warren_enrollments_total / warren_enrollment_refusals_total: every answer,
// whether decided in the loop (proof, version) or by the handler (invite), by its code.
TEST_F(LoopbackEnroll, AnswersAreCountedByCode) {
  EXPECT_EQ(server_->answer_counts().enrolled, 0u);
  EXPECT_TRUE(server_->answer_counts().refused.empty());
  (void)enroll(invite_, "alice", some_private(1));
  Invite bad = invite_;
  bad.secret.data()[0] ^= 1;
  for (int i = 0; i < 2; ++i)
    EXPECT_THROW((void)enroll(bad, "alice", some_private(1)), EnrollError);
  std::string reply = raw_exchange([&](const crypto::PublicKey&, const ExporterValue&) {
    return without(enroll_request_to_json(request_for(some_key(1))), "proof");
  });
  EXPECT_NE(reply.find("\"proof_invalid\""), std::string::npos) << reply;
  const EnrollServer::AnswerCounts c = server_->answer_counts();
  EXPECT_EQ(c.enrolled, 1u);
  EXPECT_EQ(c.refused.size(), 2u);
  EXPECT_EQ(c.refused.at("invite_invalid"), 2u);
  EXPECT_EQ(c.refused.at("proof_invalid"), 1u);
}

TEST_F(LoopbackEnroll, NothingListening) {
  Invite inv = invite_;
  server_->stop();
  EXPECT_THROW((void)enroll(inv, "a", some_private(1), std::chrono::milliseconds(1000)), EnrollError);
}

// A client speaking raw TLS: malformed and oversized requests get an error reply.
TEST_F(LoopbackEnroll, MalformedAndOversizedGetErrors) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  {
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    (void)s->read_frame(kMaxMessageBytes, deadline);  // the hello
    s->write_frame("{not json", deadline);
    std::string reply = s->read_frame(kMaxMessageBytes, deadline);
    EXPECT_NE(reply.find("\"invalid_request\""), std::string::npos) << reply;
  }
  {
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    (void)s->read_frame(kMaxMessageBytes, deadline);  // the hello
    std::array<std::uint8_t, 4> huge{0x7f, 0xff, 0xff, 0xff};
    s->write_all(huge, deadline);
    std::string reply = s->read_frame(kMaxMessageBytes, deadline);
    EXPECT_NE(reply.find("exceeds the limit"), std::string::npos) << reply;
  }
  EXPECT_EQ(calls_.load(), 0);
  // Still serving.
  EXPECT_EQ(enroll(invite_, "bob", some_private(2)).name, "bob");
}

// Slow clients (a TCP connection that never speaks TLS, and a TLS client trickling its
// request) must not delay anybody else, and are cut off at the request timeout.
TEST_F(LoopbackEnroll, SlowlorisDoesNotBlockOthers) {
  int silent = raw_connect();
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  auto trickle =
      TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
  (void)trickle->read_frame(kMaxMessageBytes, deadline);  // the hello
  std::array<std::uint8_t, 1> one{0};
  trickle->write_all(one, deadline);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(enroll(invite_, "c" + std::to_string(i), some_private(4)).name, "c" + std::to_string(i));
  // The silent one is disconnected by the server after its timeout (read returns 0).
  char buf[16];
  timeval tv{5, 0};
  ::setsockopt(silent, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssize_t n = ::read(silent, buf, sizeof buf);
  EXPECT_LE(n, 0);
  ::close(silent);
  EXPECT_THROW(trickle->read_frame(kMaxMessageBytes, SteadyClock::now() + std::chrono::seconds(5)),
               ControlError);
}

TEST_F(LoopbackEnroll, ConcurrencyCapClosesExtraConnections) {
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i)
    fds.push_back(raw_connect());
  // Wait until the server holds all eight.
  for (int i = 0; i < 100 && server_->active_connections() < 8; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(server_->active_connections(), 8u);
  EXPECT_THROW((void)enroll(invite_, "x", some_private(5), std::chrono::milliseconds(1000)),
               EnrollError);
  for (int fd : fds)
    ::close(fd);
  for (int i = 0; i < 200 && server_->active_connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(enroll(invite_, "y", some_private(5)).name, "y");
}

/// Milliseconds until the server closes `fd` (read returns 0 or an error), or -1 if it is still
/// open after `limit`.
long long ms_until_closed(int fd, std::chrono::milliseconds limit) {
  const auto start = SteadyClock::now();
  timeval tv{static_cast<time_t>(limit.count() / 1000),
             static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0)
      continue;  // e.g. a TLS alert on the way out
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return -1;
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start)
        .count();
  }
}

// Issue 12 (3): one source address holds at most max_connections_per_source connections; the
// next is closed at once, and other hosts are served meanwhile.
TEST_F(LoopbackEnroll, PerSourceCapClosesExtraConnectionsAtOnce) {
  EnrollServerOptions opt;
  opt.max_connections_per_source = 4;
  opt.client_hello_timeout = std::chrono::seconds(5);  // the cap, not a deadline, must act
  opt.request_timeout = std::chrono::seconds(5);
  restart(opt);
  invite_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  std::vector<int> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(raw_connect("127.0.0.2"));
  for (int i = 0; i < 200 && server_->active_connections() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(server_->active_connections(), 4u);
  int extra = raw_connect("127.0.0.2");
  const long long closed_after = ms_until_closed(extra, std::chrono::milliseconds(1000));
  EXPECT_GE(closed_after, 0) << "the fifth connection from one address was kept open";
  EXPECT_LT(closed_after, 500);
  ::close(extra);
  // Another address enrolls while the four are held.
  const auto start = SteadyClock::now();
  EXPECT_EQ(enroll(invite_, "honest", some_private(7)).name, "honest");
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(1));
  // The honest connection closes on the server a moment after the client has its answer;
  // the four held ones stay: only the extra one was refused.
  for (int i = 0; i < 200 && server_->active_connections() > 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server_->active_connections(), 4u);
  for (int fd : held)
    ::close(fd);
}

// Issue 12 (3): a connection must deliver its TLS ClientHello within client_hello_timeout;
// silence and trickling both end there, long before the request timeout. Garbage ends at once.
TEST_F(LoopbackEnroll, ClientHelloDeadlineAndGarbage) {
  EnrollServerOptions opt;
  opt.client_hello_timeout = std::chrono::milliseconds(300);
  opt.request_timeout = std::chrono::seconds(5);
  restart(opt);
  invite_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());

  int silent = raw_connect();
  long long t = ms_until_closed(silent, std::chrono::milliseconds(2000));
  EXPECT_GE(t, 250);
  EXPECT_LT(t, 1200) << "silent connection not closed at the ClientHello deadline";
  ::close(silent);

  // A TLS record header, then one byte of handshake every 100 ms: never a whole ClientHello.
  int trickle = raw_connect();
  const unsigned char header[] = {0x16, 0x03, 0x01, 0x01, 0x00};  // handshake, 256 bytes
  ASSERT_EQ(::write(trickle, header, sizeof header), static_cast<ssize_t>(sizeof header));
  const auto start = SteadyClock::now();
  bool closed = false;
  while (SteadyClock::now() - start < std::chrono::milliseconds(2000)) {
    const unsigned char one = 0x01;
    if (::send(trickle, &one, 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    if (ms_until_closed(trickle, std::chrono::milliseconds(100)) >= 0) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed) << "a trickled ClientHello kept the connection open";
  EXPECT_LT(SteadyClock::now() - start, std::chrono::milliseconds(1200));
  ::close(trickle);

  int garbage = raw_connect();
  std::string junk(1024, 'x');
  ASSERT_EQ(::write(garbage, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  t = ms_until_closed(garbage, std::chrono::milliseconds(2000));
  EXPECT_GE(t, 0);
  EXPECT_LT(t, 200) << "garbage did not fail the handshake at once";
  ::close(garbage);

  // A client that completes its handshake in time is not cut at the ClientHello deadline.
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline)).ok());
  EXPECT_EQ(server_->active_connections(), 1u);
}

// The handler runs on a bounded pool: with one worker busy and the queue full, the next
// proven request is answered `busy` at once instead of waiting.
TEST_F(LoopbackEnroll, FullQueueAnswersBusy) {
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  int entered = 0;
  EnrollServerOptions opt;
  opt.workers = 1;
  opt.max_queued_requests = 1;
  opt.max_connections_per_source = 64;
  server_->stop();
  server_ = std::make_unique<EnrollServer>(
      identity_, "127.0.0.1:0",
      [&](const EnrollRequest& r) {
        std::unique_lock lock(m);
        ++entered;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        Enrollment e;
        e.name = r.name;
        e.server_public_key = some_key(3);
        e.server_endpoint = "127.0.0.1:51820";
        return EnrollReply{e, {}, {}};
      },
      opt);
  server_->start();
  invite_.control_endpoint = "127.0.0.1:" + std::to_string(server_->port());
  std::vector<std::thread> waiting;
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i) {
    waiting.emplace_back([&, i] {
      try {
        if (enroll(invite_, "w" + std::to_string(i), some_private(static_cast<std::uint8_t>(20 + i))).name.size())
          ++ok;
      } catch (...) {
      }
    });
    if (i == 0) {  // the first one occupies the worker before the second is queued
      std::unique_lock lock(m);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return entered == 1; }));
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the second one is queued
  try {
    (void)enroll(invite_, "third", some_private(30));
    ADD_FAILURE() << "a third request was accepted while the worker and the queue were full";
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "busy") << e.what();
  }
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  for (auto& t : waiting)
    t.join();
  EXPECT_EQ(ok.load(), 2);
}

TEST_F(LoopbackEnroll, ManyConcurrentClients) {
  std::vector<std::thread> t;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    t.emplace_back([&, i] {
      try {
        if (enroll(invite_, "n" + std::to_string(i), some_private(static_cast<std::uint8_t>(i))).name ==
            "n" + std::to_string(i))
          ++ok;
      } catch (...) {
      }
    });
  for (auto& th : t)
    th.join();
  EXPECT_EQ(ok.load(), 6);
}

TEST(TlsIdentity, CreatedOnceThenLoadedWithSameFingerprint) {
  char dir[] = "/tmp/warren_tls_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string cert = std::string(dir) + "/c.pem", key = std::string(dir) + "/k.pem";
  auto a = TlsIdentity::load_or_create(cert, key);
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto b = TlsIdentity::load_or_create(cert, key);
  EXPECT_EQ(a.fingerprint(), b.fingerprint());
  ::unlink(key.c_str());
  EXPECT_THROW(TlsIdentity::load_or_create(cert, key), ControlError);
  ::unlink(cert.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace warren::control
