// Two (or three) Devices in one process with a fake clock and a lossy in-memory network:
// the whitepaper's §6 timer behaviour, seen from the outside.

#include <gtest/gtest.h>

#include <cstring>

#include "crypto/aead.h"
#include "support/wg_harness.h"

namespace warren::wg {
namespace {

using namespace std::chrono_literals;
using test::Network;
using test::Node;

class TwoPeers : public ::testing::Test {
 protected:
  TwoPeers()
      : a("a", 101, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1"),
        b("b", 202, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2") {
    net.nodes = {&a, &b};
    Network::connect(a, b);
    Network::connect(b, a);
  }

  std::vector<std::uint8_t> a_to_b(std::size_t n = 100) {
    return test::ipv4_packet("10.0.0.1", "10.0.0.2", n);
  }
  std::vector<std::uint8_t> b_to_a(std::size_t n = 100) {
    return test::ipv4_packet("10.0.0.2", "10.0.0.1", n);
  }

  // Counts datagrams of a given message type that `from` sends while `fn` runs.
  int count_sent(Node& from, std::uint32_t type, const std::function<void()>& fn) {
    int n = 0;
    auto old = net.lose;
    net.lose = [&](const Node& src, const Node& dst, const test::Datagram& d) {
      if (&src == &from && load_le32(d.bytes.data()) == type)
        ++n;
      return old ? old(src, dst, d) : false;
    };
    fn();
    net.lose = old;
    return n;
  }

  void establish() {
    ASSERT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
    net.run();
    ASSERT_EQ(b.received.size(), 1u);
    b.received.clear();
  }

  Node a, b;
  Network net;
};

TEST_F(TwoPeers, HandshakeThenDataBothWays) {
  EXPECT_EQ(net.send_ip(a, a_to_b(100)).verdict, Verdict::kQueued);
  net.run();
  ASSERT_EQ(b.received.size(), 1u);
  EXPECT_EQ(b.received[0], a_to_b(100));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(net.send_ip(b, b_to_a(i)).verdict, Verdict::kToNetwork);
    EXPECT_EQ(net.send_ip(a, a_to_b(1000 + i)).verdict, Verdict::kToNetwork);
  }
  net.run();
  ASSERT_EQ(a.received.size(), 50u);
  ASSERT_EQ(b.received.size(), 51u);
  EXPECT_EQ(a.received[7], b_to_a(7));
  EXPECT_EQ(b.received[50], a_to_b(1049));
  auto sa = a.device.snapshot();
  ASSERT_EQ(sa.peers.size(), 1u);
  EXPECT_TRUE(sa.peers[0].has_session);
  EXPECT_GT(sa.peers[0].last_handshake_sec, 0);
  EXPECT_EQ(sa.peers[0].endpoint, b.addr);
}

TEST_F(TwoPeers, PaddingToSixteenCappedAtMtu) {
  establish();
  for (std::size_t payload : {0u, 1u, 15u, 16u, 100u}) {
    std::vector<std::uint8_t> pkt = a_to_b(payload);
    std::vector<std::uint8_t> buf(kSendHeadroom + pkt.size() + kSendTailroom);
    std::memcpy(buf.data() + kSendHeadroom, pkt.data(), pkt.size());
    auto r = a.device.encapsulate(buf, pkt.size(), net.now, a.sink);
    ASSERT_EQ(r.verdict, Verdict::kToNetwork);
    const std::size_t padded = (pkt.size() + 15) / 16 * 16;
    EXPECT_EQ(r.length, 32 + padded) << payload;
  }
  a.device.set_mtu(1420);
  auto big = a_to_b(1420 - 20 - 3);  // 1417 bytes: padding stops at the MTU (1420), not 1424
  std::vector<std::uint8_t> buf(kSendHeadroom + big.size() + kSendTailroom);
  std::memcpy(buf.data() + kSendHeadroom, big.data(), big.size());
  auto r = a.device.encapsulate(buf, big.size(), net.now, a.sink);
  ASSERT_EQ(r.verdict, Verdict::kToNetwork);
  EXPECT_EQ(r.length, 32u + 1420u);
}

TEST_F(TwoPeers, PassiveKeepaliveAfterTenSeconds) {
  establish();
  a.sink.out().clear();
  // b received data and sends nothing back: after KEEPALIVE_TIMEOUT it confirms with a keepalive.
  int keepalives = 0;
  net.lose = [&](const Node& src, const Node&, const test::Datagram& d) {
    if (&src == &b && d.bytes.size() == kKeepaliveSize)
      ++keepalives;
    return false;
  };
  net.elapse(9500ms);
  EXPECT_EQ(keepalives, 0);
  net.elapse(1000ms);
  EXPECT_EQ(keepalives, 1);
  net.elapse(30s);
  EXPECT_EQ(keepalives, 1) << "no keepalive ping-pong: a keepalive is not data";
}

TEST_F(TwoPeers, PersistentKeepalive) {
  establish();
  ConfigDelta d;
  PeerDelta p;
  p.public_key = b.pub;
  p.persistent_keepalive = 2;
  d.peers.push_back(p);
  int n = count_sent(a, kMessageTransport, [&] {
    ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
    net.run();
    net.elapse(9s);
  });
  // One at once (switched on), then one every 2 s of idleness.
  EXPECT_GE(n, 5);
  EXPECT_LE(n, 6);
}

TEST_F(TwoPeers, InitiatorRekeysAfterRekeyAfterTime) {
  establish();
  const auto first = a.device.snapshot().peers[0].last_handshake_sec;
  int inits = count_sent(a, kMessageInitiation, [&] {
    for (int s = 0; s < 125; ++s) {
      net.elapse(1s, 1s);
      ASSERT_NE(net.send_ip(a, a_to_b()).verdict, Verdict::kDrop);
      net.send_ip(b, b_to_a());
      net.run();
    }
  });
  EXPECT_EQ(inits, 1) << "exactly one rekey after 120 s of an initiator's session";
  EXPECT_GE(a.device.snapshot().peers[0].last_handshake_sec, first + 120);
  EXPECT_EQ(b.received.size(), 125u) << "no packet lost across the rekey";
  EXPECT_EQ(a.received.size(), 125u);
}

TEST_F(TwoPeers, SessionRejectedAfterRejectAfterTime) {
  establish();
  net.lose = [](const Node&, const Node&, const test::Datagram&) { return true; };  // cut
  net.elapse(179s, 1s);
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kToNetwork);
  net.elapse(2s, 1s);
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued)
      << "a keypair older than REJECT_AFTER_TIME is never used";
  net.lose = nullptr;
  net.elapse(6s);
  EXPECT_GE(b.received.size(), 1u) << "staged packets go out once a new session exists";
}

