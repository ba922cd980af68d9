// The QUIC transport's hello, proof, server messages and framing (control/quic_auth.h).

#include "control/quic_auth.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "control/session.h"
#include "crypto/blake2s.h"

namespace warren::control {
namespace {

crypto::PrivateKey private_key(std::uint8_t seed) {
  crypto::PrivateKey k;  // not byte 0: X25519's clamping clears its low 3 bits
  k.data()[1] = seed;
  k.data()[7] = 42;
  return k;
}

ExporterValue exporter(std::uint8_t fill) {
  std::array<std::uint8_t, 32> b{};
  b.fill(fill);
  return ExporterValue(std::span<const std::uint8_t, 32>(b));
}

/// A small-order X25519 point (the all-zero u-coordinate): X25519 with it is all zero.
crypto::PublicKey low_order_key() {
  crypto::PublicKey k;
  k.bytes.fill(0);
  return k;
}

QuicHello hello_for(const crypto::PrivateKey& client, const crypto::PublicKey& server,
                    const ExporterValue& ex) {
  auto text = make_quic_hello(client, server, ex);
  EXPECT_TRUE(text.ok()) << text.message();
  auto h = parse_quic_hello(*text);
  EXPECT_TRUE(h.ok()) << h.message();
  return *h;
}

TEST(QuicAuth, GoodProofVerifies) {
  const auto server = private_key(1), client = private_key(2);
  const auto server_pub = crypto::derive_public_key(server);
  ASSERT_NE(server_pub, crypto::derive_public_key(client));
  const QuicHello h = hello_for(client, server_pub, exporter(7));
  EXPECT_EQ(h.public_key, crypto::derive_public_key(client));
  EXPECT_TRUE(verify_quic_hello(server, exporter(7), h));
  // The hello's shape (quic_auth.h).
  auto j = nlohmann::json::parse(*make_quic_hello(client, server_pub, exporter(7)));
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["type"], "quic_hello");
  EXPECT_EQ(j["public_key"], crypto::derive_public_key(client).to_base64());
}

TEST(QuicAuth, ProofIsTheDocumentedBlake2s) {
  // Recomputed from the header's definition, so a change of the construction is noticed.
  const auto server = private_key(1), client = private_key(2);
  crypto::SharedSecret dh;
  ASSERT_TRUE(crypto::x25519(client, crypto::derive_public_key(server), dh));
  std::vector<std::uint8_t> msg(kQuicProofContext.begin(), kQuicProofContext.end());
  const ExporterValue ex = exporter(9);
  msg.insert(msg.end(), ex.data(), ex.data() + ex.size());
  const auto pub = crypto::derive_public_key(client);
  msg.insert(msg.end(), pub.bytes.begin(), pub.bytes.end());
  std::array<std::uint8_t, 32> want{};
  crypto::blake2s_keyed(dh.span(), msg, want);
  auto proof = make_quic_proof(client, crypto::derive_public_key(server), ex);
  ASSERT_TRUE(proof.ok());
  EXPECT_TRUE(constant_time_equal(proof->span(), want));
  EXPECT_EQ(kQuicExporterLabel, "EXPORTER-warren-quic");
}

TEST(QuicAuth, WrongKeysFail) {
  const auto server = private_key(1), client = private_key(2), other = private_key(3);
  // Made for another server's key.
  QuicHello h = hello_for(client, crypto::derive_public_key(other), exporter(7));
  EXPECT_FALSE(verify_quic_hello(server, exporter(7), h));
  // Someone else's public key with our proof: the claimed key's holder did not make it.
  h = hello_for(client, crypto::derive_public_key(server), exporter(7));
  h.public_key = crypto::derive_public_key(other);
  EXPECT_FALSE(verify_quic_hello(server, exporter(7), h));
  // One flipped bit of the proof.
  h = hello_for(client, crypto::derive_public_key(server), exporter(7));
  std::array<std::uint8_t, 32> bytes{};
  std::copy(h.proof.span().begin(), h.proof.span().end(), bytes.begin());
  bytes[31] ^= 1;
  h.proof = QuicProof(std::span<const std::uint8_t, 32>(bytes));
  EXPECT_FALSE(verify_quic_hello(server, exporter(7), h));
}

TEST(QuicAuth, ReplayOnAnotherConnectionFails) {
  const auto server = private_key(1), client = private_key(2);
  const QuicHello seen = hello_for(client, crypto::derive_public_key(server), exporter(7));
  EXPECT_TRUE(verify_quic_hello(server, exporter(7), seen));
  EXPECT_FALSE(verify_quic_hello(server, exporter(8), seen));  // another connection's exporter
}

TEST(QuicAuth, AllZeroDhIsRefusedAtBothEnds) {
  const auto server = private_key(1), client = private_key(2);
  auto made = make_quic_hello(client, low_order_key(), exporter(7));
  EXPECT_FALSE(made.ok());
  EXPECT_EQ(made.code(), EINVAL);
  // A client claiming a low-order key with any proof (here: the all-zero dh's own proof).
  QuicHello h;
  h.public_key = low_order_key();
  h.public_key.bytes[0] = 1;  // u = 1: also low order, and not all zero (parse accepts it)
  std::array<std::uint8_t, 32> zero{};
  std::vector<std::uint8_t> msg(kQuicProofContext.begin(), kQuicProofContext.end());
  const ExporterValue ex = exporter(7);
  msg.insert(msg.end(), ex.data(), ex.data() + ex.size());
  msg.insert(msg.end(), h.public_key.bytes.begin(), h.public_key.bytes.end());
  std::array<std::uint8_t, 32> forged{};
  crypto::blake2s_keyed(zero, msg, forged);
  h.proof = QuicProof(std::span<const std::uint8_t, 32>(forged));
  EXPECT_FALSE(verify_quic_hello(server, ex, h));
}

TEST(QuicAuth, MalformedHellosHaveTheirCodes) {
  const std::string key = crypto::derive_public_key(private_key(2)).to_base64();
  const std::string proof = to_base64(std::array<std::uint8_t, 32>{});
  auto hello = [&](const std::string& fields) { return "{" + fields + "}"; };
  const std::pair<std::string, std::string_view> cases[] = {
      {"", "invalid_request"},
      {"not json", "invalid_request"},
      {"[1,2]", "invalid_request"},
      {hello("\"type\":\"quic_hello\""), "invalid_request"},
      {hello("\"version\":\"1\",\"type\":\"quic_hello\""), "invalid_request"},
      {hello("\"version\":2,\"type\":\"quic_hello\",\"public_key\":\"" + key + "\",\"proof\":\"" +
             proof + "\""),
       "unsupported_version"},
      {hello("\"version\":1,\"type\":\"session\",\"public_key\":\"" + key + "\",\"proof\":\"" +
             proof + "\""),
       "invalid_request"},
      {hello("\"version\":1,\"type\":\"quic_hello\",\"proof\":\"" + proof + "\""),
       "invalid_request"},
      {hello("\"version\":1,\"type\":\"quic_hello\",\"public_key\":\"" +
             to_base64(std::array<std::uint8_t, 32>{}) + "\",\"proof\":\"" + proof + "\""),
       "invalid_request"},  // the all-zero key
      {hello("\"version\":1,\"type\":\"quic_hello\",\"public_key\":\"" + key + "\""),
       "proof_invalid"},
      {hello("\"version\":1,\"type\":\"quic_hello\",\"public_key\":\"" + key +
             "\",\"proof\":\"AAAA\""),
       "proof_invalid"},
      {hello("\"version\":1,\"type\":\"quic_hello\",\"public_key\":\"" + key + "\",\"proof\":7"),
       "proof_invalid"},
  };
  for (const auto& [text, code] : cases) {
    auto h = parse_quic_hello(text);
    ASSERT_FALSE(h.ok()) << text;
    EXPECT_EQ(quic_error_code(h.error()), code) << text << ": " << h.message();
    EXPECT_FALSE(h.message().empty());
  }
}

Enrollment assignment() {
  Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
  e.server_public_key = crypto::derive_public_key(private_key(1));
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("0.0.0.0/0")};
  e.dns = {*net::IpAddress::parse("10.8.0.1")};
  e.mtu = 1380;
  e.quic = QuicSettings{"vpn.example.com:443"};
  return e;
}

