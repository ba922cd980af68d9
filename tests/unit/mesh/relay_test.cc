#include "mesh/relay.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "crypto/blake2s.h"
#include "crypto/random.h"
#include "mesh/stun.h"

namespace warren::mesh::relay {
namespace {

using Bytes = std::vector<std::uint8_t>;

crypto::PublicKey key_of(std::uint8_t b) {
  crypto::PublicKey k;
  k.bytes.fill(b);
  return k;
}

Bytes datagram(std::size_t n, std::uint8_t seed = 1) {
  Bytes d(n);
  for (std::size_t i = 0; i < n; ++i)
    d[i] = static_cast<std::uint8_t>(seed + i * 7);
  return d;
}

Bytes must(Result<Bytes> r) {
  EXPECT_TRUE(r) << r.message();
  return r ? *r : Bytes{};
}

// One frame of every type (and a largest datagram), as bytes.
std::vector<Bytes> sample_frames() {
  static const Bytes small = datagram(148);
  static const Bytes largest = datagram(kMaxDatagram, 9);
  std::vector<Bytes> out;
  Frame f;
  f.type = FrameType::kChallenge;
  f.key = key_of(1);
  f.challenge.fill(2);
  out.push_back(must(encode_frame(f)));
  Proof proof;
  proof.fill(3);
  out.push_back(encode_auth(key_of(4), proof));
  out.push_back(encode_simple(FrameType::kAuthOk));
  Frame s;
  s.type = FrameType::kSend;
  s.key = key_of(5);
  s.datagram = small;
  out.push_back(must(encode_frame(s)));
  s.type = FrameType::kRecv;
  s.datagram = largest;
  out.push_back(must(encode_frame(s)));
  out.push_back(encode_ping(FrameType::kPing, 0x0102030405060708ull));
  out.push_back(encode_ping(FrameType::kPong, 0x0102030405060708ull));
  out.push_back(encode_simple(FrameType::kKeepalive));
  out.push_back(encode_error(ErrorCode::kRateLimited, "over 1000 datagrams/s"));
  Challenge cookie;
  cookie.fill(6);
  out.push_back(encode_udp_auth(key_of(7), proof, cookie));
  return out;
}

// --- frames -----------------------------------------------------------------------------------

TEST(RelayFrame, EveryTypeRoundTrips) {
  for (const auto& bytes : sample_frames()) {
    auto f = decode_frame(bytes);
    ASSERT_TRUE(f) << f.message();
    EXPECT_EQ(must(encode_frame(*f)), bytes) << static_cast<int>(bytes[0]);
  }
  auto f = decode_frame(encode_error(ErrorCode::kNotEnrolled, "revoked"));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error, static_cast<std::uint16_t>(ErrorCode::kNotEnrolled));
  EXPECT_EQ(f->text, "revoked");
  auto p = decode_frame(encode_ping(FrameType::kPing, 42));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->nonce, 42u);
}

TEST(RelayFrame, DataFramesCarryTheDatagramUnchanged) {
  const Bytes d = datagram(kMaxDatagram);
  Frame s;
  s.type = FrameType::kSend;
  s.key = key_of(7);
  s.datagram = d;
  auto bytes = must(encode_frame(s));
  EXPECT_EQ(bytes.size(), kMaxFrameSize);
  auto f = decode_frame(bytes);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->type, FrameType::kSend);
  EXPECT_EQ(f->key, key_of(7));
  EXPECT_TRUE(std::equal(f->datagram.begin(), f->datagram.end(), d.begin(), d.end()));
  // The two-iovec header is the same bytes.
  std::array<std::uint8_t, kDataHeaderSize> h{};
  ASSERT_TRUE(write_data_header(h, FrameType::kSend, key_of(7), d.size()));
  EXPECT_TRUE(std::equal(h.begin(), h.end(), bytes.begin()));
}

TEST(RelayFrame, NeverTakenForWireGuardOrStun) {
  for (const auto& bytes : sample_frames()) {
    EXPECT_TRUE(is_relay(bytes));
    EXPECT_FALSE(stun::is_stun(bytes));
    EXPECT_FALSE(bytes[0] >= 1 && bytes[0] <= 4);  // WireGuard's type byte
  }
  Bytes wg(148, 0);
  wg[0] = 1;
  EXPECT_FALSE(is_relay(wg));
  stun::TransactionId id{};
  EXPECT_FALSE(is_relay(stun::build_binding_request(id)));
}

