// Attacks on the server's demultiplexer: garbage, truncated and random packets, Initials
// without or with forged tokens, spoofed sources. None may create state.

#include "quic/server_endpoint.h"

#include <gtest/gtest.h>

#include <random>

#include "quic_harness.h"

namespace warren::quic::test {
namespace {

using namespace std::chrono_literals;

ServerReceive feed(Net& net, ConstBytes bytes, const char* from = "203.0.113.5:1234") {
  std::uint8_t reply[kMaxUdpPayload];
  return net.server->receive(bytes, ep(from), net.server_addr, net.now, reply);
}

// The client's first packet (its Initial, padded to 1200 bytes).
std::vector<std::uint8_t> first_initial(Net& net, Connection* c) {
  std::uint8_t buf[kMaxUdpPayload];
  const Packet p = c->write(net.now, buf);
  EXPECT_GE(p.bytes, 1200u);
  return {buf, buf + p.bytes};
}

TEST(QuicServerEndpoint, GarbageCreatesNoConnectionAndIsCounted) {
  Net net;
  const std::vector<std::uint8_t> empty;
  EXPECT_EQ(feed(net, empty).kind, ServerReceive::Kind::kDrop);
  const std::vector<std::uint8_t> zeros(1300, 0);
  EXPECT_EQ(feed(net, zeros).kind, ServerReceive::Kind::kDrop);
  const std::vector<std::uint8_t> one = {0xc0};
  EXPECT_EQ(feed(net, one).kind, ServerReceive::Kind::kDrop);
  std::mt19937 rng(7);
  int drops = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> b(rng() % 1500);
    for (auto& x : b)
      x = static_cast<std::uint8_t>(rng());
    // Force a v1 long header on half of them so they get past the first parse.
    if (i % 2 == 0 && b.size() > 8) {
      b[0] = 0xc0;
      b[1] = b[2] = b[3] = 0;
      b[4] = 1;
    }
    const ServerReceive r = feed(net, b);
    EXPECT_NE(r.kind, ServerReceive::Kind::kConnection);
    drops += r.kind == ServerReceive::Kind::kDrop;
  }
  EXPECT_EQ(net.server->size(), 0u);
  EXPECT_EQ(net.server->stats().accepted, 0u);
  const auto& st = net.server->stats();
  EXPECT_GT(st.drops(DropReason::kMalformed), 0u);
  EXPECT_GT(st.drops(DropReason::kUnknownConnection), 0u);
  std::uint64_t total = 0;
  for (auto d : st.dropped)
    total += d;
  EXPECT_EQ(total, 3u + static_cast<std::uint64_t>(drops));
}

TEST(QuicServerEndpoint, TruncatedInitialCreatesNoState) {
  Net net;
  Connection* c = net.connect();
  const auto initial = first_initial(net, c);
  for (std::size_t n :
       {std::size_t{1}, std::size_t{7}, std::size_t{30}, std::size_t{200}, std::size_t{1199}}) {
    const ServerReceive r = feed(net, ConstBytes(initial.data(), n));
    EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop) << n;
  }
  EXPECT_EQ(net.server->size(), 0u);
  EXPECT_EQ(net.server->stats().retries, 0u);
}

TEST(QuicServerEndpoint, ShortHeaderForUnknownConnectionIsDropped) {
  Net net;
  std::vector<std::uint8_t> b(60, 0x55);
  b[0] = 0x40;  // short header, fixed bit
  const ServerReceive r = feed(net, b);
  EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(r.drop, DropReason::kUnknownConnection);
  EXPECT_EQ(net.server->size(), 0u);
}

TEST(QuicServerEndpoint, InitialWithoutTokenGetsRetryAndNoState) {
  Net net;
  Connection* c = net.connect();
  const auto initial = first_initial(net, c);
  for (int i = 0; i < 3; ++i) {  // replays get a Retry each, never state
    const ServerReceive r = feed(net, initial, "192.0.2.10:40000");
    EXPECT_EQ(r.kind, ServerReceive::Kind::kReply);
    EXPECT_GT(r.reply_bytes, 0u);
    EXPECT_EQ(net.server->size(), 0u);
  }
  EXPECT_EQ(net.server->stats().retries, 3u);
}