TEST(QuicAuth, ServerMessagesRoundTrip) {
  // The assignment is exactly the settings session's message.
  EXPECT_EQ(quic_assignment_to_json(assignment()), session_settings_to_json(assignment()));
  auto a = parse_quic_server_message(quic_assignment_to_json(assignment()));
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(a->assignment);
  EXPECT_EQ(enrollment_to_json(*a->assignment), enrollment_to_json(assignment()));
  EXPECT_TRUE(a->error_code.empty());

  auto e = parse_quic_server_message(quic_error_to_json("revoked", "this client was revoked"));
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_FALSE(e->assignment);
  EXPECT_EQ(e->error_code, "revoked");
  EXPECT_EQ(e->error_message, "this client was revoked");
  auto j = nlohmann::json::parse(quic_error_to_json("unknown_client", "x"));
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["type"], "error");
  // An error without a code still is one.
  auto bare = parse_quic_server_message("{\"version\":1,\"type\":\"error\"}");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->error_code, "internal");
  // Bytes that are not UTF-8 in a message do not throw.
  EXPECT_TRUE(parse_quic_server_message(quic_error_to_json("internal", "\xff\xfe")).ok());
}

TEST(QuicAuth, MalformedServerMessagesAreErrors) {
  const char* cases[] = {
      "",
      "{",
      "null",
      "{\"version\":1}",
      "{\"version\":1,\"type\":\"ping\"}",
      "{\"version\":2,\"type\":\"error\",\"code\":\"revoked\"}",  // errors are version 1
      "{\"version\":2,\"type\":\"settings\"}",                    // no settings object
      "{\"version\":2,\"type\":\"settings\",\"settings\":{\"name\":1}}",
      "{\"version\":1,\"type\":\"settings\",\"settings\":{}}",
  };
  for (const char* text : cases) {
    auto m = parse_quic_server_message(text);
    EXPECT_FALSE(m.ok()) << text;
    if (!m.ok()) {
      EXPECT_EQ(m.code(), EPROTO) << text;
    }
  }
  // A settings message with a malformed quic endpoint names it.
  auto bad = nlohmann::json::parse(quic_assignment_to_json(assignment()));
  bad["settings"]["quic"]["endpoint"] = "no port";
  auto m = parse_quic_server_message(bad.dump());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("quic.endpoint"), std::string::npos) << m.message();
}