TEST_F(TwoPeers, RetriesThroughLossAndGivesUp) {
  int dropped = 0;
  net.lose = [&](const Node& src, const Node&, const test::Datagram& d) {
    if (&src == &a && load_le32(d.bytes.data()) == kMessageInitiation && dropped < 3) {
      ++dropped;
      return true;
    }
    return false;
  };
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  EXPECT_TRUE(b.received.empty());
  net.elapse(25s);
  EXPECT_EQ(dropped, 3);
  ASSERT_EQ(b.received.size(), 1u) << "the staged packet survives three lost initiations";

  // Total loss: 1 initiation + 18 retransmissions + 1, then give up after ~90 s.
  Node c("c", 303, *net::Endpoint::parse("192.0.2.3:51820"), "10.0.0.3");
  Network::connect(a, c);
  net.nodes.push_back(&c);
  int to_c = 0;
  net.lose = [&](const Node& src, const Node& dst, const test::Datagram&) {
    if (&src == &a && &dst == &c) {
      ++to_c;
      return true;
    }
    return false;
  };
  EXPECT_EQ(net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.3", 10)).verdict,
            Verdict::kQueued);
  net.run();
  net.elapse(150s, 250ms);
  EXPECT_EQ(to_c, kMaxTimerHandshakes + 2);
}

