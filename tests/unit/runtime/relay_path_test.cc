// The node side of the relay: settings, key ⇄ endpoint map, bounded queue, the transport's
// drops, and the fallback policy (runtime/relay_transport.h, runtime/relay_policy.h).

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "crypto/random.h"
#include "mesh/relay.h"
#include "platform/tcp.h"
#include "runtime/relay_policy.h"
#include "runtime/relay_transport.h"

namespace warren::runtime {
namespace {

using namespace std::chrono_literals;
namespace relay = mesh::relay;

const std::string kPin(64, 'a');

crypto::PublicKey key_of(std::uint8_t b) {
  crypto::PublicKey k;
  k.bytes.fill(b);
  return k;
}

TEST(RelaySettings, UnsetMeansNoRelay) {
  auto r = parse_relay_settings(std::nullopt, std::nullopt, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  auto empty = parse_relay_settings(std::string(), kPin, std::nullopt);
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST(RelaySettings, ParsesHostPortPinAndRetry) {
  auto r = parse_relay_settings(std::string("10.0.0.1:7444"), kPin, std::string("7"));
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->host, "10.0.0.1");
  EXPECT_EQ((*r)->port, 7444);
  EXPECT_EQ((*r)->pin[0], 0xaa);
  EXPECT_EQ((*r)->direct_retry, 7s);
  auto d = parse_relay_settings(std::string("[2001:db8::1]:7444"), kPin, std::nullopt);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ((*d)->direct_retry, 30s);
}

TEST(RelaySettings, BadValuesAreNamed) {
  auto bad_host = parse_relay_settings(std::string("10.0.0.1"), kPin, std::nullopt);
  ASSERT_FALSE(bad_host.ok());
  EXPECT_NE(bad_host.message().find("invalid WARREN_RELAY: \"10.0.0.1\""), std::string::npos);
  auto no_pin = parse_relay_settings(std::string("10.0.0.1:7444"), std::nullopt, std::nullopt);
  ASSERT_FALSE(no_pin.ok());
  EXPECT_NE(no_pin.message().find("WARREN_RELAY_PIN"), std::string::npos);
  for (std::string pin : {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'g')}) {
    auto r = parse_relay_settings(std::string("10.0.0.1:7444"), pin, std::nullopt);
    ASSERT_FALSE(r.ok()) << pin;
    EXPECT_NE(r.message().find("invalid WARREN_RELAY_PIN"), std::string::npos) << r.message();
  }
  for (const char* retry : {"0", "3601", "x", "-1", "10s"}) {
    auto r = parse_relay_settings(std::string("10.0.0.1:7444"), kPin, std::string(retry));
    ASSERT_FALSE(r.ok()) << retry;
    EXPECT_NE(r.message().find("invalid WARREN_RELAY_DIRECT_RETRY"), std::string::npos);
  }
}

TEST(RelayPeerMap, KeysGetStableSyntheticEndpointsAndBack) {
  RelayPeerMap map;
  auto a = map.endpoint_for(key_of(1));
  auto b = map.endpoint_for(key_of(2));
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(*map.endpoint_for(key_of(1)), *a);  // stable
  EXPECT_EQ(a->to_string(), "0.0.0.1:1");
  EXPECT_EQ(b->to_string(), "0.0.0.2:1");
  EXPECT_EQ(*map.key_for(*a), key_of(1));
  EXPECT_EQ(*map.key_for(*b), key_of(2));
  EXPECT_EQ(map.size(), 2u);
  // Endpoints it never handed out: real addresses, another port, an index not yet given.
  EXPECT_FALSE(map.key_for(*net::Endpoint::parse("192.0.2.1:1")));
  EXPECT_FALSE(map.key_for(*net::Endpoint::parse("0.0.0.1:51820")));
  EXPECT_FALSE(map.key_for(*net::Endpoint::parse("0.0.0.3:1")));
  EXPECT_FALSE(map.key_for(*net::Endpoint::parse("0.0.0.0:1")));
  EXPECT_FALSE(map.key_for(*net::Endpoint::parse("[::1]:1")));
}

TEST(FrameQueue, BoundedByFramesAndBytes) {
  FrameQueue q(3, 100);
  EXPECT_TRUE(q.push(std::vector<std::uint8_t>(10)));
  EXPECT_TRUE(q.push(std::vector<std::uint8_t>(10)));
  EXPECT_FALSE(q.push(std::vector<std::uint8_t>(90)));  // bytes
  EXPECT_TRUE(q.push(std::vector<std::uint8_t>(80)));
  EXPECT_FALSE(q.push(std::vector<std::uint8_t>(1)));  // frames
  auto all = q.take_all();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[2].size(), 80u);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_TRUE(q.push(std::vector<std::uint8_t>(100)));  // room again after take_all
}

TEST(RelayTransport, SendWithoutAConnectionDropsAndCounts) {
  // A key source with no key: the link thread never connects (and says why).
  RelaySettings s{.host = "127.0.0.1", .port = 9};
  RelayTransport t(s, [] { return std::optional<crypto::PrivateKey>(); });
  auto ep = t.endpoint_for(key_of(7));
  ASSERT_TRUE(ep);
  std::vector<std::uint8_t> data(100, 1);
  platform::OutDatagram d{.data = ConstBytes(data.data(), data.size()),
                          .path = net::Path{.remote = *ep, .transport = 1}};
  std::vector<platform::OutDatagram> batch{d, d};
  auto r = t.send(batch);
  EXPECT_EQ(r.count, 2u);  // the engine counts no send error; the transport counts the drop
  EXPECT_EQ(t.status().dropped_not_connected, 2u);
  EXPECT_EQ(t.status().sent, 0u);
  EXPECT_FALSE(t.status().connected);
  for (int i = 0; i < 100 && t.status().last_error.empty(); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(t.status().last_error, "no private key yet");
  // Nothing to receive: EAGAIN, like a UDP socket.
  std::vector<std::uint8_t> buf(2048);
  std::array<Bytes, 1> bufs{Bytes(buf.data(), buf.size())};
  std::array<std::size_t, 1> sizes{};
  std::array<net::Path, 1> paths{};
  auto rx = t.receive(0, bufs, sizes, paths);
  EXPECT_EQ(rx.count, 0u);
  EXPECT_EQ(rx.error, EAGAIN);
  t.stop();  // prompt, though the thread waits in a backoff
}

TEST(RelayTransport, BackoffDoublesToACap) {
  Duration b{};
  b = RelayTransport::next_backoff(b);
  EXPECT_EQ(b, 1s);
  b = RelayTransport::next_backoff(b);
  EXPECT_EQ(b, 2s);
  for (int i = 0; i < 10; ++i)
    b = RelayTransport::next_backoff(b);
  EXPECT_EQ(b, RelayTransport::kMaxBackoff);
}

// A relay on loopback that speaks just enough of the protocol: TLS, challenge, auth ok; then
// what each test step asks. Driven by polling (tests only).
class FakeRelay {
 public:
  FakeRelay() : identity_(control::TlsIdentity::generate()) {
    auto l = platform::tcp_listen("127.0.0.1:0");
    EXPECT_TRUE(l.ok()) << l.message();
    listener_ = std::move(*l);
  }
  std::uint16_t port() const { return listener_->port(); }
  const control::Fingerprint& pin() const { return identity_.fingerprint(); }

  // Accepts one connection and authenticates it; the node's key, or nullopt.
  std::optional<crypto::PublicKey> accept_and_auth() {
    // Polled, so that a transport that never comes fails the test instead of hanging it.
    std::optional<platform::TcpConnection> c;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!c && std::chrono::steady_clock::now() < deadline) {
      if (auto a = listener_->try_accept(); a.ok())
        c = std::move(a->connection);
      else
        std::this_thread::sleep_for(5ms);
    }
    if (!c)
      return std::nullopt;
    session_ = std::make_unique<control::TlsServerSession>(identity_, std::move(*c));
    if (!drive([&] { return session_->handshake(); }))
      return std::nullopt;
    auto ch = relay::Challenger::create(crypto::SystemRandom::instance());
    if (!write(ch.frame()))
      return std::nullopt;
    auto auth = read_frame();
    if (!auth || auth->type != relay::FrameType::kAuth)
      return std::nullopt;
    relay::Proof proof;
    std::copy(auth->challenge.begin(), auth->challenge.end(), proof.begin());
    auto key = ch.verify(auth->key, proof);
    if (!key.ok() || !write(relay::encode_simple(relay::FrameType::kAuthOk)))
      return std::nullopt;
    return *key;
  }
  bool write(const std::vector<std::uint8_t>& bytes) {
    std::string data(bytes.begin(), bytes.end());
    std::size_t off = 0;
    return drive([&] { return session_->write_from(data, off); });
  }
  // The next frame that is not a ping/keepalive (pings are the transport's own).
  std::optional<relay::Frame> read_frame() {
    for (;;) {
      buf_.clear();
      if (!drive([&] { return session_->read_to(buf_, relay::kHeaderSize); }))
        return std::nullopt;
      const auto* h = reinterpret_cast<const std::uint8_t*>(buf_.data());
      const std::size_t n = std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
      if (!drive([&] { return session_->read_to(buf_, relay::kHeaderSize + n); }))
        return std::nullopt;
      auto f = relay::decode_frame(
          ConstBytes(reinterpret_cast<const std::uint8_t*>(buf_.data()), buf_.size()));
      if (!f.ok())
        return std::nullopt;
      if (f->type != relay::FrameType::kPing && f->type != relay::FrameType::kKeepalive)
        return *f;
    }
  }
  void drop() { session_.reset(); }

 private:
  template <typename F>
  bool drive(F op) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      const auto io = op();
      if (io == control::TlsServerSession::Io::kDone)
        return true;
      if (io == control::TlsServerSession::Io::kClosed ||
          io == control::TlsServerSession::Io::kFailed ||
          std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(1ms);
    }
  }
  control::TlsIdentity identity_;
  std::unique_ptr<platform::TcpListener> listener_;
  std::unique_ptr<control::TlsServerSession> session_;
  std::string buf_;
};

