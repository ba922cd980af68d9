// Stateless Reset (RFC 9000 §10.3): a server restarted with the same reset secret ends the
// connections of its previous life at once; nothing else can end them; resets never loop,
// never amplify, and are rate limited.

#include <gtest/gtest.h>

#include <array>
#include <optional>

#include "quic/server_endpoint.h"
#include "quic_harness.h"

namespace warren::quic::test {
namespace {

using namespace std::chrono_literals;

Secret<32> key(std::uint8_t seed) {
  std::array<std::uint8_t, 32> b{};
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<std::uint8_t>(seed + i);
  return Secret<32>(std::span<const std::uint8_t, 32>(b));
}

ServerOptions with_secret(std::optional<Secret<32>> secret) {
  ServerOptions o;
  o.identity = test_identity();
  o.reset_secret = std::move(secret);
  return o;
}

std::unique_ptr<ServerEndpoint> endpoint(ServerOptions o) {
  auto r = ServerEndpoint::create(std::move(o));
  EXPECT_TRUE(r.ok());
  return r.ok() ? std::move(*r) : nullptr;
}

// A short-header packet of `n` bytes for the connection ID 0x11 0x11 ... (16 bytes).
std::vector<std::uint8_t> short_packet(std::size_t n) {
  std::vector<std::uint8_t> b(n, 0x5a);
  b[0] = 0x40;
  for (std::size_t i = 1; i < 17 && i < n; ++i)
    b[i] = 0x11;
  return b;
}

ServerReceive feed(ServerEndpoint& s, ConstBytes bytes, MonoTime now,
                   std::vector<std::uint8_t>* reply = nullptr) {
  std::uint8_t buf[kMaxUdpPayload];
  const ServerReceive r =
      s.receive(bytes, ep("192.0.2.10:40000"), ep("198.51.100.1:443"), now, buf);
  if (reply != nullptr && r.kind == ServerReceive::Kind::kReply)
    reply->assign(buf, buf + r.reply_bytes);
  return r;
}

// A client connected to a server whose endpoint has `before`; the endpoint is then replaced
// (the server restarted) by one with `after`, and the client sends its next packet.
struct Restart {
  explicit Restart(std::optional<Secret<32>> before) : net(with_secret(std::move(before))) {
    client = net.connect();
    EXPECT_TRUE(net.run_until([&] { return net.all_established(); }));
  }
  void restart(ServerOptions o) {
    net.server = endpoint(std::move(o));
    const std::vector<std::uint8_t> payload(40, 7);
    EXPECT_EQ(net.send_datagram(client, payload, Dir::kToServer), DatagramStatus::kSent);
    net.pump();  // no clock advance: whatever happens, happens without waiting
  }
  Net net;
  Connection* client = nullptr;
};

TEST(QuicStatelessReset, RestartedServerWithTheSameSecretClosesTheClientAtOnce) {
  Restart t(key(1));
  ASSERT_TRUE(t.client->established());
  const MonoTime before = t.net.now;
  t.restart(with_secret(key(1)));
  EXPECT_EQ(t.net.server->stats().stateless_resets, 1u);
  EXPECT_EQ(t.net.server->size(), 0u);
  EXPECT_TRUE(t.client->closed());
  EXPECT_EQ(t.client->reason(), "stateless reset from the server");
  EXPECT_EQ(t.net.now, before);  // not the idle timeout
  EXPECT_EQ(t.client->deadline(), kNoDeadline);
}

TEST(QuicStatelessReset, ResetUnderAnotherSecretIsIgnored) {
  Restart t(key(1));
  t.restart(with_secret(key(2)));
  EXPECT_EQ(t.net.server->stats().stateless_resets, 1u);  // sent, but with a wrong token
  EXPECT_FALSE(t.client->closed()) << t.client->reason();
  EXPECT_TRUE(t.client->established());
}

TEST(QuicStatelessReset, ClientOfAServerWithoutSecretIgnoresAnyReset) {
  // The old endpoint had no secret, so its tokens were random: no later secret matches.
  Restart t(std::nullopt);
  t.restart(with_secret(key(1)));
  EXPECT_EQ(t.net.server->stats().stateless_resets, 1u);
  EXPECT_FALSE(t.client->closed()) << t.client->reason();
}

TEST(QuicStatelessReset, NoSecretNoReset) {
  Restart t(key(1));
  t.restart(with_secret(std::nullopt));
  EXPECT_EQ(t.net.server->stats().stateless_resets, 0u);
  EXPECT_EQ(t.net.last.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(t.net.last.drop, DropReason::kUnknownConnection);
  EXPECT_FALSE(t.client->closed());
}

TEST(QuicStatelessReset, LiveConnectionsAreNotReset) {
  // With a secret set, packets of a connection the endpoint knows still reach it.
  Restart t(key(1));
  const std::vector<std::uint8_t> payload(40, 7);
  ASSERT_EQ(t.net.send_datagram(t.client, payload, Dir::kToServer), DatagramStatus::kSent);
  t.net.pump();
  EXPECT_EQ(t.net.server->stats().stateless_resets, 0u);
  EXPECT_FALSE(t.client->closed());
  ASSERT_EQ(t.net.server_rx.size(), 1u);
  EXPECT_EQ(t.net.server_rx[0].bytes, payload);
}

TEST(QuicStatelessReset, ShortPacketsGetNoReset) {
  auto s = endpoint(with_secret(key(1)));
  const MonoTime now(1000s);
  for (std::size_t n = 18; n < kMinResetTrigger; ++n) {
    const ServerReceive r = feed(*s, short_packet(n), now);
    EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop) << n;
    EXPECT_EQ(r.drop, DropReason::kUnknownConnection) << n;
  }
  EXPECT_EQ(s->stats().stateless_resets, 0u);
  // The first size that gets one.
  std::vector<std::uint8_t> reply;
  EXPECT_EQ(feed(*s, short_packet(kMinResetTrigger), now, &reply).kind,
            ServerReceive::Kind::kReply);
  EXPECT_EQ(reply.size(), kMinResetTrigger - 1);
}

TEST(QuicStatelessReset, ResetIsOneByteShorterThanItsTriggerAndLooksLikeAShortHeader) {
  auto s = endpoint(with_secret(key(1)));
  const MonoTime now(1000s);
  for (std::size_t n :
       {kMinResetTrigger, std::size_t{43}, std::size_t{100}, std::size_t{1200}, kMaxUdpPayload}) {
    std::vector<std::uint8_t> reply;
    const ServerReceive r = feed(*s, short_packet(n), now, &reply);
    ASSERT_EQ(r.kind, ServerReceive::Kind::kReply) << n;
    EXPECT_EQ(reply.size(), n - 1);
    EXPECT_EQ(reply[0] & 0xc0, 0x40) << n;  // short header, fixed bit
  }
  // A trigger larger than any packet of ours (a forged UDP payload) gets a reset of at most
  // kMaxUdpPayload bytes, however large the caller's buffer.
  std::vector<std::uint8_t> big(8000);
  const ServerReceive r =
      s->receive(short_packet(4000), ep("192.0.2.10:40000"), ep("198.51.100.1:443"), now, big);
  ASSERT_EQ(r.kind, ServerReceive::Kind::kReply);
  EXPECT_EQ(r.reply_bytes, kMaxUdpPayload);
}

TEST(QuicStatelessReset, TokenDependsOnlyOnSecretAndConnectionId) {
  const MonoTime now(1000s);
  auto token_of = [&](ServerEndpoint& s, const std::vector<std::uint8_t>& p) {
    std::vector<std::uint8_t> reply;
    EXPECT_EQ(feed(s, p, now, &reply).kind, ServerReceive::Kind::kReply);
    return std::vector<std::uint8_t>(reply.end() - 16, reply.end());
  };
  auto a = endpoint(with_secret(key(1)));
  auto b = endpoint(with_secret(key(1)));
  auto other = endpoint(with_secret(key(2)));
  const auto p = short_packet(100);
  auto p2 = short_packet(60);  // same connection ID, other size and contents
  p2[40] ^= 0xff;
  EXPECT_EQ(token_of(*a, p), token_of(*b, p2));
  EXPECT_NE(token_of(*a, p), token_of(*other, p));
  auto q = p;
  q[5] ^= 0x01;  // another connection ID
  EXPECT_NE(token_of(*a, p), token_of(*a, q));
}

TEST(QuicStatelessReset, ResetsCannotLoopBetweenTwoServers) {
  // Two endpoints that both have no state for each other's connection IDs answer each
  // other's resets: each answer is a byte shorter, so the exchange dies out.
  auto a = endpoint(with_secret(key(1)));
  auto b = endpoint(with_secret(key(2)));
  MonoTime now(1000s);
  std::vector<std::uint8_t> packet = short_packet(60);
  int replies = 0;
  for (int i = 0; i < 100; ++i) {
    ServerEndpoint& s = i % 2 == 0 ? *a : *b;
    std::vector<std::uint8_t> reply;
    if (feed(s, packet, now, &reply).kind != ServerReceive::Kind::kReply)
      break;
    EXPECT_LT(reply.size(), packet.size());
    packet = reply;
    ++replies;
  }
  EXPECT_EQ(replies, 60 - static_cast<int>(kMinResetTrigger) + 1);
}

TEST(QuicStatelessReset, RateLimitWithholdsAndCounts) {
  ServerOptions o = with_secret(key(1));
  o.max_resets_per_second = 3;
  auto s = endpoint(std::move(o));
  MonoTime now(1000s);
  int sent = 0;
  for (int i = 0; i < 5; ++i)
    sent += feed(*s, short_packet(100), now).kind == ServerReceive::Kind::kReply;
  EXPECT_EQ(sent, 3);
  EXPECT_EQ(s->stats().stateless_resets, 3u);
  EXPECT_EQ(s->stats().stateless_resets_withheld, 2u);
  EXPECT_EQ(s->stats().drops(DropReason::kUnknownConnection), 2u);
  // Still within the same second: withheld.
  now += 999ms;
  EXPECT_EQ(feed(*s, short_packet(100), now).kind, ServerReceive::Kind::kDrop);
  // A second later the budget is back.
  now += 1ms;
  EXPECT_EQ(feed(*s, short_packet(100), now).kind, ServerReceive::Kind::kReply);
  EXPECT_EQ(s->stats().stateless_resets, 4u);
  EXPECT_EQ(s->stats().stateless_resets_withheld, 3u);
}

TEST(QuicStatelessReset, ZeroRateSendsNone) {
  ServerOptions o = with_secret(key(1));
  o.max_resets_per_second = 0;
  auto s = endpoint(std::move(o));
  EXPECT_EQ(feed(*s, short_packet(100), MonoTime(1000s)).kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(s->stats().stateless_resets, 0u);
  EXPECT_EQ(s->stats().stateless_resets_withheld, 1u);
}

}  // namespace
}  // namespace warren::quic::test