TEST_F(TwoPeers, BothInitiateAtOnce) {
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  EXPECT_EQ(net.send_ip(b, b_to_a()).verdict, Verdict::kQueued);
  net.run();
  net.elapse(20s);
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_EQ(a.received.size(), 1u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kToNetwork);
    EXPECT_EQ(net.send_ip(b, b_to_a()).verdict, Verdict::kToNetwork);
  }
  net.run();
  EXPECT_EQ(b.received.size(), 11u);
  EXPECT_EQ(a.received.size(), 11u);
}

TEST_F(TwoPeers, AnEndpointMovedDuringAHandshakeGetsTheInitiationAtOnce) {
  // b first at an address where nobody answers (a mesh candidate that does not work).
  wg::ConfigDelta d;
  wg::PeerDelta p;
  p.public_key = b.pub;
  p.update_only = true;
  p.endpoint = *net::Endpoint::parse("192.0.2.99:51820");
  d.peers.push_back(p);
  ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  net.elapse(1s);
  EXPECT_TRUE(b.received.empty());
  // Moved to b's real address 1 s into the handshake: the initiation follows at once, not at
  // the 5 s retransmission.
  d.peers[0].endpoint = b.addr;
  int initiations = count_sent(a, kMessageInitiation, [&] {
    ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
    net.run();
  });
  EXPECT_EQ(initiations, 1);
  EXPECT_EQ(b.received.size(), 1u) << "the staged packet went out on the new session";
  // The same endpoint again, or a move with a session, starts nothing.
  initiations = count_sent(a, kMessageInitiation, [&] {
    ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
    net.run();
  });
  EXPECT_EQ(initiations, 0);
}

// The engine's owner asks for a handshake now, with a session in place (a client that moved
// its server peer to another carrier proves the path; one whose QUIC connection a restarted
// server reset renews the session the server lost): one initiation at once, and it completes.
TEST_F(TwoPeers, AHandshakeAskedForNowIsSentAtOnceEvenWithASession) {
  establish();
  const std::int64_t before = a.device.snapshot().peers[0].last_handshake_sec;
  net.elapse(2s);  // a fresh handshake is visible in last_handshake_sec
  wg::ConfigDelta d;
  wg::PeerDelta p;
  p.public_key = b.pub;
  p.update_only = true;
  p.initiate_handshake = true;
  d.peers.push_back(p);
  int initiations = count_sent(a, kMessageInitiation, [&] {
    ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
    net.run();
  });
  EXPECT_EQ(initiations, 1);
  EXPECT_GT(a.device.snapshot().peers[0].last_handshake_sec, before);
  // Without the flag, the same delta starts nothing.
  d.peers[0].initiate_handshake = false;
  initiations = count_sent(a, kMessageInitiation, [&] {
    ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
    net.run();
  });
  EXPECT_EQ(initiations, 0);
}

// Both initiations cross on the wire. Without a tie-break each side answers the other's and
// drops its own pending handshake, so neither answer finds one and both wait for the 5 s
// retransmission. The side with the lower key keeps its own: the data flows at once.
TEST_F(TwoPeers, CrossingInitiationsCompleteWithoutWaiting) {
  Node& low = a.pub < b.pub ? a : b;
  Node& high = &low == &a ? b : a;
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  EXPECT_EQ(net.send_ip(b, b_to_a()).verdict, Verdict::kQueued);
  net.run();  // no time passes
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_EQ(a.received.size(), 1u);
  EXPECT_EQ(low.device.drop_count(Drop::kSimultaneousInitiation), 1u);
  EXPECT_EQ(high.device.drop_count(Drop::kSimultaneousInitiation), 0u);
  // The copy of the low side's initiation it sent instead of an answer was a replay there.
  EXPECT_EQ(high.device.drop_count(Drop::kReplayedTimestamp), 1u);
}