TEST(QuicServerEndpoint, OnlyTheRetriedInitialMakesState) {
  Net net;
  Connection* c = net.connect();
  std::vector<std::uint8_t> with_token;
  // Capture the client's Initial that carries the token; deliver nothing else after it.
  net.filter = [&](Dir dir, const Datagram& d) {
    if (dir == Dir::kToServer && net.server->stats().retries == 1 && with_token.empty()) {
      with_token = d.bytes;
      return false;
    }
    return true;
  };
  net.pump();
  ASSERT_FALSE(with_token.empty());
  EXPECT_EQ(net.server->size(), 0u);

  // The token is bound to the client's address: from anywhere else it is refused.
  ServerReceive r = feed(net, with_token, "203.0.113.9:40000");
  EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(r.drop, DropReason::kBadToken);
  EXPECT_EQ(net.server->size(), 0u);

  // A forged token (one byte flipped) is refused.
  std::vector<std::uint8_t> forged = with_token;
  // The token sits after the header's first 1+4+1+dcid+1+scid+varint bytes; flipping any byte
  // in the middle of the packet breaks either the token or the packet protection.
  forged[60] ^= 0x01;
  r = feed(net, forged, "192.0.2.10:40000");
  EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(net.server->size(), 0u);

  // An expired token is refused.
  const MonoTime saved = net.now;
  net.now += 11s;
  r = feed(net, with_token, "192.0.2.10:40000");
  EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(r.drop, DropReason::kBadToken);
  net.now = saved;

  // From the right address and in time it makes the connection.
  r = feed(net, with_token, "192.0.2.10:40000");
  EXPECT_EQ(r.kind, ServerReceive::Kind::kConnection);
  EXPECT_TRUE(r.created);
  EXPECT_EQ(net.server->size(), 1u);
  net.filter = nullptr;
  ASSERT_TRUE(net.run_until([&] { return c->established(); }));
}

TEST(QuicServerEndpoint, UnsupportedVersionGetsVersionNegotiationOnlyWhenLarge) {
  Net net;
  std::vector<std::uint8_t> b(1200, 0);
  b[0] = 0xc0;
  b[1] = 0x1a;  // version 0x1a2a3a4a: not ours
  b[2] = 0x2a;
  b[3] = 0x3a;
  b[4] = 0x4a;
  b[5] = 8;   // DCID length
  b[14] = 8;  // SCID length
  ServerReceive r = feed(net, b);
  EXPECT_EQ(r.kind, ServerReceive::Kind::kReply);
  EXPECT_EQ(net.server->stats().version_negotiations, 1u);
  b.resize(100);
  r = feed(net, b);
  EXPECT_EQ(r.kind, ServerReceive::Kind::kDrop);
  EXPECT_EQ(net.server->stats().version_negotiations, 1u);
  EXPECT_EQ(net.server->size(), 0u);
}

TEST(QuicServerEndpoint, RandomPacketsToAnEstablishedConnectionDoNotKillIt) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  Connection* s = net.server->connections()[0];
  // Short-header packets with the server's own CID but random contents: they fail
  // decryption and are ignored.
  std::uint8_t buf[kMaxUdpPayload];
  auto w = c->write_datagram(std::vector<std::uint8_t>(10, 1), net.now, buf);
  ASSERT_TRUE(w.ok());
  ASSERT_GT(w->packet.bytes, 0u);
  std::vector<std::uint8_t> real(buf, buf + w->packet.bytes);
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::vector<std::uint8_t> fake = real;
    for (std::size_t k = 17; k < fake.size(); ++k)
      fake[k] = static_cast<std::uint8_t>(rng());
    const ServerReceive r = feed(net, fake, "192.0.2.10:40000");
    EXPECT_EQ(r.kind, ServerReceive::Kind::kConnection);
  }
  EXPECT_TRUE(s->established()) << s->reason();
  EXPECT_EQ(net.server->size(), 1u);
  EXPECT_TRUE(net.server_rx.empty());
}

TEST(QuicServerEndpoint, CreateNeedsAnIdentity) {
  ServerOptions o;
  auto r = ServerEndpoint::create(o);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
}

}  // namespace
}  // namespace warren::quic::test