// The FakeRelay speaks TCP/TLS only.
const RelayCarrierChoice::Options kTcpOnly{.udp = false};

bool wait_for(const std::function<bool()>& pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(RelayTransport, AuthenticatesCarriesDatagramsBothWaysAndReconnects) {
  FakeRelay fake;
  const crypto::PrivateKey node_key =
      crypto::generate_private_key(crypto::SystemRandom::instance());
  const crypto::PublicKey node_pub = crypto::derive_public_key(node_key);
  RelaySettings s{.host = "127.0.0.1", .port = fake.port(), .pin = fake.pin()};
  RelayTransport t(
      s, [&] { return std::optional<crypto::PrivateKey>(node_key); }, RelayTransport::kPingInterval,
      kTcpOnly);

  // 1. The node proves its own key.
  auto who = fake.accept_and_auth();
  ASSERT_TRUE(who);
  EXPECT_EQ(*who, node_pub);
  ASSERT_TRUE(wait_for([&] { return t.connected(); }));

  // 2. send(): a send frame to the key behind the synthetic endpoint, datagram unchanged.
  const auto peer_x = key_of(0x11), peer_y = key_of(0x22);
  std::vector<std::uint8_t> out(148, 0x5a);
  platform::OutDatagram d{.data = ConstBytes(out.data(), out.size()),
                          .path = net::Path{.remote = *t.endpoint_for(peer_x), .transport = 1}};
  std::vector<platform::OutDatagram> batch{d};
  EXPECT_EQ(t.send(batch).count, 1u);
  auto f = fake.read_frame();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, relay::FrameType::kSend);
  EXPECT_EQ(f->key, peer_x);
  EXPECT_EQ(std::vector<std::uint8_t>(f->datagram.begin(), f->datagram.end()), out);

  // 3. A recv frame from Y: poll_fd readable, receive() gives the datagram with Y's endpoint.
  std::vector<std::uint8_t> in(92, 0xa5);
  ASSERT_TRUE(
      fake.write(*relay::encode_frame(relay::Frame{.type = relay::FrameType::kRecv,
                                                   .key = peer_y,
                                                   .datagram = ConstBytes(in.data(), in.size())})));
  std::vector<std::uint8_t> buf(2048);
  std::array<Bytes, 4> bufs{Bytes(buf.data(), buf.size()), Bytes(), Bytes(), Bytes()};
  std::array<std::size_t, 4> sizes{};
  std::array<net::Path, 4> paths{};
  platform::BatchResult rx{};
  ASSERT_TRUE(wait_for([&] {
    rx = t.receive(0, std::span(bufs).first(1), std::span(sizes).first(1),
                   std::span(paths).first(1));
    return rx.count == 1;
  }));
  EXPECT_EQ(sizes[0], in.size());
  EXPECT_EQ(std::vector<std::uint8_t>(buf.begin(), buf.begin() + 92), in);
  EXPECT_EQ(t.key_for(paths[0].remote), peer_y);
  EXPECT_EQ(t.status().received, 1u);

  // 4. The relay drops the stream: the transport reconnects (after its 1 s backoff).
  fake.drop();
  ASSERT_TRUE(wait_for([&] { return !t.connected(); }));
  auto again = fake.accept_and_auth();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, node_pub);
  ASSERT_TRUE(wait_for([&] { return t.connected(); }));
  EXPECT_EQ(t.status().connects, 2u);
  // And the new connection carries datagrams.
  EXPECT_EQ(t.send(batch).count, 1u);
  auto f2 = fake.read_frame();
  ASSERT_TRUE(f2);
  EXPECT_EQ(f2->key, peer_x);
  t.stop();
}