// The low side's initiation is lost (the peer's NAT had no mapping for it yet); the high
// side's arrives. The low side keeps its own and sends it again to where the peer's came
// from, so the handshake completes at once instead of after the 5 s retransmission.
TEST_F(TwoPeers, LostInitiationOfTheWinningSideIsSentAgain) {
  Node& low = a.pub < b.pub ? a : b;
  Node& high = &low == &a ? b : a;
  bool lost_one = false;
  net.lose = [&](const Node& src, const Node&, const test::Datagram& d) {
    if (&src == &low && !lost_one && load_le32(d.bytes.data()) == kMessageInitiation)
      return lost_one = true;
    return false;
  };
  EXPECT_EQ(net.send_ip(low, &low == &a ? a_to_b() : b_to_a()).verdict, Verdict::kQueued);
  net.run();
  EXPECT_TRUE(lost_one);
  EXPECT_EQ(net.send_ip(high, &high == &a ? a_to_b() : b_to_a()).verdict, Verdict::kQueued);
  net.run();  // no time passes
  EXPECT_EQ(high.received.size(), 1u);
  EXPECT_EQ(low.received.size(), 1u);
  EXPECT_EQ(low.device.drop_count(Drop::kSimultaneousInitiation), 1u);
}

// The handshake's round trip, on both sides: the network holds every datagram for 30 ms, so
// initiation → response is 60 ms for the initiator, and response → first packet on the new
// session is 60 ms for the responder.
TEST_F(TwoPeers, HandshakeRoundTripMeasuredOnBothSides) {
  auto rtt_of = [](const Node& n) { return n.device.snapshot().peers.at(0).handshake_rtt_usec; };
  EXPECT_EQ(rtt_of(a), 0);
  net.delay = 30ms;
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  ASSERT_EQ(b.received.size(), 1u);
  EXPECT_EQ(rtt_of(a), 60'000);
  EXPECT_EQ(rtt_of(b), 60'000);
}

TEST_F(TwoPeers, PeerRestartRecovers) {
  establish();
  // b restarts: same key, no memory of the session.
  Node b2("b", 909, b.addr, "10.0.0.2");
  b2.priv = b.priv;
  b2.pub = b.pub;
  Network::connect(b2, a);
  net.nodes = {&a, &b2};
  for (int i = 0; i < 20; ++i) {
    net.send_ip(a, a_to_b());
    net.run();
    net.elapse(1s, 1s);
  }
  EXPECT_GE(b2.received.size(), 1u) << "a notices silence after 15 s and handshakes again";
  EXPECT_GE(b2.device.drop_count(Drop::kUnknownIndex), 1u);
}

TEST_F(TwoPeers, RoamingFollowsAuthenticatedPacketsOnly) {
  establish();
  const auto new_addr = *net::Endpoint::parse("198.51.100.7:4000");
  // A datagram from a new address that does not authenticate moves nothing.
  std::vector<std::uint8_t> junk(64, 0);
  store_le32(junk.data(), kMessageTransport);
  auto r = b.device.decapsulate({new_addr, std::nullopt, 0}, junk, net.now, b.sink);
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(b.device.snapshot().peers[0].endpoint, a.addr);
  // a moves: its next authenticated packet updates b's view.
  a.addr = new_addr;
  net.send_ip(a, a_to_b());
  net.run();
  EXPECT_EQ(b.device.snapshot().peers[0].endpoint, new_addr);
  net.send_ip(b, b_to_a());
  net.run();
  EXPECT_EQ(a.received.size(), 1u) << "b's reply reaches a at its new address";
}

TEST_F(TwoPeers, SpoofedInnerSourceDropped) {
  establish();
  net.send_ip(b, test::ipv4_packet("10.9.9.9", "10.0.0.1", 50));
  net.run();
  EXPECT_TRUE(a.received.empty());
  EXPECT_EQ(a.device.drop_count(Drop::kAllowedIpsMismatch), 1u);
}

TEST_F(TwoPeers, UnderLoadCookieRoundTrip) {
  b.device.force_under_load(true);
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  EXPECT_TRUE(b.received.empty());
  EXPECT_EQ(b.device.drop_count(Drop::kCookieSent), 1u);
  net.elapse(7s);
  EXPECT_EQ(b.received.size(), 1u) << "the retry carries a valid mac2 and is answered";
}

TEST_F(TwoPeers, ReplayedTransportAndInitiationDropped) {
  std::vector<test::Datagram> seen;
  net.lose = [&](const Node& src, const Node&, const test::Datagram& d) {
    if (&src == &a)
      seen.push_back(d);
    return false;
  };
  establish();
  net.send_ip(a, a_to_b());
  net.run();
  ASSERT_EQ(b.received.size(), 1u);
  net.lose = nullptr;
  for (auto& d : seen) {
    auto copy = d.bytes;
    auto r = b.device.decapsulate({a.addr, std::nullopt, 0}, copy, net.now, b.sink);
    EXPECT_NE(r.verdict, Verdict::kToTun);
  }
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_GE(b.device.drop_count(Drop::kReplayedCounter), 2u);
  EXPECT_EQ(b.device.drop_count(Drop::kReplayedTimestamp), 1u);
}

TEST_F(TwoPeers, LowOrderPeerKeyNeverSendsAnything) {
  ConfigDelta d;
  PeerDelta p;
  p.public_key = {};          // all zero: a low-order point
  p.public_key.bytes[0] = 1;  // "AQAA...A=" — also low order
  p.endpoint = b.addr;
  p.persistent_keepalive = 1;
  p.allowed_ips_add.push_back(*net::Prefix::parse("10.7.0.0/16"));
  d.peers.push_back(p);
  a.sink.out().clear();
  ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
  net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.7.0.1", 10));
  net.elapse(3s);
  int sent = count_sent(a, kMessageInitiation, [&] { net.elapse(3s); });
  EXPECT_EQ(sent, 0);
  EXPECT_EQ(a.device.peer_count(), 2u);
}

TEST_F(TwoPeers, ConfigChangesApplyWholeOrNotAtAll) {
  ConfigDelta d;
  PeerDelta p1;
  p1.public_key = b.pub;
  p1.allowed_ips_add.push_back(*net::Prefix::parse("10.50.0.0/16"));
  d.peers.push_back(p1);
  d.peers.push_back(p1);  // the same key twice: the whole delta is refused
  auto err = a.device.apply(d, net.now, a.sink);
  EXPECT_EQ(err.code(), EINVAL);
  auto prefixes = a.device.snapshot().peers[0].allowed_ips;
  EXPECT_EQ(prefixes.size(), 1u) << "nothing of the refused delta was applied";

  // Own public key as a peer is ignored; a prefix moves between peers.
  Node c("c", 303, *net::Endpoint::parse("192.0.2.3:51820"), "10.0.0.3");
  ConfigDelta d2;
  PeerDelta self;
  self.public_key = a.pub;
  d2.peers.push_back(self);
  PeerDelta pc;
  pc.public_key = c.pub;
  pc.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.2/32"));
  d2.peers.push_back(pc);
  ASSERT_TRUE(a.device.apply(d2, net.now, a.sink));
  auto snap = a.device.snapshot();
  ASSERT_EQ(snap.peers.size(), 2u);
  EXPECT_TRUE(snap.peers[0].allowed_ips.empty()) << "10.0.0.2/32 moved from b to c";
  ASSERT_EQ(snap.peers[1].allowed_ips.size(), 1u);

  // Private key readback is clamped; removing the key.
  auto k = *snap.private_key;
  EXPECT_EQ(k.data()[0] & 7, 0);
  ConfigDelta d3;
  d3.private_key = crypto::PrivateKey{};
  ASSERT_TRUE(a.device.apply(d3, net.now, a.sink));
  EXPECT_FALSE(a.device.snapshot().private_key);
  EXPECT_FALSE(a.device.public_key());
}

TEST_F(TwoPeers, PrivateKeyChangeStartsFreshHandshake) {
  establish();
  // a gets a new identity; b learns the new public key (netns.sh check #7).
  crypto::PrivateKey fresh = crypto::generate_private_key(a.rng);
  const auto old_pub = a.pub;
  a.priv = fresh;
  a.pub = crypto::derive_public_key(fresh);
  ConfigDelta da;
  da.private_key = fresh;
  ASSERT_TRUE(a.device.apply(da, net.now, a.sink));
  ConfigDelta db;
  PeerDelta rm;
  rm.public_key = old_pub;
  rm.remove = true;
  db.peers.push_back(rm);
  ASSERT_TRUE(b.device.apply(db, net.now, b.sink));
  Network::connect(b, a);
  EXPECT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  EXPECT_EQ(b.received.size(), 1u);
}

}  // namespace
}  // namespace warren::wg

