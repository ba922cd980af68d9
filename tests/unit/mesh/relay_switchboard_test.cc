#include "mesh/relay_switchboard.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "crypto/random.h"

namespace warren::mesh::relay {
namespace {

using Bytes = std::vector<std::uint8_t>;

struct Node {
  crypto::PrivateKey priv = crypto::generate_private_key(crypto::SystemRandom::instance());
  crypto::PublicKey pub = crypto::derive_public_key(priv);
};

MonoTime at(int ms) {
  return MonoTime{} + std::chrono::hours(1) + std::chrono::milliseconds(ms);
}

// A switchboard and helpers that play the nodes' side of the wire (frames as bytes, decoded).
struct Bench {
  std::set<crypto::PublicKey> enrolled;
  SwitchboardOptions options;
  std::unique_ptr<Switchboard> sb;

  explicit Bench(SwitchboardOptions o = {}) : options(o) {
    sb = std::make_unique<Switchboard>(
        options, [this](const crypto::PublicKey& k) { return enrolled.contains(k); },
        crypto::SystemRandom::instance());
  }

  // Everything queued for `conn`, decoded; the queue is emptied.
  std::vector<Frame> drain(ConnId conn) {
    std::vector<Frame> frames;
    auto* out = sb->output(conn);
    if (!out)
      return frames;
    held.clear();
    for (auto& b : *out) {
      sb->written(conn, b.size());
      held.push_back(std::move(b));
    }
    out->clear();
    for (const auto& b : held) {
      auto f = decode_frame(b);
      EXPECT_TRUE(f) << f.message();
      if (f)
        frames.push_back(*f);
    }
    return frames;
  }
  std::vector<Bytes> held;  // keeps the decoded frames' views valid

  // Opens `conn`, answers its challenge with `claimed` proven by `signer`; returns what came
  // back after the auth frame.
  std::vector<Frame> connect(ConnId conn, const Node& signer, const crypto::PublicKey& claimed,
                             MonoTime now = at(0)) {
    sb->open(conn, now);
    auto ch = drain(conn);
    EXPECT_EQ(ch.size(), 1u);
    EXPECT_EQ(ch[0].type, FrameType::kChallenge);
    auto proof = prove(signer.priv, signer.pub, ch[0].key, ch[0].challenge);
    EXPECT_TRUE(proof);
    auto auth = decode_frame(encode_auth(claimed, *proof));
    EXPECT_TRUE(auth);
    sb->frame(conn, *auth, now);
    return drain(conn);
  }