TEST(RelayTransport, ANewPrivateKeyMakesItReconnectUnderThatKey) {
  FakeRelay fake;
  std::mutex m;
  crypto::PrivateKey key = crypto::generate_private_key(crypto::SystemRandom::instance());
  RelaySettings s{.host = "127.0.0.1", .port = fake.port(), .pin = fake.pin()};
  RelayTransport t(
      s,
      [&] {
        std::lock_guard lock(m);
        return std::optional<crypto::PrivateKey>(key);
      },
      100ms, kTcpOnly);
  auto first = fake.accept_and_auth();
  ASSERT_TRUE(first);
  crypto::PublicKey new_pub;
  {
    std::lock_guard lock(m);
    key = crypto::generate_private_key(crypto::SystemRandom::instance());
    new_pub = crypto::derive_public_key(key);
  }
  EXPECT_NE(*first, new_pub);
  auto second = fake.accept_and_auth();  // within the next check and the 1 s backoff
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, new_pub);
  t.stop();
}

TEST(RelayTransport, AWrongPinNeverConnects) {
  FakeRelay fake;
  const crypto::PrivateKey node_key =
      crypto::generate_private_key(crypto::SystemRandom::instance());
  control::Fingerprint wrong = fake.pin();
  wrong[0] ^= 1;
  RelaySettings s{.host = "127.0.0.1", .port = fake.port(), .pin = wrong};
  RelayTransport t(
      s, [&] { return std::optional<crypto::PrivateKey>(node_key); }, RelayTransport::kPingInterval,
      kTcpOnly);
  std::thread server([&] { (void)fake.accept_and_auth(); });  // the handshake fails on our side
  EXPECT_TRUE(wait_for([&] { return !t.status().last_error.empty(); }));
  EXPECT_NE(t.status().last_error.find("cannot connect"), std::string::npos)
      << t.status().last_error;
  EXPECT_FALSE(t.connected());
  t.stop();
  server.join();
}