TEST(RelayFrame, EachMalformationHasItsError) {
  struct Case {
    const char* text;
    Bytes bytes;
  };
  auto header = [](std::uint8_t type, std::size_t len) {
    Bytes b = {type, static_cast<std::uint8_t>(len >> 16), static_cast<std::uint8_t>(len >> 8),
               static_cast<std::uint8_t>(len)};
    b.resize(4 + len, 0x41);
    return b;
  };
  auto bad_text = encode_error(ErrorCode::kProtocol, "abc");
  bad_text.back() = 0x07;
  auto trailing = encode_simple(FrameType::kKeepalive);
  trailing.push_back(0);
  auto truncated = encode_ping(FrameType::kPing, 1);
  truncated.pop_back();
  const std::vector<Case> cases = {
      {"shorter than the 4-byte header", {0xC8, 0, 0}},
      {"unknown type 0xcb", header(0xCB, 0)},
      {"unknown type 0x01", header(0x01, 0)},
      {"challenge frame with a body of 63 bytes (want 64)", header(0xC1, 63)},
      {"auth frame with a body of 65 bytes (want 64)", header(0xC2, 65)},
      {"auth-ok frame with a body of 1 bytes (want 0)", header(0xC3, 1)},
      {"send frame with a body of 32 bytes (want 33..65567", header(0xC4, 32)},
      {"recv frame with a body of 65568 bytes", header(0xC5, 65568)},
      {"ping frame with a body of 7 bytes (want 8)", header(0xC6, 7)},
      {"keepalive frame with a body of 2 bytes (want 0)", header(0xC8, 2)},
      {"error frame with a body of 1 bytes (want 2..258)", header(0xC9, 1)},
      {"error frame with a body of 259 bytes", header(0xC9, 259)},
      {"not printable ASCII", bad_text},
      {"body length 0 but 1 bytes follow", trailing},
      {"body length 8 but 7 bytes follow", truncated},
  };
  for (const auto& c : cases) {
    auto f = decode_frame(c.bytes);
    ASSERT_FALSE(f) << c.text;
    EXPECT_EQ(f.code(), EBADMSG) << c.text;
    EXPECT_NE(f.message().find(c.text), std::string::npos) << c.text << ": " << f.message();
  }
}

TEST(RelayFrame, EncodingRefusesWhatCannotBeSent) {
  Frame s;
  s.type = FrameType::kSend;
  EXPECT_EQ(encode_frame(s).code(), EMSGSIZE);  // empty datagram
  const Bytes big(kMaxDatagram + 1);
  s.datagram = big;
  EXPECT_EQ(encode_frame(s).code(), EMSGSIZE);
  std::array<std::uint8_t, kDataHeaderSize> h{};
  EXPECT_EQ(write_data_header(h, FrameType::kPing, key_of(1), 10).code(), EINVAL);
  EXPECT_EQ(write_data_header(h, FrameType::kRecv, key_of(1), 0).code(), EMSGSIZE);
  Frame e;
  e.type = FrameType::kError;
  e.text = std::string(kMaxErrorText + 1, 'a');
  EXPECT_EQ(encode_frame(e).code(), EINVAL);
  e.text = "tab\there";
  EXPECT_EQ(encode_frame(e).code(), EINVAL);
  // The convenience encoder cleans instead.
  auto f = decode_frame(encode_error(ErrorCode::kProtocol, "tab\there" + std::string(300, 'x')));
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(f->text.size(), kMaxErrorText);
  EXPECT_EQ(f->text.substr(0, 8), "tab?here");
}

// --- authentication ---------------------------------------------------------------------------

struct Node {
  crypto::PrivateKey priv = crypto::generate_private_key(crypto::SystemRandom::instance());
  crypto::PublicKey pub = crypto::derive_public_key(priv);
};

TEST(RelayAuth, TheHolderOfTheKeyIsAccepted) {
  Node n;
  auto c = Challenger::create(crypto::SystemRandom::instance());
  // The node reads the challenge off the wire, as it would.
  auto ch = decode_frame(c.frame());
  ASSERT_TRUE(ch);
  ASSERT_EQ(ch->type, FrameType::kChallenge);
  auto proof = prove(n.priv, n.pub, ch->key, ch->challenge);
  ASSERT_TRUE(proof) << proof.message();
  auto auth = decode_frame(encode_auth(n.pub, *proof));
  ASSERT_TRUE(auth);
  auto who = c.verify(auth->key, auth->challenge);
  ASSERT_TRUE(who) << who.message();
  EXPECT_EQ(*who, n.pub);
}