ConstBytes bytes(const std::vector<std::uint8_t>& v) {
  return ConstBytes(v.data(), v.size());
}

TEST(QuicFrames, EncodeAndReadWholePiecewiseAndSeveralInOneChunk) {
  auto f1 = encode_frame("{\"a\":1}");
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ((std::vector<std::uint8_t>(f1->begin(), f1->begin() + 4)),
            (std::vector<std::uint8_t>{0, 0, 0, 7}));
  auto f2 = encode_frame("");
  auto f3 = encode_frame(std::string(70000 / 2, 'x'));
  ASSERT_TRUE(f2.ok() && f3.ok());
  std::vector<std::uint8_t> stream;
  for (const auto* f : {&*f1, &*f2, &*f3})
    stream.insert(stream.end(), f->begin(), f->end());

  // All in one chunk.
  FrameReader all;
  ASSERT_TRUE(all.feed(bytes(stream)).ok());
  EXPECT_EQ(all.next(), "{\"a\":1}");
  EXPECT_EQ(all.next(), "");
  EXPECT_EQ(all.next(), std::string(35000, 'x'));
  EXPECT_EQ(all.next(), std::nullopt);
  EXPECT_EQ(all.buffered(), 0u);

  // One byte at a time: nothing before a frame is complete, each frame exactly once.
  FrameReader drip;
  std::vector<std::string> got;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(drip.feed(ConstBytes(&stream[i], 1)).ok());
    while (auto b = drip.next())
      got.push_back(*b);
    if (i + 1 == 3) {  // inside the first header
      EXPECT_TRUE(drip.partial());
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "{\"a\":1}");
  EXPECT_EQ(got[2].size(), 35000u);
  EXPECT_FALSE(drip.partial());
}

TEST(QuicFrames, TruncatedFrameStaysPartial) {
  auto f = encode_frame("{\"version\":1}");
  ASSERT_TRUE(f.ok());
  FrameReader r;
  ASSERT_TRUE(r.feed(ConstBytes(f->data(), f->size() - 1)).ok());
  EXPECT_EQ(r.next(), std::nullopt);
  EXPECT_TRUE(r.partial());  // the stream ending here would cut a frame: the caller's error
  ASSERT_TRUE(r.feed(ConstBytes(f->data() + f->size() - 1, 1)).ok());
  EXPECT_EQ(r.next(), "{\"version\":1}");
}

TEST(QuicFrames, OversizedIsRefusedAtTheHeader) {
  EXPECT_EQ(encode_frame(std::string(kMaxQuicFrameBytes + 1, 'x')).code(), EMSGSIZE);
  EXPECT_TRUE(encode_frame(std::string(kMaxQuicFrameBytes, 'x')).ok());

  // A good frame, then a header announcing 64 KiB + 1: the error comes with the header, before
  // any of the body, and the frame before it is still delivered.
  auto good = encode_frame("ok");
  std::vector<std::uint8_t> stream = *good;
  const std::uint32_t n = kMaxQuicFrameBytes + 1;
  for (int shift : {24, 16, 8, 0})
    stream.push_back(static_cast<std::uint8_t>(n >> shift));
  FrameReader r;
  const Status st = r.feed(bytes(stream));
  EXPECT_EQ(st.code(), EMSGSIZE);
  EXPECT_TRUE(r.failed());
  EXPECT_EQ(r.next(), "ok");
  EXPECT_EQ(r.next(), std::nullopt);
  // Sticky: whatever comes later is refused too.
  EXPECT_EQ(r.feed(bytes(*good)).code(), EMSGSIZE);
  EXPECT_EQ(r.next(), std::nullopt);

  // 0xFFFFFFFF split over two chunks.
  FrameReader split;
  const std::vector<std::uint8_t> a{0xff, 0xff}, b{0xff, 0xff, 0x00};
  EXPECT_TRUE(split.feed(bytes(a)).ok());
  EXPECT_EQ(split.feed(bytes(b)).code(), EMSGSIZE);
}

TEST(QuicFrames, AHelloSurvivesTheFraming) {
  const auto server = private_key(1), client = private_key(2);
  auto body = make_quic_hello(client, crypto::derive_public_key(server), exporter(3));
  ASSERT_TRUE(body.ok());
  auto frame = encode_frame(*body);
  ASSERT_TRUE(frame.ok());
  FrameReader r;
  ASSERT_TRUE(r.feed(bytes(*frame)).ok());
  auto got = r.next();
  ASSERT_TRUE(got);
  auto h = parse_quic_hello(*got);
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(verify_quic_hello(server, exporter(3), *h));
}

}  // namespace
}  // namespace warren::control