// ---- policy ----

constexpr std::uint8_t kTag = 1;

struct PolicyFixture : ::testing::Test {
  RelayPolicy policy{RelayPolicyOptions{.fallback_after = 5s, .direct_retry = 30s}};
  RelayPeerMap map;
  MonoTime now{std::chrono::seconds(1000)};
  bool connected = true;
  wg::PeerSnapshot peer;
  net::Endpoint direct = *net::Endpoint::parse("192.0.2.7:51820");

  void SetUp() override {
    peer.public_key = key_of(9);
    peer.endpoint = direct;
  }
  std::vector<wg::PeerDelta> step(Duration dt) {
    now += dt;
    return policy.tick({peer}, now, kTag, connected,
                       [&](const crypto::PublicKey& k) { return map.endpoint_for(k); });
  }
  // The engine applies a delta: a non-UDP endpoint is hidden in its snapshot.
  void apply(const wg::PeerDelta& d) {
    peer.endpoint_transport = d.transport;
    if (d.transport == kTag)
      peer.endpoint.reset();
    else
      peer.endpoint = d.endpoint;
  }
};

TEST_F(PolicyFixture, NoAnswerOnTheDirectPathFallsBackToTheRelayAfterFiveSeconds) {
  EXPECT_TRUE(step(0s).empty());
  peer.tx_packets = 1;  // an initiation went out, nothing came back
  EXPECT_TRUE(step(1s).empty());
  EXPECT_TRUE(step(3s).empty());  // 4 s since the last receive
  auto d = step(1s);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].public_key, peer.public_key);
  EXPECT_EQ(d[0].transport, kTag);
  EXPECT_EQ(*d[0].endpoint, *map.endpoint_for(peer.public_key));
  EXPECT_TRUE(d[0].update_only);
  EXPECT_EQ(policy.relayed_count(), 1u);
}