  void send(ConnId conn, const crypto::PublicKey& to, const Bytes& datagram, MonoTime now) {
    Frame f;
    f.type = FrameType::kSend;
    f.key = to;
    f.datagram = datagram;
    sb->frame(conn, f, now);
  }
};

std::uint16_t error_of(const std::vector<Frame>& frames) {
  for (const auto& f : frames)
    if (f.type == FrameType::kError)
      return f.error;
  return 0;
}

TEST(RelaySwitchboard, EnrolledNodesAuthenticateAndExchangeDatagrams) {
  Bench b;
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  auto ra = b.connect(1, a, a.pub);
  ASSERT_EQ(ra.size(), 1u);
  EXPECT_EQ(ra[0].type, FrameType::kAuthOk);
  ASSERT_EQ(b.connect(2, c, c.pub)[0].type, FrameType::kAuthOk);
  EXPECT_EQ(b.sb->authenticated(), 2u);

  const Bytes d{1, 0, 0, 0, 9, 8, 7};
  b.send(1, c.pub, d, at(1));
  auto got = b.drain(2);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, FrameType::kRecv);
  EXPECT_EQ(got[0].key, a.pub);  // the source, as the relay knows it
  EXPECT_EQ(Bytes(got[0].datagram.begin(), got[0].datagram.end()), d);
  EXPECT_TRUE(b.drain(1).empty());
  b.send(2, a.pub, d, at(2));
  ASSERT_EQ(b.drain(1).size(), 1u);
  EXPECT_EQ(b.sb->counters().forwarded_frames, 2u);
  EXPECT_EQ(b.sb->counters().forwarded_bytes, 2 * d.size());
}

TEST(RelaySwitchboard, ANodeClaimingAnotherKeyIsRefusedAndTheOwnerUnaffected) {
  Bench b;
  Node a, mallory;
  b.enrolled = {a.pub, mallory.pub};
  ASSERT_EQ(b.connect(1, a, a.pub)[0].type, FrameType::kAuthOk);
  auto r = b.connect(2, mallory, a.pub);  // signs with its own key, claims a's
  EXPECT_EQ(error_of(r), static_cast<std::uint16_t>(ErrorCode::kAuthFailed));
  EXPECT_TRUE(b.sb->closing(2));
  EXPECT_FALSE(b.sb->closing(1));
  EXPECT_EQ(b.sb->node(1), a.pub);
  EXPECT_EQ(b.sb->counters().auth_failed, 1u);
}

TEST(RelaySwitchboard, AnUnenrolledKeyIsRefused) {
  Bench b;
  Node stranger;
  auto r = b.connect(1, stranger, stranger.pub);
  EXPECT_EQ(error_of(r), static_cast<std::uint16_t>(ErrorCode::kNotEnrolled));
  EXPECT_TRUE(b.sb->closing(1));
}

TEST(RelaySwitchboard, AReplayedProofIsRefused) {
  Bench b;
  Node a;
  b.enrolled = {a.pub};
  b.sb->open(1, at(0));
  auto ch = b.drain(1);
  auto proof = prove(a.priv, a.pub, ch[0].key, ch[0].challenge);
  auto auth = decode_frame(encode_auth(a.pub, *proof));
  b.sb->frame(1, *auth, at(0));
  ASSERT_EQ(b.drain(1)[0].type, FrameType::kAuthOk);
  // The same auth frame on a new connection (another challenge): refused, and a's stays.
  b.sb->open(2, at(1));
  b.drain(2);
  b.sb->frame(2, *auth, at(1));
  EXPECT_EQ(error_of(b.drain(2)), static_cast<std::uint16_t>(ErrorCode::kAuthFailed));
  EXPECT_EQ(b.sb->node(1), a.pub);
  // And again on the first connection: a second auth is a protocol error.
  b.sb->frame(1, *auth, at(2));
  EXPECT_EQ(error_of(b.drain(1)), static_cast<std::uint16_t>(ErrorCode::kProtocol));
}

TEST(RelaySwitchboard, ASecondConnectionWithTheKeyReplacesTheFirst) {
  Bench b;
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  ASSERT_EQ(b.connect(3, a, a.pub)[0].type, FrameType::kAuthOk);  // a roamed
  EXPECT_TRUE(b.sb->closing(1));
  EXPECT_EQ(b.sb->counters().replaced, 1u);
  b.send(2, a.pub, Bytes{4, 0, 0, 0}, at(1));
  EXPECT_EQ(b.drain(3).size(), 1u);
  // The old connection going away does not unregister the new one.
  b.sb->close(1);
  EXPECT_EQ(b.sb->node(3), a.pub);
  b.send(2, a.pub, Bytes{4, 0, 0, 0}, at(2));
  EXPECT_EQ(b.drain(3).size(), 1u);
}

TEST(RelaySwitchboard, UnknownDestinationIsAnswered) {
  Bench b;
  Node a, gone;
  b.enrolled = {a.pub, gone.pub};
  b.connect(1, a, a.pub);
  b.send(1, gone.pub, Bytes{1, 2, 3}, at(1));
  EXPECT_EQ(error_of(b.drain(1)), static_cast<std::uint16_t>(ErrorCode::kUnknownDestination));
  EXPECT_FALSE(b.sb->closing(1));
  EXPECT_EQ(b.sb->counters().drop_unknown_destination, 1u);
}

TEST(RelaySwitchboard, DataBeforeAuthIsRefusedWithoutForwarding) {
  Bench b;
  Node a;
  b.enrolled = {a.pub};
  b.connect(1, a, a.pub);
  b.sb->open(2, at(0));
  b.drain(2);
  b.send(2, a.pub, Bytes{1, 2, 3}, at(1));
  EXPECT_EQ(error_of(b.drain(2)), static_cast<std::uint16_t>(ErrorCode::kAuthRequired));
  EXPECT_TRUE(b.drain(1).empty());
  EXPECT_EQ(b.sb->counters().drop_auth_required, 1u);
}

TEST(RelaySwitchboard, PingIsAnsweredWithItsNonce) {
  Bench b;
  b.sb->open(1, at(0));
  b.drain(1);
  auto ping = decode_frame(encode_ping(FrameType::kPing, 0x1122334455667788u));
  b.sb->frame(1, *ping, at(0));
  auto r = b.drain(1);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].type, FrameType::kPong);
  EXPECT_EQ(r[0].nonce, 0x1122334455667788u);
}

TEST(RelaySwitchboard, OverTheRateFramesAreDroppedWithOneError) {
  SwitchboardOptions o;
  o.rate_frames = 10;
  o.rate_bytes = 0;
  Bench b(o);
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  for (int i = 0; i < 25; ++i)
    b.send(1, c.pub, Bytes{4, 0, 0, 0}, at(10));
  EXPECT_EQ(b.drain(2).size(), 10u);  // the burst
  auto back = b.drain(1);
  ASSERT_EQ(back.size(), 1u);  // one error, not fifteen
  EXPECT_EQ(back[0].error, static_cast<std::uint16_t>(ErrorCode::kRateLimited));
  EXPECT_EQ(b.sb->counters().drop_rate_limited, 15u);
  // Half a second later five more tokens.
  for (int i = 0; i < 10; ++i)
    b.send(1, c.pub, Bytes{4, 0, 0, 0}, at(510));
  EXPECT_EQ(b.drain(2).size(), 5u);
}

