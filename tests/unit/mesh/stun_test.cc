#include "mesh/stun.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "crypto/random.h"
#include "unit/mesh/stun_vectors.h"

namespace warren::mesh::stun {
namespace {

using Bytes = std::vector<std::uint8_t>;

const TransactionId kRfcId = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                              0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

net::Endpoint ep(const char* text) {
  auto e = net::Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(net::Endpoint{});
}

// A WireGuard message of `type` and `size` bytes as it appears on the wire: type byte, three
// zero bytes, then (here) a pattern; with the magic cookie planted at bytes 4..7 to make it as
// STUN-like as a WireGuard message can be (a random sender index can take that value).
Bytes wireguard_like(std::uint8_t type, std::size_t size) {
  Bytes b(size, 0x5a);
  b[0] = type;
  b[1] = b[2] = b[3] = 0;
  store_be32(b.data() + 4, kMagicCookie);
  return b;
}

// --- RFC 5769 ----------------------------------------------------------------------------------

TEST(StunRfc5769, SampleRequestParsesWithItsFingerprint) {
  auto m = parse(test::kRfc5769Request);
  ASSERT_TRUE(m) << m.message();
  EXPECT_EQ(m->type, kBindingRequest);
  EXPECT_EQ(m->transaction_id, kRfcId);
  EXPECT_TRUE(m->fingerprint);  // CRC-32 e57a3bcf ^ 0x5354554e checked by zlib's crc32
  EXPECT_TRUE(m->message_integrity);
  EXPECT_TRUE(m->username);
  ASSERT_EQ(m->unknown_required.size(), 1u);
  EXPECT_EQ(m->unknown_required[0], 0x0024);  // ICE PRIORITY
  EXPECT_TRUE(is_stun(test::kRfc5769Request));
  // It wants short-term credentials, which mesh STUN does not have.
  auto r = parse_binding_request(test::kRfc5769Request);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), EPROTO);
  EXPECT_NE(r.message().find("authentication"), std::string::npos) << r.message();
}

TEST(StunRfc5769, SampleIpv4ResponseGives192_0_2_1Port32853) {
  auto m = parse(test::kRfc5769ResponseV4);
  ASSERT_TRUE(m) << m.message();
  EXPECT_TRUE(m->fingerprint);
  EXPECT_TRUE(m->message_integrity);
  auto e = parse_binding_success(test::kRfc5769ResponseV4, kRfcId);
  ASSERT_TRUE(e) << e.message();
  EXPECT_EQ(*e, ep("192.0.2.1:32853"));
}