TEST_F(PolicyFixture, AWorkingOrIdleDirectPathStays) {
  (void)step(0s);
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(step(1s).empty());  // idle: nothing sent
  peer.has_session = true;
  for (int i = 1; i <= 30; ++i) {
    peer.tx_packets += 5;  // one-way traffic over a live session is not a failure: the peer
    peer.tx_bytes += 5 * 1000;
    if (i % 10 == 0)
      peer.rx_packets += 1;  // answers with its passive keepalive every 10 s
    EXPECT_TRUE(step(1s).empty()) << i;
  }
  for (int i = 1; i <= 30; ++i) {
    if (i % 25 == 0) {  // our persistent keepalives, never answered: not a failure either
      peer.tx_packets += 1;
      peer.tx_bytes += 32;
    }
    EXPECT_TRUE(step(1s).empty()) << i;
  }
  peer.has_session = false;
  for (int i = 0; i < 20; ++i) {
    peer.tx_packets += 1;
    peer.rx_packets += 1;  // answers come back
    EXPECT_TRUE(step(1s).empty());
  }
  connected = false;  // and without a relay nothing moves at all
  peer.tx_packets += 1;
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(step(1s).empty());
}

TEST_F(PolicyFixture, DataUnansweredForTwelveSecondsOnALiveSessionFallsBackToTheRelay) {
  // The peer's NAT rebound (or it roamed) under a live session: our data gets nothing back.
  peer.has_session = true;
  (void)step(0s);
  for (int i = 1; i <= 12; ++i) {  // the first unanswered data goes out at 1 s
    peer.tx_packets += 5;
    peer.tx_bytes += 5 * 100;
    EXPECT_TRUE(step(1s).empty()) << i;  // within the peer's 10 s passive keepalive
  }
  auto d = step(1s);  // 12 s since the first unanswered data
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].transport, kTag);
  EXPECT_EQ(*d[0].endpoint, *map.endpoint_for(peer.public_key));
  EXPECT_EQ(policy.relayed_count(), 1u);
}

TEST_F(PolicyFixture, APeerWithoutEndpointGoesThroughTheRelayOnceConnected) {
  peer.endpoint.reset();
  connected = false;
  EXPECT_TRUE(step(0s).empty());
  connected = true;
  auto d = step(1s);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].transport, kTag);
  apply(d[0]);
  // Relayed with no direct endpoint to try: it stays.
  EXPECT_TRUE(step(60s).empty());
}

TEST_F(PolicyFixture, TheDirectPathIsRetriedAndKeptWhenItAnswers) {
  (void)step(0s);
  peer.tx_packets = 1;
  auto d = step(5s);
  ASSERT_EQ(d.size(), 1u);
  apply(d[0]);
  peer.has_session = true;  // the handshake completed through the relay
  for (int i = 0; i < 29; ++i) {
    peer.tx_packets += 1;
    peer.rx_packets += 1;
    EXPECT_TRUE(step(1s).empty()) << i;
  }
  auto back = step(1s);  // 30 s relayed: try the direct endpoint
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].transport, dataplane::kUdpTransport);
  EXPECT_EQ(*back[0].endpoint, direct);
  apply(back[0]);
  peer.rx_packets += 1;  // an authenticated packet arrived and the endpoint stayed direct
  for (int i = 0; i < 60; ++i) {
    peer.tx_packets += 1;
    EXPECT_TRUE(step(1s).empty()) << i;  // one-way traffic after success moves nothing
  }
  EXPECT_EQ(policy.relayed_count(), 0u);
}

TEST_F(PolicyFixture, AFailedTrialGoesBackToTheRelay) {
  (void)step(0s);
  peer.tx_packets = 1;
  auto d = step(5s);
  apply(d.at(0));
  peer.has_session = true;
  auto back = step(30s);
  ASSERT_EQ(back.size(), 1u);
  apply(back[0]);
  peer.tx_packets += 3;  // sent direct, nothing came back
  EXPECT_TRUE(step(4s).empty());
  auto again = step(1s);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].transport, kTag);
  apply(again[0]);
  EXPECT_TRUE(step(29s).empty());  // a full interval before the next trial
  EXPECT_EQ(step(1s).size(), 1u);
}

