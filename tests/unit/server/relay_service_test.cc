// The relay's socket glue on loopback (server/relay_service.h): TLS, frames both ways through
// the switchboard, revalidation, and the connection limits (issue 12 item 3's, for the relay).

#include "server/relay_service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "crypto/random.h"

namespace warren::server {
namespace {

namespace relay = mesh::relay;
using Clock = std::chrono::steady_clock;

int raw_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// Milliseconds until the server closes `fd` (end of stream or reset), -1 if not within `limit`.
long long ms_until_closed(int fd, std::chrono::milliseconds limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) > 0) {
      char b[512];
      const ssize_t n = ::recv(fd, b, sizeof b, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN))
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    }
  }
  return -1;
}

struct Node {
  crypto::PrivateKey priv = crypto::generate_private_key(crypto::SystemRandom::instance());
  crypto::PublicKey pub = crypto::derive_public_key(priv);
};

class RelayOverTls : public ::testing::Test {
 protected:
  void start(RelayServiceOptions o = {}) {
    service_ = std::make_unique<RelayService>(
        identity_, "127.0.0.1:0",
        [this](const crypto::PublicKey& k) {
          std::lock_guard lock(mutex_);
          return allowed_.contains(k);
        },
        o);
    service_->start();
  }
  void allow(const crypto::PublicKey& k, bool yes) {
    std::lock_guard lock(mutex_);
    if (yes)
      allowed_.insert(k);
    else
      allowed_.erase(k);
  }

  struct Session {
    std::unique_ptr<control::TlsStream> tls;
    std::vector<std::uint8_t> buf;
    relay::Frame next() {
      std::array<std::uint8_t, relay::kHeaderSize> h{};
      const auto deadline = Clock::now() + std::chrono::seconds(3);
      tls->read_exact(h, deadline);
      const std::size_t n = std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
      buf.assign(h.begin(), h.end());
      buf.resize(relay::kHeaderSize + n);
      if (n)
        tls->read_exact(std::span(buf).subspan(relay::kHeaderSize), deadline);
      auto f = relay::decode_frame(buf);
      EXPECT_TRUE(f) << f.message();
      return *f;
    }
    void send(const std::vector<std::uint8_t>& b) {
      tls->write_all(b, Clock::now() + std::chrono::seconds(3));
    }
  };

  Session connect() {
    Session s;
    s.tls = control::TlsStream::connect("127.0.0.1", service_->port(), identity_.fingerprint(),
                                        Clock::now() + std::chrono::seconds(3));
    return s;
  }
  Session authenticated(const Node& n) {
    Session s = connect();
    relay::Frame ch = s.next();
    EXPECT_EQ(ch.type, relay::FrameType::kChallenge);
    auto proof = relay::prove(n.priv, n.pub, ch.key, ch.challenge);
    s.send(relay::encode_auth(n.pub, *proof));
    EXPECT_EQ(s.next().type, relay::FrameType::kAuthOk);
    return s;
  }

  control::TlsIdentity identity_ = control::TlsIdentity::generate();
  std::mutex mutex_;
  std::set<crypto::PublicKey> allowed_;
  std::unique_ptr<RelayService> service_;
};

