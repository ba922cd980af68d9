// Invites, enrollment messages, and enrollment over real loopback TLS.

#include "control/enroll.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "base/encoding.h"
#include "crypto/random.h"

namespace warren::control {
namespace {

crypto::PublicKey some_key(std::uint8_t seed) {
  crypto::PrivateKey k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed + i);
  return crypto::derive_public_key(k);
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

  int raw_connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }

  TlsIdentity identity_;
  std::unique_ptr<EnrollServer> server_;
  Invite invite_;
  std::atomic<int> calls_{0};
};

TEST_F(LoopbackEnroll, Good) {
  Enrollment e = enroll(invite_, "alice", some_key(1));
  EXPECT_EQ(e.name, "alice");
  ASSERT_EQ(e.addresses.size(), 1u);
  EXPECT_EQ(e.addresses[0].to_string(), "10.8.0.2/32");
  EXPECT_EQ(e.server_public_key, some_key(3));
  EXPECT_EQ(e.persistent_keepalive, 25);
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(LoopbackEnroll, WrongFingerprintRejectedBeforeSending) {
  Invite bad = invite_;
  bad.fingerprint[5] ^= 1;
  try {
    (void)enroll(bad, "alice", some_key(1));
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
    (void)enroll(bad, "alice", some_key(1));
    FAIL();
  } catch (const EnrollError& e) {
    EXPECT_EQ(e.code(), "invite_invalid");
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos);
  }
}

TEST_F(LoopbackEnroll, NothingListening) {
  Invite inv = invite_;
  server_->stop();
  EXPECT_THROW((void)enroll(inv, "a", some_key(1), std::chrono::milliseconds(1000)), EnrollError);
}

// A client speaking raw TLS: malformed and oversized requests get an error reply.
TEST_F(LoopbackEnroll, MalformedAndOversizedGetErrors) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  {
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    s->write_frame("{not json", deadline);
    std::string reply = s->read_frame(kMaxMessageBytes, deadline);
    EXPECT_NE(reply.find("\"invalid_request\""), std::string::npos) << reply;
  }
  {
    auto s = TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
    std::array<std::uint8_t, 4> huge{0x7f, 0xff, 0xff, 0xff};
    s->write_all(huge, deadline);
    std::string reply = s->read_frame(kMaxMessageBytes, deadline);
    EXPECT_NE(reply.find("exceeds the limit"), std::string::npos) << reply;
  }
  EXPECT_EQ(calls_.load(), 0);
  // Still serving.
  EXPECT_EQ(enroll(invite_, "bob", some_key(2)).name, "bob");
}

// Slow clients (a TCP connection that never speaks TLS, and a TLS client trickling its
// request) must not delay anybody else, and are cut off at the request timeout.
TEST_F(LoopbackEnroll, SlowlorisDoesNotBlockOthers) {
  int silent = raw_connect();
  auto deadline = SteadyClock::now() + std::chrono::seconds(5);
  auto trickle =
      TlsStream::connect("127.0.0.1", server_->port(), identity_.fingerprint(), deadline);
  std::array<std::uint8_t, 1> one{0};
  trickle->write_all(one, deadline);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(enroll(invite_, "c" + std::to_string(i), some_key(4)).name, "c" + std::to_string(i));
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
  EXPECT_THROW((void)enroll(invite_, "x", some_key(5), std::chrono::milliseconds(1000)),
               EnrollError);
  for (int fd : fds)
    ::close(fd);
  for (int i = 0; i < 200 && server_->active_connections() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(enroll(invite_, "y", some_key(5)).name, "y");
}

TEST_F(LoopbackEnroll, ManyConcurrentClients) {
  std::vector<std::thread> t;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    t.emplace_back([&, i] {
      try {
        if (enroll(invite_, "n" + std::to_string(i), some_key(static_cast<std::uint8_t>(i))).name ==
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