TEST_F(PolicyFixture, ATrialEndedByRoamingBackToTheRelayWaitsAFullInterval) {
  (void)step(0s);
  peer.tx_packets = 1;
  apply(step(5s).at(0));
  apply(step(30s).at(0));  // trial
  // The peer answered through the relay: the core roamed us back (no delta from the policy).
  peer.endpoint_transport = kTag;
  peer.endpoint.reset();
  peer.rx_packets += 1;
  EXPECT_TRUE(step(1s).empty());  // the roaming is seen here: a new interval starts
  EXPECT_TRUE(step(29s).empty());
  EXPECT_EQ(step(1s).size(), 1u);
}

TEST_F(PolicyFixture, ALostRelayConnectionSendsRelayedPeersBackToTheirDirectEndpoint) {
  (void)step(0s);
  peer.tx_packets = 1;
  apply(step(5s).at(0));
  connected = false;
  auto d = step(1s);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].transport, dataplane::kUdpTransport);
  EXPECT_EQ(*d[0].endpoint, direct);
}

// ---- carrier choice: UDP first, TCP/TLS when UDP is silent (fake clock) -------------------------

TEST(RelayCarrierChoice, UdpFirstTcpAfterSilenceUdpAgainAfterTheRetryInterval) {
  using C = RelayCarrierChoice::Carrier;
  RelayCarrierChoice c({.udp_timeout = 3s, .udp_retry = 60s});
  const MonoTime t0{std::chrono::hours(1)};
  EXPECT_EQ(c.next(t0), C::kUdp);
  c.udp_result(false, t0 + 3s);  // nothing came back within the timeout
  EXPECT_EQ(c.next(t0 + 3s), C::kTcp);
  EXPECT_EQ(c.next(t0 + 62s), C::kTcp);
  EXPECT_EQ(c.next(t0 + 63s), C::kUdp) << "UDP is tried again a retry interval later";
  c.udp_result(true, t0 + 64s);  // answered: UDP works again
  EXPECT_EQ(c.next(t0 + 65s), C::kUdp);
  EXPECT_EQ(c.udp_timeout(), 3s);
}

TEST(RelayCarrierChoice, AnAnsweredAttemptKeepsUdpAndUdpOffMeansTcp) {
  using C = RelayCarrierChoice::Carrier;
  RelayCarrierChoice c({});
  const MonoTime t0{std::chrono::hours(1)};
  c.udp_result(true, t0);  // e.g. refused, or a session that later timed out
  EXPECT_EQ(c.next(t0 + 1s), C::kUdp);
  RelayCarrierChoice off({.udp = false});
  EXPECT_EQ(off.next(t0), C::kTcp);
}

// A relay over UDP on loopback with the coordinator's stateless challenge: hello ─► challenge,
// udp-auth ─► auth ok (cookie and proof checked); recv frames on request; pings answered only
// for the source it bound. Polled (tests only).
class FakeUdpRelay {
 public:
  explicit FakeUdpRelay(std::uint16_t port = 0) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~FakeUdpRelay() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  // Serves for up to `limit`; returns once `until` holds (checked after every datagram).
  bool serve(const std::function<bool()>& until, std::chrono::milliseconds limit = 5000ms) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (until())
        return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0)
        continue;
      std::vector<std::uint8_t> b(relay::kMaxFrameSize);
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n =
          ::recvfrom(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0)
        continue;
      b.resize(static_cast<std::size_t>(n));
      auto f = relay::decode_frame(b);
      if (!f)
        continue;
      const std::vector<std::uint8_t> src(reinterpret_cast<std::uint8_t*>(&from),
                                          reinterpret_cast<std::uint8_t*>(&from) + len);
      const MonoTime now{std::chrono::seconds(10)};
      if (relay::is_udp_hello(*f)) {
        ++hellos;
        reply(from, challenger_.challenge(src, now));
      } else if (f->type == relay::FrameType::kUdpAuth) {
        if (auto k = challenger_.verify(src, *f, now); k.ok()) {
          node = *k;
          bound_ = from;
          reply(from, relay::encode_simple(relay::FrameType::kAuthOk));
        }
      } else if (bound_ && from.sin_port == bound_->sin_port) {
        if (f->type == relay::FrameType::kPing)
          reply(from, relay::encode_ping(relay::FrameType::kPong, f->nonce));
        else if (f->type == relay::FrameType::kSend)
          sent.emplace_back(f->datagram.begin(), f->datagram.end());
      }
    }
    return until();
  }
  void recv_to_node(const crypto::PublicKey& from, const std::vector<std::uint8_t>& d) {
    Frame f;
    f.type = relay::FrameType::kRecv;
    f.key = from;
    f.datagram = ConstBytes(d);
    reply(*bound_, *relay::encode_frame(f));
  }
  using Frame = relay::Frame;
  std::optional<crypto::PublicKey> node;
  int hellos = 0;
  std::vector<std::vector<std::uint8_t>> sent;

 private:
  void reply(const sockaddr_in& to, const std::vector<std::uint8_t>& b) {
    (void)::sendto(fd_, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }
  int fd_ = -1;
  std::uint16_t port_ = 0;
  relay::StatelessChallenger challenger_{crypto::SystemRandom::instance()};
  std::optional<sockaddr_in> bound_;
};