TEST(RelayAuth, ProofIsTheSpecifiedFormula) {
  // proof = keyed BLAKE2s-256(X25519(node private, E), "warren relay v1" || challenge || node).
  Node n;
  auto c = Challenger::create(crypto::SystemRandom::instance());
  crypto::SharedSecret shared;
  ASSERT_TRUE(crypto::x25519(n.priv, c.challenge_key(), shared));
  Bytes msg = {'w', 'a', 'r', 'r', 'e', 'n', ' ', 'r', 'e', 'l', 'a', 'y', ' ', 'v', '1'};
  msg.insert(msg.end(), c.challenge().begin(), c.challenge().end());
  msg.insert(msg.end(), n.pub.bytes.begin(), n.pub.bytes.end());
  Proof want{};
  crypto::blake2s_keyed(shared.span(), msg, want);
  auto got = prove(n.priv, n.pub, c.challenge_key(), c.challenge());
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, want);
}

TEST(RelayAuth, AProofForAnotherChallengeIsRefused) {
  Node n;
  auto first = Challenger::create(crypto::SystemRandom::instance());
  auto second = Challenger::create(crypto::SystemRandom::instance());
  auto proof = prove(n.priv, n.pub, first.challenge_key(), first.challenge());
  ASSERT_TRUE(proof);
  auto r = second.verify(n.pub, *proof);
  EXPECT_EQ(r.code(), EACCES);
  EXPECT_NE(r.message().find("does not match"), std::string::npos) << r.message();
  // Same challenge key, another challenge: also refused (the challenge is in the MAC).
  auto third = Challenger::create(crypto::SystemRandom::instance());
  Challenge other = third.challenge();
  other[0] ^= 1;
  auto p2 = prove(n.priv, n.pub, third.challenge_key(), other);
  ASSERT_TRUE(p2);
  EXPECT_EQ(third.verify(n.pub, *p2).code(), EACCES);
}

TEST(RelayAuth, ANodeClaimingAnotherNodesKeyIsRefused) {
  Node victim, attacker;
  auto c = Challenger::create(crypto::SystemRandom::instance());
  // The attacker signs with its own private key but claims the victim's public key.
  auto forged = prove(attacker.priv, victim.pub, c.challenge_key(), c.challenge());
  ASSERT_TRUE(forged);
  EXPECT_EQ(c.verify(victim.pub, *forged).code(), EACCES);
  // And the attacker's own valid proof does not pass as the victim's.
  auto c2 = Challenger::create(crypto::SystemRandom::instance());
  auto own = prove(attacker.priv, attacker.pub, c2.challenge_key(), c2.challenge());
  ASSERT_TRUE(own);
  EXPECT_EQ(c2.verify(victim.pub, *own).code(), EACCES);
}

TEST(RelayAuth, AChallengeAnswersOnce) {
  Node n;
  auto c = Challenger::create(crypto::SystemRandom::instance());
  auto proof = prove(n.priv, n.pub, c.challenge_key(), c.challenge());
  ASSERT_TRUE(proof);
  ASSERT_TRUE(c.verify(n.pub, *proof));
  auto replay = c.verify(n.pub, *proof);
  EXPECT_EQ(replay.code(), EPROTO);
  // A wrong first answer uses it up too: no guessing against one challenge.
  auto c2 = Challenger::create(crypto::SystemRandom::instance());
  Proof wrong{};
  EXPECT_EQ(c2.verify(n.pub, wrong).code(), EACCES);
  auto right = prove(n.priv, n.pub, c2.challenge_key(), c2.challenge());
  EXPECT_EQ(c2.verify(n.pub, *right).code(), EPROTO);
}

TEST(RelayAuth, LowOrderKeysAreRefused) {
  Node n;
  const crypto::PublicKey zero{};  // the identity point: X25519 gives all zeros
  Challenge ch{};
  EXPECT_EQ(prove(n.priv, n.pub, zero, ch).code(), EINVAL);
  auto c = Challenger::create(crypto::SystemRandom::instance());
  EXPECT_EQ(c.verify(zero, Proof{}).code(), EINVAL);
}

// --- stream reassembly ------------------------------------------------------------------------

// Feeds `stream` in the given chunk sizes and returns the frames re-encoded.
Result<std::vector<Bytes>> reassemble(const Bytes& stream, const std::vector<std::size_t>& cuts,
                                      StreamReader& r) {
  std::vector<Bytes> out;
  std::size_t pos = 0;
  for (std::size_t i = 0; pos < stream.size(); ++i) {
    const std::size_t n =
        i < cuts.size() ? std::min(cuts[i], stream.size() - pos) : stream.size() - pos;
    ConstBytes in(stream.data() + pos, n);
    pos += n;
    for (;;) {
      auto f = r.next(in);
      if (!f)
        return std::move(f).error();
      if (!*f)
        break;
      auto bytes = encode_frame(**f);
      if (!bytes)
        return std::move(bytes).error();
      out.push_back(std::move(*bytes));
    }
    EXPECT_TRUE(in.empty());
    EXPECT_LE(r.buffered(), kMaxFrameSize);
  }
  return out;
}