TEST_F(RelayOverTls, ForwardsBetweenNodesAndRevalidationDisconnects) {
  start();
  Node a, b;
  allow(a.pub, true);
  allow(b.pub, true);
  Session sa = authenticated(a);
  Session sb = authenticated(b);
  std::vector<std::uint8_t> frame(relay::kDataHeaderSize + 5);
  ASSERT_TRUE(relay::write_data_header(
      std::span<std::uint8_t, relay::kDataHeaderSize>(frame.data(), relay::kDataHeaderSize),
      relay::FrameType::kSend, b.pub, 5));
  std::memcpy(frame.data() + relay::kDataHeaderSize, "hello", 5);
  sa.send(frame);
  relay::Frame got = sb.next();
  ASSERT_EQ(got.type, relay::FrameType::kRecv);
  EXPECT_EQ(got.key, a.pub);
  EXPECT_EQ(std::string(got.datagram.begin(), got.datagram.end()), "hello");

  allow(b.pub, false);
  service_->revalidate();
  relay::Frame err = sb.next();
  EXPECT_EQ(err.type, relay::FrameType::kError);
  EXPECT_EQ(err.error, static_cast<std::uint16_t>(relay::ErrorCode::kNotEnrolled));
  EXPECT_THROW(sb.next(), control::ControlError);  // closed
  for (int i = 0; i < 100 && service_->counters().nodes != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const RelayCounters c = service_->counters();
  EXPECT_EQ(c.nodes, 1u);
  EXPECT_EQ(c.switchboard.forwarded_frames, 1u);
  EXPECT_EQ(c.switchboard.revoked, 1u);
}

TEST_F(RelayOverTls, PerSourceCapClosesExtraConnectionsAtOnce) {
  RelayServiceOptions o;
  o.max_connections_per_source = 2;
  o.client_hello_timeout = std::chrono::seconds(5);
  start(o);
  int held[2] = {raw_connect(service_->port()), raw_connect(service_->port())};
  for (int i = 0; i < 200 && service_->counters().connections < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(service_->counters().connections, 2u);
  int extra = raw_connect(service_->port());
  const long long t = ms_until_closed(extra, std::chrono::milliseconds(1000));
  EXPECT_GE(t, 0) << "a third connection from one address was kept open";
  EXPECT_LT(t, 500);
  ::close(extra);
  EXPECT_EQ(ms_until_closed(held[0], std::chrono::milliseconds(100)), -1);
  for (int fd : held)
    ::close(fd);
  for (int i = 0; i < 200 && service_->counters().refused_connections < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(service_->counters().refused_connections, 1u);
}

TEST_F(RelayOverTls, SilentAndUnauthenticatedConnectionsAreClosed) {
  RelayServiceOptions o;
  o.client_hello_timeout = std::chrono::milliseconds(300);
  o.switchboard.auth_timeout = std::chrono::milliseconds(500);
  start(o);
  int silent = raw_connect(service_->port());
  long long t = ms_until_closed(silent, std::chrono::milliseconds(2000));
  EXPECT_GE(t, 250);
  EXPECT_LT(t, 1200) << "silent connection not closed at the ClientHello deadline";
  ::close(silent);

  // TLS done, challenge read, no auth: error 2 then closed at the auth timeout.
  const auto start_at = Clock::now();
  Session s = connect();
  EXPECT_EQ(s.next().type, relay::FrameType::kChallenge);
  relay::Frame err = s.next();
  EXPECT_EQ(err.type, relay::FrameType::kError);
  EXPECT_EQ(err.error, static_cast<std::uint16_t>(relay::ErrorCode::kAuthRequired));
  EXPECT_THROW(s.next(), control::ControlError);
  EXPECT_GE(Clock::now() - start_at, std::chrono::milliseconds(450));
  EXPECT_LT(Clock::now() - start_at, std::chrono::milliseconds(2000));
}

TEST_F(RelayOverTls, GarbageInsteadOfFramesIsAProtocolError) {
  start();
  Session s = connect();
  EXPECT_EQ(s.next().type, relay::FrameType::kChallenge);
  s.send({0x01, 0x00, 0x00, 0x00, 0xAA});  // a WireGuard-looking type: not a relay frame
  relay::Frame err = s.next();
  EXPECT_EQ(err.type, relay::FrameType::kError);
  EXPECT_EQ(err.error, static_cast<std::uint16_t>(relay::ErrorCode::kProtocol));
  EXPECT_THROW(s.next(), control::ControlError);
}

int udp_socket(std::uint16_t port, std::uint32_t source_v4 = INADDR_LOOPBACK) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(source_v4);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

std::vector<std::uint8_t> udp_answer(int fd, int ms = 300) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0)
    return {};
  std::vector<std::uint8_t> b(relay::kMaxFrameSize);
  const ssize_t n = ::recv(fd, b.data(), b.size(), 0);
  b.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return b;
}

void udp_send(int fd, const std::vector<std::uint8_t>& b) {
  ASSERT_EQ(::send(fd, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
}

// UDP on the same port number: a hello (an auth frame of zeros) gets a challenge of exactly its
// own size and makes no state (a ping afterwards is still unanswered); the echoed cookie with
// the proof of an enrolled key binds the source, and only then is a ping answered.
TEST_F(RelayOverTls, UdpHelloGetsAStatelessChallengeOfItsOwnSizeAndOnlyAProofBinds) {
  start();
  Node n;
  allow(n.pub, true);
  int fd = udp_socket(service_->port());
  const auto ping = relay::encode_ping(relay::FrameType::kPing, 7);
  udp_send(fd, ping);
  ASSERT_EQ(::send(fd, "junk", 4, 0), 4);
  EXPECT_TRUE(udp_answer(fd).empty()) << "an unknown source's ping or garbage was answered";
  const auto hello = relay::encode_udp_hello();
  udp_send(fd, hello);
  const auto ch = udp_answer(fd);
  ASSERT_EQ(ch.size(), hello.size());
  auto f = relay::decode_frame(ch);
  ASSERT_TRUE(f);
  ASSERT_EQ(f->type, relay::FrameType::kChallenge);
  EXPECT_EQ(service_->counters().connections, 0u) << "a hello made state";
  udp_send(fd, ping);
  EXPECT_TRUE(udp_answer(fd).empty()) << "a hello alone made the source known";
  auto proof = relay::prove(n.priv, n.pub, f->key, f->challenge);
  ASSERT_TRUE(proof);
  udp_send(fd, relay::encode_udp_auth(n.pub, *proof, f->challenge));
  auto ok = relay::decode_frame(udp_answer(fd));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->type, relay::FrameType::kAuthOk);
  for (int i = 0; i < 100 && service_->counters().nodes != 1; ++i)  // published after the send
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(service_->counters().nodes, 1u);
  udp_send(fd, ping);
  auto pong = relay::decode_frame(udp_answer(fd));
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->type, relay::FrameType::kPong);
  EXPECT_EQ(pong->nonce, 7u);
  ::close(fd);
}

// The attack: hellos and forged answers from many source addresses (127.0.0.0/8 on loopback
// stands in for spoofed sources). No source is kept, no answer is larger than what it answers,
// and a forged udp-auth (a cookie the source never received) gets nothing at all.
TEST_F(RelayOverTls, UdpHelloFloodFromManySourcesKeepsNoStateAndNeverAmplifies) {
  start();
  Node n;
  allow(n.pub, true);
  constexpr int kSources = 200;
  std::vector<int> fds;
  for (int i = 0; i < kSources; ++i)
    fds.push_back(
        udp_socket(service_->port(), (127u << 24) | (10u << 8) | (1 + i % 250) | (i / 250) << 16));
  const auto hello = relay::encode_udp_hello();
  relay::Challenge forged_cookie;
  forged_cookie.fill(0x5A);
  const auto forged = relay::encode_udp_auth(n.pub, relay::Proof{}, forged_cookie);
  for (int fd : fds) {
    udp_send(fd, hello);
    udp_send(fd, forged);
  }
  // Wait until the relay has handled every datagram, then take what each source got.
  for (int i = 0; i < 300 && !(service_->counters().udp_challenges == kSources &&
                               service_->counters().udp_auth_refused == kSources);
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::size_t challenges = 0;
  for (int fd : fds) {
    std::vector<std::uint8_t> a(relay::kMaxFrameSize);
    for (;;) {
      const ssize_t n = ::recv(fd, a.data(), a.size(), MSG_DONTWAIT);
      if (n <= 0)
        break;
      EXPECT_LE(static_cast<std::size_t>(n), hello.size()) << "an answer larger than the hello";
      auto f = relay::decode_frame(ConstBytes(a.data(), static_cast<std::size_t>(n)));
      ASSERT_TRUE(f);
      EXPECT_EQ(f->type, relay::FrameType::kChallenge) << "only challenges are sent";
      ++challenges;
    }
  }
  EXPECT_EQ(challenges, static_cast<std::size_t>(kSources));
  const RelayCounters c = service_->counters();
  EXPECT_EQ(c.connections, 0u);
  EXPECT_EQ(c.nodes, 0u);
  EXPECT_EQ(c.udp_challenges, static_cast<std::uint64_t>(kSources));
  EXPECT_EQ(c.udp_auth_refused, static_cast<std::uint64_t>(kSources));
  EXPECT_EQ(c.refused_connections, 0u) << "hellos must not touch the source caps";
  for (int fd : fds)
    ::close(fd);
}

}  // namespace
}  // namespace warren::server