TEST(RelayTransport, OverUdpAuthenticatesCarriesDatagramsAndReHellosAfterARelayRestart) {
  const crypto::PrivateKey node_key =
      crypto::generate_private_key(crypto::SystemRandom::instance());
  auto relay = std::make_unique<FakeUdpRelay>();
  const std::uint16_t port = relay->port();
  RelaySettings s{.host = "127.0.0.1", .port = port};
  RelayTransport t(
      s, [&] { return std::optional<crypto::PrivateKey>(node_key); }, 200ms);
  ASSERT_TRUE(relay->serve([&] { return t.connected(); }));
  EXPECT_EQ(relay->node, crypto::derive_public_key(node_key));
  EXPECT_EQ(t.status().carrier, "UDP");

  // Datagrams both ways.
  const auto peer = key_of(0x11);
  std::vector<std::uint8_t> out(148, 0x5a);
  platform::OutDatagram d{.data = ConstBytes(out.data(), out.size()),
                          .path = net::Path{.remote = *t.endpoint_for(peer), .transport = 1}};
  std::vector<platform::OutDatagram> batch{d};
  EXPECT_EQ(t.send(batch).count, 1u);
  ASSERT_TRUE(relay->serve([&] { return !relay->sent.empty(); }));
  EXPECT_EQ(relay->sent[0], out);
  relay->recv_to_node(peer, std::vector<std::uint8_t>(92, 0x33));
  std::array<std::uint8_t, 2048> buf{};
  std::array<Bytes, 1> bufs{Bytes(buf.data(), buf.size())};
  std::array<std::size_t, 1> sizes{};
  std::array<net::Path, 1> paths{};
  ASSERT_TRUE(wait_for([&] { return t.receive(0, bufs, sizes, paths).count == 1; }));
  EXPECT_EQ(sizes[0], 92u);
  EXPECT_EQ(t.key_for(paths[0].remote), peer);

  // The relay restarts (a new secret, no bindings): the node's pings go unanswered, it says
  // hello again and is connected once more.
  relay.reset();
  relay = std::make_unique<FakeUdpRelay>(port);
  ASSERT_TRUE(relay->serve([&] { return relay->node.has_value() && t.connected(); }, 8000ms));
  EXPECT_GE(relay->hellos, 1);
  EXPECT_GE(t.status().connects, 2u);
  t.stop();
}

TEST(RelayTransport, UdpSilentFallsBackToTcpTls) {
  FakeRelay fake;  // TCP/TLS only: nothing answers on UDP
  const crypto::PrivateKey node_key =
      crypto::generate_private_key(crypto::SystemRandom::instance());
  RelaySettings s{.host = "127.0.0.1", .port = fake.port(), .pin = fake.pin()};
  const auto t0 = std::chrono::steady_clock::now();
  RelayTransport t(s, [&] { return std::optional<crypto::PrivateKey>(node_key); },
                   RelayTransport::kPingInterval, {.udp_timeout = 500ms});
  auto who = fake.accept_and_auth();
  ASSERT_TRUE(who);
  ASSERT_TRUE(wait_for([&] { return t.connected(); }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms) << "UDP was not tried first";
  EXPECT_EQ(t.status().carrier, "TCP/TLS");
  t.stop();
}

}  // namespace
}  // namespace warren::runtime