TEST(RelayStream, FramesSurviveEverySplit) {
  const auto frames = sample_frames();
  Bytes stream;
  for (const auto& f : frames)
    stream.insert(stream.end(), f.begin(), f.end());

  {  // All at once.
    StreamReader r;
    auto got = reassemble(stream, {}, r);
    ASSERT_TRUE(got) << got.message();
    EXPECT_EQ(*got, frames);
    EXPECT_EQ(r.buffered(), 0u);
  }
  {  // One byte at a time.
    StreamReader r;
    auto got = reassemble(stream, std::vector<std::size_t>(stream.size(), 1), r);
    ASSERT_TRUE(got) << got.message();
    EXPECT_EQ(*got, frames);
  }
  // Arbitrary splits, including ones inside headers and keys.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t total = 0; total < stream.size();) {
      const std::size_t n = rng() % 3 == 0 ? rng() % 8 + 1 : rng() % 20000 + 1;
      cuts.push_back(n);
      total += n;
    }
    StreamReader r;
    auto got = reassemble(stream, cuts, r);
    ASSERT_TRUE(got) << got.message();
    ASSERT_EQ(*got, frames) << "round " << round;
  }
}

TEST(RelayStream, AWholeFrameIsAViewIntoTheInput) {
  const Bytes d = datagram(100);
  Frame s;
  s.type = FrameType::kRecv;
  s.key = key_of(3);
  s.datagram = d;
  const Bytes bytes = must(encode_frame(s));
  StreamReader r;
  ConstBytes in(bytes);
  auto f = r.next(in);
  ASSERT_TRUE(f && *f);
  EXPECT_EQ((*f)->datagram.data(), bytes.data() + kDataHeaderSize);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(RelayStream, ABadHeaderFailsAtOnceAndForGood) {
  // A length above the largest frame: refused after 4 bytes, nothing more buffered.
  Bytes stream = {0xC4, 0xFF, 0xFF, 0xFF};
  stream.resize(100000, 0);
  StreamReader r;
  ConstBytes in(stream.data(), 2);
  auto f = r.next(in);
  ASSERT_TRUE(f);
  EXPECT_FALSE(*f);
  EXPECT_EQ(r.buffered(), 2u);
  in = ConstBytes(stream.data() + 2, stream.size() - 2);
  f = r.next(in);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.code(), EBADMSG);
  EXPECT_LE(r.buffered(), kHeaderSize);
  // Sticky: even a good frame afterwards gets the error (the stream cannot resynchronise).
  auto ka = encode_simple(FrameType::kKeepalive);
  ConstBytes good(ka);
  EXPECT_EQ(r.next(good).code(), EBADMSG);

  StreamReader r2;
  Bytes junk = {0x16, 0x03, 0x01, 0x00};  // a TLS record header: not a relay frame
  ConstBytes j(junk);
  auto e = r2.next(j);
  ASSERT_FALSE(e);
  EXPECT_NE(e.message().find("unknown type 0x16"), std::string::npos) << e.message();
}

// --- stateless challenge (UDP) -----------------------------------------------------------------

const Bytes kSourceA = {10, 0, 0, 1, 0x1f, 0x90};
const Bytes kSourceB = {10, 0, 0, 2, 0x1f, 0x90};
MonoTime at(Duration d) {
  return MonoTime{d};
}

// The node's answer to a challenge frame, as RelayTransport builds it.
Bytes answer(const Node& n, const Bytes& challenge_frame) {
  auto ch = decode_frame(challenge_frame);
  EXPECT_TRUE(ch);
  EXPECT_EQ(ch->type, FrameType::kChallenge);
  auto proof = prove(n.priv, n.pub, ch->key, ch->challenge);
  EXPECT_TRUE(proof);
  return encode_udp_auth(n.pub, *proof, ch->challenge);
}

TEST(RelayStateless, HelloAndChallengeHaveTheSameSizeAndTheHelloIsRecognised) {
  StatelessChallenger sc(crypto::SystemRandom::instance());
  const Bytes hello = encode_udp_hello();
  auto h = decode_frame(hello);
  ASSERT_TRUE(h);
  EXPECT_TRUE(is_udp_hello(*h));
  EXPECT_EQ(sc.challenge(kSourceA, at(std::chrono::seconds(1))).size(), hello.size());
  auto not_hello = decode_frame(encode_auth(key_of(1), Proof{}));
  ASSERT_TRUE(not_hello);
  EXPECT_FALSE(is_udp_hello(*not_hello));
}