TEST(RelaySwitchboard, ReconnectingDoesNotRefillTheRate) {
  SwitchboardOptions o;
  o.rate_frames = 10;
  o.rate_bytes = 0;
  Bench b(o);
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  for (int i = 0; i < 10; ++i)
    b.send(1, c.pub, Bytes{4, 0, 0, 0}, at(10));
  EXPECT_EQ(b.drain(2).size(), 10u);
  b.connect(3, a, a.pub, at(10));  // a reconnects at once
  for (int i = 0; i < 10; ++i)
    b.send(3, c.pub, Bytes{4, 0, 0, 0}, at(10));
  EXPECT_EQ(b.drain(2).size(), 0u);
  EXPECT_EQ(b.sb->counters().drop_rate_limited, 10u);
}

TEST(RelaySwitchboard, ByteRateLimitsLargeDatagrams) {
  SwitchboardOptions o;
  o.rate_frames = 0;
  o.rate_bytes = 3000;
  Bench b(o);
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  const Bytes big(1000, 4);
  for (int i = 0; i < 5; ++i)
    b.send(1, c.pub, big, at(10));
  EXPECT_EQ(b.drain(2).size(), 3u);
  EXPECT_EQ(b.sb->counters().drop_rate_limited, 2u);
}

TEST(RelaySwitchboard, ASlowReadersQueueIsBounded) {
  SwitchboardOptions o;
  o.max_queued_bytes = 10'000;
  Bench b(o);
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  const Bytes d(1000, 4);
  for (int i = 0; i < 20; ++i)
    b.send(1, c.pub, d, at(10));                     // c reads nothing meanwhile
  EXPECT_EQ(b.sb->counters().forwarded_frames, 9u);  // 9 * 1036 bytes fit in 10,000
  EXPECT_EQ(b.sb->counters().drop_queue_full, 11u);
  EXPECT_EQ(b.drain(2).size(), 9u);
  // Once read, there is room again.
  b.send(1, c.pub, d, at(11));
  EXPECT_EQ(b.drain(2).size(), 1u);
}

TEST(RelaySwitchboard, PingsNeverReadCloseTheConnectionAtTheControlSlack) {
  SwitchboardOptions o;
  o.max_queued_bytes = 1000;
  Bench b(o);
  b.sb->open(1, at(0));
  auto ping = decode_frame(encode_ping(FrameType::kPing, 1));
  const std::size_t bound = o.max_queued_bytes + kControlSlack;
  for (std::size_t i = 0; i < bound / 12 + 10 && !b.sb->closing(1); ++i)
    b.sb->frame(1, *ping, at(1));
  EXPECT_TRUE(b.sb->closing(1));
  EXPECT_EQ(b.sb->counters().overflow_closed, 1u);
  std::size_t queued = 0;
  for (const auto& f : *b.sb->output(1))
    queued += f.size();
  EXPECT_LE(queued, bound);
}

TEST(RelaySwitchboard, RevocationClosesTheNodesConnection) {
  Bench b;
  Node a, c;
  b.enrolled = {a.pub, c.pub};
  b.connect(1, a, a.pub);
  b.connect(2, c, c.pub);
  b.sb->revalidate();
  EXPECT_FALSE(b.sb->closing(2));
  b.enrolled.erase(c.pub);
  b.sb->revalidate();
  EXPECT_TRUE(b.sb->closing(2));
  EXPECT_EQ(error_of(b.drain(2)), static_cast<std::uint16_t>(ErrorCode::kNotEnrolled));
  EXPECT_FALSE(b.sb->closing(1));
  EXPECT_EQ(b.sb->counters().revoked, 1u);
  // Nothing reaches it any more.
  b.send(1, c.pub, Bytes{4, 0, 0, 0}, at(1));
  EXPECT_EQ(error_of(b.drain(1)), static_cast<std::uint16_t>(ErrorCode::kUnknownDestination));
}

TEST(RelaySwitchboard, UnauthenticatedConnectionsExpire) {
  SwitchboardOptions o;
  o.auth_timeout = std::chrono::seconds(2);
  Bench b(o);
  Node a;
  b.enrolled = {a.pub};
  b.sb->open(1, at(0));
  b.connect(2, a, a.pub, at(0));
  EXPECT_EQ(b.sb->next_deadline(), at(2000));
  b.sb->expire(at(1999));
  EXPECT_FALSE(b.sb->closing(1));
  b.sb->expire(at(2000));
  EXPECT_TRUE(b.sb->closing(1));
  EXPECT_FALSE(b.sb->closing(2));
  EXPECT_EQ(b.sb->counters().auth_timeouts, 1u);
}

TEST(RelaySwitchboard, NodeSendingRelayFramesIsAProtocolError) {
  Bench b;
  b.sb->open(1, at(0));
  b.drain(1);
  auto ok = decode_frame(encode_simple(FrameType::kAuthOk));
  b.sb->frame(1, *ok, at(0));
  EXPECT_EQ(error_of(b.drain(1)), static_cast<std::uint16_t>(ErrorCode::kProtocol));
  EXPECT_TRUE(b.sb->closing(1));
}

}  // namespace
}  // namespace warren::mesh::relay