namespace warren::wg {
namespace {

TEST_F(TwoPeers, ForgetSourceClearsStickyLocalAddress) {
  establish();  // b learned a's path with b's local address 192.0.2.2 as the sticky source
  net::Path stale{a.addr, b.addr.address, 0};
  b.device.forget_source(stale);
  b.sink.out().clear();
  ASSERT_EQ(net.send_ip(b, b_to_a()).verdict, Verdict::kToNetwork);
  // Network::send_ip records the verdict's path: the local part must be gone.
  ASSERT_FALSE(b.sink.out().empty());
  EXPECT_FALSE(b.sink.out().back().to.local.has_value());
  EXPECT_EQ(b.sink.out().back().to.remote, a.addr);
}

}  // namespace
}  // namespace warren::wg

namespace warren::wg {
namespace {

TEST_F(TwoPeers, RoutingLoopToOwnEndpointRefusedOnionAllowed) {
  establish();
  // A UDP packet addressed to b's endpoint (192.0.2.2:51820), routed into b's tunnel.
  ConfigDelta d;
  PeerDelta p;
  p.public_key = b.pub;
  p.allowed_ips_add.push_back(*net::Prefix::parse("192.0.2.0/24"));
  d.peers.push_back(p);
  ASSERT_TRUE(a.device.apply(d, net.now, a.sink));
  auto loop = test::ipv4_packet("10.0.0.1", "192.0.2.2", 40);
  loop[20] = 0x12, loop[21] = 0x34;  // source port
  store_be16(&loop[22], 51820);      // destination port = b's endpoint port
  EXPECT_EQ(net.send_ip(a, loop).verdict, Verdict::kDrop);
  EXPECT_EQ(a.device.drop_count(Drop::kRoutingLoop), 1u);
  // Another port on the same host, or another host of the prefix, travels the tunnel.
  store_be16(&loop[22], 51821);
  EXPECT_EQ(net.send_ip(a, loop).verdict, Verdict::kToNetwork);
  auto onion = test::ipv4_packet("10.0.0.1", "192.0.2.77", 40);
  store_be16(&onion[22], 51820);
  EXPECT_EQ(net.send_ip(a, onion).verdict, Verdict::kToNetwork);
}

}  // namespace
}  // namespace warren::wg

namespace warren::wg {
namespace {

// Issue 12 (8): the session key a thread's AEAD context cached must go with its keypair. The
// thread that sent data holds the key; removing the peer destroys the keypairs, and that thread
// drops the key when it next checks (an engine worker does before it sleeps).
TEST_F(TwoPeers, RemovingAPeerRetiresTheSessionKeyCachedByThisThread) {
  ASSERT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kQueued);
  net.run();
  ASSERT_EQ(net.send_ip(a, a_to_b()).verdict, Verdict::kToNetwork);  // sealed on this thread
  crypto::aead_wipe_thread_keys_if_retired();
  ASSERT_TRUE(crypto::aead_thread_holds_key()) << "the current session's key stays cached";
  ConfigDelta d;
  PeerDelta rm;
  rm.public_key = b.pub;
  rm.remove = true;
  d.peers.push_back(rm);
  test::CollectingSink s;
  ASSERT_TRUE(a.device.apply(d, net.now, s));
  crypto::aead_wipe_thread_keys_if_retired();
  EXPECT_FALSE(crypto::aead_thread_holds_key()) << "a destroyed session's key is still cached";
}

}  // namespace
}  // namespace warren::wg