TEST(StunRfc5769, SampleIpv6ResponseGives2001Db8Port32853) {
  auto e = parse_binding_success(test::kRfc5769ResponseV6, kRfcId);
  ASSERT_TRUE(e) << e.message();
  EXPECT_EQ(*e, ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
}

TEST(StunRfc5769, XorMappedAddressEncodingMatchesTheRfcBytes) {
  // Our encoder must produce the RFC's XOR-MAPPED-ADDRESS attribute byte for byte (the
  // attribute sits at bytes 36..47 of the IPv4 sample and 36..59 of the IPv6 sample).
  Bytes v4 = build_binding_success(kRfcId, ep("192.0.2.1:32853"), false);
  ASSERT_EQ(v4.size(), 32u);
  EXPECT_EQ(Bytes(v4.begin() + 20, v4.end()),
            Bytes(test::kRfc5769ResponseV4.begin() + 36, test::kRfc5769ResponseV4.begin() + 48));
  Bytes v6 =
      build_binding_success(kRfcId, ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"), false);
  ASSERT_EQ(v6.size(), 44u);
  EXPECT_EQ(Bytes(v6.begin() + 20, v6.end()),
            Bytes(test::kRfc5769ResponseV6.begin() + 36, test::kRfc5769ResponseV6.begin() + 60));
}

TEST(StunRfc5769, NoFlippedBitPassesAsFingerprinted) {
  Bytes b(test::kRfc5769ResponseV4.begin(), test::kRfc5769ResponseV4.end());
  int parsed_without_fingerprint = 0;
  for (std::size_t i = 0; i < b.size() * 8; ++i) {
    Bytes c = b;
    c[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    auto m = parse(c);
    if (!m)
      continue;
    // FINGERPRINT is optional in STUN, so a flip that hides it (in its type field, or a
    // MESSAGE-INTEGRITY length that swallows it) leaves a message without one; never one that
    // claims a matching FINGERPRINT.
    EXPECT_FALSE(m->fingerprint) << "bit " << i;
    ++parsed_without_fingerprint;
  }
  EXPECT_LE(parsed_without_fingerprint, 24);  // 16 type bits, a few MESSAGE-INTEGRITY lengths
}

// --- Building and round trips ------------------------------------------------------------------

TEST(Stun, RequestIsHeaderPlusOptionalFingerprint) {
  TransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  Bytes plain = build_binding_request(id, false);
  ASSERT_EQ(plain.size(), 20u);
  EXPECT_EQ(Bytes(plain.begin(), plain.begin() + 8),
            (Bytes{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}));
  EXPECT_EQ(Bytes(plain.begin() + 8, plain.end()), Bytes(id.begin(), id.end()));

  Bytes fp = build_binding_request(id);
  ASSERT_EQ(fp.size(), 28u);
  EXPECT_EQ(load_be16(fp.data() + 2), 8);  // the length counts FINGERPRINT
  EXPECT_EQ(load_be16(fp.data() + 20), kAttrFingerprint);

  for (const Bytes& b : {plain, fp}) {
    EXPECT_TRUE(is_stun(b));
    auto got = parse_binding_request(b);
    ASSERT_TRUE(got) << got.message();
    EXPECT_EQ(*got, id);
  }
  auto m = parse(fp);
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->fingerprint);
}

TEST(Stun, SuccessRoundTripsV4V6AndMappedV4) {
  TransactionId id{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xff, 0x80};
  for (const char* text :
       {"198.51.100.7:1", "203.0.113.200:65535", "[2001:db8::1]:51820", "[fe80::1:2:3:4]:4242"}) {
    for (bool fingerprint : {false, true}) {
      Bytes b = build_binding_success(id, ep(text), fingerprint);
      EXPECT_TRUE(is_stun(b)) << text;
      auto got = parse_binding_success(b, id);
      ASSERT_TRUE(got) << text << ": " << got.message();
      EXPECT_EQ(*got, ep(text));
    }
  }
  // A dual-stack socket reports IPv4 sources as ::ffff:a.b.c.d; the answer says IPv4.
  Bytes b = build_binding_success(id, ep("[::ffff:192.0.2.9]:3478"));
  EXPECT_EQ(b[25], 0x01);  // family
  auto got = parse_binding_success(b, id);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, ep("192.0.2.9:3478"));
}

TEST(Stun, TransactionIdsComeFromTheRandomSource) {
  auto a = new_transaction_id(crypto::SystemRandom::instance());
  auto b = new_transaction_id(crypto::SystemRandom::instance());
  EXPECT_NE(a, b);  // 2^-96
  struct Counting final : RandomSource {
    void fill(std::span<std::uint8_t> out) override {
      for (auto& x : out)
        x = n++;
    }
    std::uint8_t n = 0;
  } counting;
  EXPECT_EQ(new_transaction_id(counting), (TransactionId{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
}

TEST(Stun, MappedAddressIsTheFallback) {
  // An RFC 3489-style answer: MAPPED-ADDRESS 192.0.2.33:4000 in clear, no XOR-MAPPED-ADDRESS.
  Bytes b = {0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42, 1,    2,    3,    4,    5,   6, 7, 8,
             9,    10,   11,   12,   0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x0f, 0xa0, 192, 0, 2, 33};
  TransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  auto got = parse_binding_success(b, id);
  ASSERT_TRUE(got) << got.message();
  EXPECT_EQ(*got, ep("192.0.2.33:4000"));
  // When both are present, XOR-MAPPED-ADDRESS wins (NAT ALGs rewrite the clear one).
  Bytes both = build_binding_success(id, ep("198.51.100.1:5000"), false);
  both.insert(both.end(), b.begin() + 20, b.end());
  store_be16(both.data() + 2, static_cast<std::uint16_t>(both.size() - 20));
  got = parse_binding_success(both, id);
  ASSERT_TRUE(got) << got.message();
  EXPECT_EQ(*got, ep("198.51.100.1:5000"));
}

// --- Telling STUN from WireGuard ---------------------------------------------------------------

TEST(Stun, WireGuardMessagesAreNeverStun) {
  // Initiation 148, response 92, cookie reply 64, transport data >= 32 (keepalive: 32).
  for (auto [type, size] : {std::pair<std::uint8_t, std::size_t>{1, 148},
                            {2, 92},
                            {3, 64},
                            {4, 32},
                            {4, 48},
                            {4, 1452}}) {
    Bytes b = wireguard_like(type, size);
    EXPECT_FALSE(is_stun(b)) << int(type) << "/" << size;
    EXPECT_FALSE(parse(b)) << int(type) << "/" << size;
  }
  // The only WireGuard-shaped bytes that pass are exactly 20 bytes long: no WireGuard message.
  EXPECT_TRUE(is_stun(wireguard_like(1, 20)));
}

TEST(Stun, IsStunChecksEachRule) {
  Bytes good = build_binding_request(TransactionId{}, true);
  ASSERT_TRUE(is_stun(good));
  Bytes b = good;
  b[0] |= 0x40;  // top bits
  EXPECT_FALSE(is_stun(b));
  b = good;
  b[0] |= 0x80;
  EXPECT_FALSE(is_stun(b));
  b = good;
  b[7] ^= 1;  // cookie
  EXPECT_FALSE(is_stun(b));
  b = good;
  b[3] = 9;  // length not a multiple of 4
  EXPECT_FALSE(is_stun(b));
  b = good;
  b[3] = 12;  // length != size - 20
  EXPECT_FALSE(is_stun(b));
  b = good;
  b.push_back(0);  // trailing byte
  EXPECT_FALSE(is_stun(b));
  EXPECT_FALSE(is_stun(Bytes(good.begin(), good.begin() + 19)));
  EXPECT_FALSE(is_stun(Bytes{}));
}

// --- Malformed input: a clear error for each ---------------------------------------------------

struct Bad {
  const char* name;
  Bytes bytes;
  const char* says;
};

Bytes with_attr(std::uint16_t type, Bytes value, std::uint16_t declared_len, bool fix_length,
                std::uint16_t msg_type = kBindingSuccess) {
  Bytes b(20, 0);
  store_be16(b.data(), msg_type);
  store_be32(b.data() + 4, kMagicCookie);
  for (int i = 0; i < 12; ++i)
    b[8 + i] = static_cast<std::uint8_t>(i + 1);
  b.resize(24);
  store_be16(b.data() + 20, type);
  store_be16(b.data() + 22, declared_len);
  b.insert(b.end(), value.begin(), value.end());
  if (fix_length)
    store_be16(b.data() + 2, static_cast<std::uint16_t>(b.size() - 20));
  return b;
}

TEST(Stun, MalformedInputGetsAnErrorNamingTheProblem) {
  Bytes req = build_binding_request(TransactionId{}, false);
  Bytes short_len = req;
  short_len[3] = 4;
  Bytes fp = build_binding_request(TransactionId{}, true);
  Bytes bad_fp = fp;
  bad_fp.back() ^= 1;
  Bytes fp_not_last = fp;
  fp_not_last.insert(fp_not_last.end(), {0x80, 0x22, 0x00, 0x00});  // SOFTWARE, empty
  store_be16(fp_not_last.data() + 2, static_cast<std::uint16_t>(fp_not_last.size() - 20));
  Bytes fp_size = with_attr(kAttrFingerprint, {0, 0, 0, 0, 0, 0, 0, 0}, 8, true);
  Bytes top = req;
  top[0] = 0xc0;
  Bytes cookie = req;
  cookie[4] = 0;

  const Bad cases[] = {
      {"empty", {}, "0 bytes, shorter than the 20-byte header"},
      {"19 bytes", Bytes(req.begin(), req.begin() + 19), "19 bytes, shorter"},
      {"top bits", top, "top two bits"},
      {"cookie", cookie, "magic cookie"},
      {"length not /4",
       [&] {
         Bytes b = req;
         b[3] = 2;
         return b;
       }(),
       "not a multiple of 4"},
      {"length too long", short_len, "length 4 but 0 bytes follow"},
      {"attr past end", with_attr(kAttrSoftware, {1, 2, 3, 4}, 8, true), "claims 8 bytes, only 4"},
      {"padding past end", with_attr(kAttrSoftware, {1, 2, 3, 4}, 5, true),
       "claims 5 bytes, only 4"},
      {"xor-mapped short", with_attr(kAttrXorMappedAddress, {0, 1, 0, 0}, 3, true),
       "XOR-MAPPED-ADDRESS is 3 bytes"},
      {"family", with_attr(kAttrXorMappedAddress, {0, 3, 1, 1, 1, 1, 1, 1}, 8, true),
       "unknown address family 3"},
      {"v6 family, v4 size", with_attr(kAttrMappedAddress, {0, 2, 1, 1, 1, 1, 1, 1}, 8, true),
       "MAPPED-ADDRESS of family 2 is 8 bytes (want 20)"},
      {"port 0", with_attr(kAttrMappedAddress, {0, 1, 0, 0, 192, 0, 2, 1}, 8, true), "port 0"},
      {"xor port 0", with_attr(kAttrXorMappedAddress, {0, 1, 0x21, 0x12, 1, 1, 1, 1}, 8, true),
       "port 0"},
      {"error-code short", with_attr(kAttrErrorCode, {0, 0, 4, 0}, 3, true, kBindingError),
       "ERROR-CODE is 3 bytes"},
      {"fingerprint size", fp_size, "FINGERPRINT is 8 bytes"},
      {"fingerprint value", bad_fp, "FINGERPRINT does not match"},
      {"fingerprint not last", fp_not_last, "FINGERPRINT is not the last"},
  };
  for (const Bad& c : cases) {
    auto m = parse(c.bytes);
    ASSERT_FALSE(m) << c.name;
    EXPECT_EQ(m.code(), EBADMSG) << c.name;
    EXPECT_NE(m.message().find(c.says), std::string::npos) << c.name << ": " << m.message();
    EXPECT_NE(m.message().find("malformed STUN message"), std::string::npos) << c.name;
  }
}

TEST(Stun, EveryTruncationOfTheRfcVectorsFailsCleanly) {
  for (ConstBytes v : {ConstBytes(test::kRfc5769Request), ConstBytes(test::kRfc5769ResponseV4),
                       ConstBytes(test::kRfc5769ResponseV6)}) {
    for (std::size_t n = 0; n < v.size(); ++n) {
      // A copy of exactly n bytes, so a sanitizer sees any read past the end.
      Bytes cut(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(n));
      EXPECT_FALSE(parse(cut)) << n;
      EXPECT_FALSE(is_stun(cut)) << n;
    }
  }
}

TEST(Stun, WrongAnswersAreRefusedWithEproto) {
  TransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  TransactionId other = id;
  other[11] ^= 1;
  Bytes ok = build_binding_success(id, ep("192.0.2.1:1000"));

  auto stale = parse_binding_success(ok, other);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.code(), EPROTO);
  EXPECT_NE(stale.message().find("another transaction"), std::string::npos);

  auto req = parse_binding_success(build_binding_request(id), id);
  ASSERT_FALSE(req);
  EXPECT_NE(req.message().find("type 0x0001 is not a Binding success"), std::string::npos)
      << req.message();

  auto not_req = parse_binding_request(ok);
  ASSERT_FALSE(not_req);
  EXPECT_NE(not_req.message().find("type 0x0101 is not a Binding request"), std::string::npos)
      << not_req.message();

  // 400 Bad Request, with a reason that carries a control character.
  Bytes err = with_attr(kAttrErrorCode, {0, 0, 4, 0, 'B', 'a', 'd', '\n'}, 8, true, kBindingError);
  auto e = parse_binding_success(err, id);
  ASSERT_FALSE(e);
  EXPECT_NE(e.message().find("error response 400 Bad?"), std::string::npos) << e.message();

  Bytes empty = with_attr(kAttrSoftware, {'x', 0, 0, 0}, 1, true);
  auto none = parse_binding_success(empty, id);
  ASSERT_FALSE(none);
  EXPECT_NE(none.message().find("no XOR-MAPPED-ADDRESS"), std::string::npos) << none.message();

  Bytes required = build_binding_success(id, ep("192.0.2.1:1000"), false);
  required.insert(required.end(), {0x00, 0x2a, 0x00, 0x00});  // unknown, comprehension-required
  store_be16(required.data() + 2, static_cast<std::uint16_t>(required.size() - 20));
  auto unk = parse_binding_success(required, id);
  ASSERT_FALSE(unk);
  EXPECT_NE(unk.message().find("0x002a"), std::string::npos) << unk.message();
  // Comprehension-optional unknowns are skipped.
  Bytes optional = build_binding_success(id, ep("192.0.2.1:1000"), false);
  optional.insert(optional.end(), {0x80, 0x2a, 0x00, 0x01, 0x07, 0, 0, 0});
  store_be16(optional.data() + 2, static_cast<std::uint16_t>(optional.size() - 20));
  EXPECT_TRUE(parse_binding_success(optional, id));
}

}  // namespace
}  // namespace warren::mesh::stun