TEST(RelayStateless, AnEchoedCookieAndAGoodProofFromTheSameSourceAreAccepted) {
  Node n;
  StatelessChallenger sc(crypto::SystemRandom::instance());
  const auto t = at(std::chrono::seconds(10));
  auto f = decode_frame(answer(n, sc.challenge(kSourceA, t)));
  ASSERT_TRUE(f);
  auto who = sc.verify(kSourceA, *f, t + std::chrono::seconds(1));
  ASSERT_TRUE(who) << who.message();
  EXPECT_EQ(*who, n.pub);
}

TEST(RelayStateless, TheCookieIsBoundToTheSource) {
  Node n;
  StatelessChallenger sc(crypto::SystemRandom::instance());
  const auto t = at(std::chrono::seconds(10));
  EXPECT_NE(sc.challenge(kSourceA, t), sc.challenge(kSourceB, t));
  auto f = decode_frame(answer(n, sc.challenge(kSourceA, t)));
  ASSERT_TRUE(f);
  auto who = sc.verify(kSourceB, *f, t);
  ASSERT_FALSE(who);
  EXPECT_EQ(who.code(), EACCES);
  EXPECT_NE(who.message().find("cookie"), std::string::npos) << who.message();
}

TEST(RelayStateless, ACookieLivesTwoToFourMinutesThenTheSecretIsGone) {
  Node n;
  StatelessChallenger sc(crypto::SystemRandom::instance());
  const auto t = at(StatelessChallenger::kRotation * 5 + std::chrono::seconds(110));
  auto f = decode_frame(answer(n, sc.challenge(kSourceA, t)));
  ASSERT_TRUE(f);
  // The next epoch still knows the previous secret.
  EXPECT_TRUE(sc.verify(kSourceA, *f, t + std::chrono::seconds(20)));
  // Two epochs on, it is gone.
  auto late =
      sc.verify(kSourceA, *f, t + StatelessChallenger::kRotation + std::chrono::seconds(20));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.code(), EACCES);
}

TEST(RelayStateless, AForgedCookieOrProofOrAnotherKeyIsRefused) {
  Node n, other;
  StatelessChallenger sc(crypto::SystemRandom::instance());
  const auto t = at(std::chrono::seconds(10));
  const Bytes good = answer(n, sc.challenge(kSourceA, t));
  // Flip one byte of the cookie, of the proof; claim another key with n's proof.
  for (std::size_t at_byte :
       {kHeaderSize + kKeySize + kProofSize + 5, kHeaderSize + kKeySize + 3}) {
    Bytes bad = good;
    bad[at_byte] ^= 1;
    auto f = decode_frame(bad);
    ASSERT_TRUE(f);
    auto r = sc.verify(kSourceA, *f, t);
    ASSERT_FALSE(r) << at_byte;
    EXPECT_EQ(r.code(), EACCES);
  }
  Bytes claim = good;
  std::copy(other.pub.bytes.begin(), other.pub.bytes.end(), claim.begin() + kHeaderSize);
  auto f = decode_frame(claim);
  ASSERT_TRUE(f);
  auto r = sc.verify(kSourceA, *f, t);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), EACCES);
  // A zero cookie before any hello at all: refused, not crashing on an empty epoch.
  StatelessChallenger fresh(crypto::SystemRandom::instance());
  Frame zero;
  zero.type = FrameType::kUdpAuth;
  zero.key = n.pub;
  EXPECT_EQ(fresh.verify(kSourceA, zero, t).code(), EACCES);
  // Another frame type.
  Frame ping;
  ping.type = FrameType::kPing;
  EXPECT_EQ(sc.verify(kSourceA, ping, t).code(), EINVAL);
}

TEST(RelayStateless, UdpAuthFrameLayout) {
  Proof proof;
  proof.fill(0x33);
  Challenge cookie;
  cookie.fill(0x44);
  const Bytes b = encode_udp_auth(key_of(0x22), proof, cookie);
  ASSERT_EQ(b.size(), 100u);
  EXPECT_EQ(b[0], 0xCA);
  auto f = decode_frame(b);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->key, key_of(0x22));
  EXPECT_EQ(f->challenge, proof);
  EXPECT_EQ(f->cookie, cookie);
  Bytes short_one(b.begin(), b.end() - 1);
  short_one[3] = 95;
  EXPECT_FALSE(decode_frame(short_one));
}

}  // namespace
}  // namespace warren::mesh::relay
