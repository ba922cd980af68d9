// Known-answer tests of the handshake: the generic Noise IKpsk2 vector (cacophony) against the
// pure Noise functions, and the project's WireGuard wire-format vector against whole Devices
// driven by a scripted RNG and a fixed clock — every byte of every message must match.

#include <gtest/gtest.h>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "net/ip_header.h"
#include "support/vectors.h"
#include "support/wg_harness.h"
#include "wg/cookie.h"
#include "wg/noise.h"
#include "wg/tai64n.h"

namespace warren::wg {
namespace {

using test::json_hex;

crypto::PrivateKey priv_from(const std::vector<std::uint8_t>& b) {
  crypto::PrivateKey k;
  std::memcpy(k.data(), b.data(), 32);
  return k;
}
crypto::PublicKey pub_from(const std::vector<std::uint8_t>& b) {
  crypto::PublicKey k;
  std::memcpy(k.bytes.data(), b.data(), 32);
  return k;
}

TEST(NoiseVectors, CacophonyIKpsk2) {
  const std::string j = test::read_vector_file("cacophony_IKpsk2_BLAKE2s.json");
  const auto prologue = json_hex(j, "init_prologue");
  Secret<32> psk;
  auto psk_bytes = json_hex(j, "init_psks");
  std::memcpy(psk.data(), psk_bytes.data(), 32);
  const auto i_static = priv_from(json_hex(j, "init_static"));
  const auto i_eph = priv_from(json_hex(j, "init_ephemeral"));
  const auto r_static = priv_from(json_hex(j, "resp_static"));
  const auto r_eph = priv_from(json_hex(j, "resp_ephemeral"));
  const auto r_pub = pub_from(json_hex(j, "init_remote_static"));
  ASSERT_EQ(crypto::derive_public_key(r_static), r_pub);
  const auto i_pub = crypto::derive_public_key(i_static);

  std::vector<std::vector<std::uint8_t>> payloads, ciphertexts;
  std::size_t pos = j.find("\"messages\"");
  for (int i = 0; i < 6; ++i) {
    pos = j.find("\"payload\"", pos);
    payloads.push_back(json_hex(j, "payload", pos));
    ciphertexts.push_back(json_hex(j, "ciphertext", pos));
    pos = j.find("\"ciphertext\"", pos) + 1;
  }

  noise::State ini, res;
  noise::initialize(ini, prologue, r_pub);
  noise::initialize(res, prologue, r_pub);

  // Message 1.
  crypto::SharedSecret ss_i, ss_r;
  ASSERT_TRUE(crypto::x25519(i_static, r_pub, ss_i));
  std::vector<std::uint8_t> m1(noise::msg1_size(payloads[0].size()));
  ASSERT_TRUE(noise::write_message1(ini, i_eph, i_pub, r_pub, ss_i, payloads[0], m1));
  EXPECT_EQ(to_hex(m1), to_hex(ciphertexts[0]));
  crypto::PublicKey learned;
  ASSERT_TRUE(noise::read_message1_static(res, r_static, ciphertexts[0], learned));
  EXPECT_EQ(learned, i_pub);
  ASSERT_TRUE(crypto::x25519(r_static, learned, ss_r));
  std::vector<std::uint8_t> p1(payloads[0].size());
  ASSERT_TRUE(noise::read_message1_payload(res, ss_r, ciphertexts[0], p1));
  EXPECT_EQ(p1, payloads[0]);

  // Message 2.
  std::vector<std::uint8_t> m2(noise::msg2_size(payloads[1].size()));
  ASSERT_TRUE(noise::write_message2(res, r_eph, i_pub, psk, payloads[1], m2));
  EXPECT_EQ(to_hex(m2), to_hex(ciphertexts[1]));
  std::vector<std::uint8_t> p2(payloads[1].size());
  ASSERT_TRUE(noise::read_message2(ini, i_static, psk, ciphertexts[1], p2));
  EXPECT_EQ(p2, payloads[1]);

  EXPECT_EQ(to_hex(ini.hash), test::json_string(j, "handshake_hash"));
  EXPECT_EQ(to_hex(res.hash), test::json_string(j, "handshake_hash"));

  // Transport: initiator sends with the first split key, responder with the second.
  Secret<32> i_send, i_recv, r_send_from_i, r_send;
  noise::split(ini, i_send, i_recv);
  noise::split(res, r_send_from_i, r_send);
  EXPECT_TRUE(constant_time_equal(i_send.span(), r_send_from_i.span()));
  EXPECT_TRUE(constant_time_equal(i_recv.span(), r_send.span()));
  for (int i = 2; i < 6; ++i) {
    const auto& key = (i % 2 == 0) ? i_send : r_send;
    const std::uint64_t nonce = (i - 2) / 2;
    std::vector<std::uint8_t> ct(payloads[i].size() + 16);
    ASSERT_TRUE(crypto::aead_seal(key.span(), nonce, payloads[i], {}, ct));
    EXPECT_EQ(to_hex(ct), to_hex(ciphertexts[i])) << "transport message " << i;
  }
}

TEST(NoiseVectors, CacophonyTamperedMessageFails) {
  const std::string j = test::read_vector_file("cacophony_IKpsk2_BLAKE2s.json");
  const auto r_static = priv_from(json_hex(j, "resp_static"));
  const auto r_pub = pub_from(json_hex(j, "init_remote_static"));
  auto m1 = json_hex(j, "ciphertext", j.find("\"messages\""));
  // Bytes 0..79 (ephemeral, encrypted static) fail the first half.
  for (std::size_t byte : {0u, 40u, 79u}) {
    auto bad = m1;
    bad[byte] ^= 1;
    noise::State res;
    noise::initialize(res, json_hex(j, "init_prologue"), r_pub);
    crypto::PublicKey learned;
    EXPECT_FALSE(noise::read_message1_static(res, r_static, bad, learned)) << byte;
  }
  // Bytes 80.. (encrypted payload) pass the first half and fail the second.
  for (std::size_t byte : {80u, 87u, 111u}) {
    auto bad = m1;
    bad[byte] ^= 1;
    noise::State res;
    noise::initialize(res, json_hex(j, "init_prologue"), r_pub);
    crypto::PublicKey learned;
    ASSERT_TRUE(noise::read_message1_static(res, r_static, bad, learned)) << byte;
    crypto::SharedSecret ss;
    ASSERT_TRUE(crypto::x25519(r_static, learned, ss));
    std::vector<std::uint8_t> payload(bad.size() - noise::msg1_size(0));
    EXPECT_FALSE(noise::read_message1_payload(res, ss, bad, payload)) << byte;
  }
}

// ---- WireGuard wire format ----------------------------------------------------------------

struct WgVector {
  std::string j = test::read_vector_file("wg_handshake_vector.json");
  std::vector<std::uint8_t> hex(const char* key) const { return json_hex(j, key); }
};

constexpr std::int64_t kVectorUnixSeconds = 1577836800;  // 2020-01-01T00:00:00Z

TEST(WireGuardVector, InitialValues) {
  WgVector v;
  std::array<std::uint8_t, 32> ck, h, mac1_key;
  crypto::blake2s_hash({noise::as_bytes(noise::kConstruction)}, ck);
  crypto::blake2s_hash({ck, noise::as_bytes(noise::kIdentifier)}, h);
  EXPECT_EQ(to_hex(ck), to_hex(v.hex("initial_chaining_key")));
  EXPECT_EQ(to_hex(h), to_hex(v.hex("initial_hash")));
  crypto::blake2s_hash({noise::as_bytes(noise::kLabelMac1), v.hex("responder_static_public")},
                       mac1_key);
  EXPECT_EQ(to_hex(mac1_key), to_hex(v.hex("mac1_key_for_messages_to_responder")));
  EXPECT_EQ(to_hex(tai64n_from_wall(WallTime(std::chrono::seconds(kVectorUnixSeconds)))),
            to_hex(v.hex("timestamp_tai64n")));
}

TEST(WireGuardVector, DevicesReproduceEveryMessage) {
  WgVector v;
  test::ScriptedRandom rng_i(11), rng_r(22);
  Device ini(rng_i), res(rng_r);
  const auto i_priv = priv_from(v.hex("initiator_static_private"));
  const auto r_priv = priv_from(v.hex("responder_static_private"));
  const auto i_pub = pub_from(v.hex("initiator_static_public"));
  const auto r_pub = pub_from(v.hex("responder_static_public"));
  const auto i_addr = *net::Endpoint::parse("192.0.2.1:51820");
  const auto r_addr = *net::Endpoint::parse("192.0.2.2:51820");
  crypto::PresharedKey psk;
  std::memcpy(psk.data(), v.hex("preshared_key").data(), 32);

  // The data packet travels responder -> initiator: its inner source must be allowed for the
  // responder at the initiator, its destination for the initiator at the responder.
  const auto plain = v.hex("responder_data_plaintext_padded");
  auto info = net::parse_ip_header(plain);
  ASSERT_TRUE(info);

  test::CollectingSink si, sr;
  Now now{MonoTime(std::chrono::seconds(50)), WallTime(std::chrono::seconds(kVectorUnixSeconds))};
  {
    ConfigDelta d;
    d.private_key = r_priv;
    PeerDelta p;
    p.public_key = i_pub;
    p.preshared_key = psk;
    p.allowed_ips_add.push_back({info->destination, 32});
    d.peers.push_back(p);
    ASSERT_TRUE(res.apply(d, now, sr));
  }
  // Persistent keepalive switched on sends a keepalive at once; with no session that starts a
  // handshake, and nothing is staged, so the confirmation is a bare keepalive as in the vector.
  rng_i.push(v.hex("initiator_ephemeral_private"));
  rng_i.push_u32_le(
      static_cast<std::uint32_t>(std::stoul(test::json_number(v.j, "initiator_sender_index"))));
  {
    ConfigDelta d;
    d.private_key = i_priv;
    PeerDelta p;
    p.public_key = r_pub;
    p.preshared_key = psk;
    p.endpoint = r_addr;
    p.persistent_keepalive = 25;
    p.allowed_ips_add.push_back({info->source, 32});
    d.peers.push_back(p);
    ASSERT_TRUE(ini.apply(d, now, si));
  }
  ASSERT_EQ(si.out().size(), 1u);
  EXPECT_EQ(to_hex(si.out()[0].bytes), to_hex(v.hex("initiation")));
  EXPECT_EQ(si.out()[0].to.remote, r_addr);

  rng_r.push(v.hex("responder_ephemeral_private"));
  rng_r.push_u32_le(
      static_cast<std::uint32_t>(std::stoul(test::json_number(v.j, "responder_sender_index"))));
  auto init = si.out()[0].bytes;
  si.out().clear();
  auto r1 = res.decapsulate({i_addr, std::nullopt, 0}, init, now, sr);
  EXPECT_EQ(r1.verdict, Verdict::kDrop);
  EXPECT_EQ(r1.drop, Drop::kNone);
  ASSERT_EQ(sr.out().size(), 1u);
  EXPECT_EQ(to_hex(sr.out()[0].bytes), to_hex(v.hex("response")));

  auto resp = sr.out()[0].bytes;
  sr.out().clear();
  auto r2 = ini.decapsulate({r_addr, std::nullopt, 0}, resp, now, si);
  EXPECT_EQ(r2.drop, Drop::kNone);
  ASSERT_EQ(si.out().size(), 1u);
  EXPECT_EQ(to_hex(si.out()[0].bytes), to_hex(v.hex("initiator_keepalive_counter0")));

  auto ka = si.out()[0].bytes;
  si.out().clear();
  auto r3 = res.decapsulate({i_addr, std::nullopt, 0}, ka, now, sr);
  EXPECT_EQ(r3.verdict, Verdict::kDrop);
  EXPECT_EQ(r3.drop, Drop::kNone);

  // The responder now sends the data packet with counter 0 on the confirmed session.
  const std::size_t ip_len = info->total_length;
  std::vector<std::uint8_t> buf(kSendHeadroom + ip_len + kSendTailroom);
  std::memcpy(buf.data() + kSendHeadroom, plain.data(), ip_len);
  auto s = res.encapsulate(buf, ip_len, now, sr);
  ASSERT_EQ(s.verdict, Verdict::kToNetwork);
  std::vector<std::uint8_t> data(buf.begin(), buf.begin() + s.length);
  EXPECT_EQ(to_hex(data), to_hex(v.hex("responder_data_counter0")));

  auto r4 = ini.decapsulate({r_addr, std::nullopt, 0}, data, now, si);
  ASSERT_EQ(r4.verdict, Verdict::kToTun);
  EXPECT_EQ(r4.length, ip_len);
  EXPECT_TRUE(std::equal(plain.begin(), plain.begin() + ip_len, data.begin() + r4.offset));

  // Byte counters as wireguard-go reports them: wire bytes, handshake messages included.
  auto snap = res.snapshot();
  ASSERT_EQ(snap.peers.size(), 1u);
  EXPECT_EQ(snap.peers[0].rx_bytes, kInitiationSize + kKeepaliveSize);
  EXPECT_EQ(snap.peers[0].tx_bytes, kResponseSize + data.size());
  EXPECT_EQ(snap.peers[0].last_handshake_sec, kVectorUnixSeconds);
}

TEST(WireGuardVector, CookieReplyAndMac2) {
  WgVector v;
  const auto r_pub = pub_from(v.hex("responder_static_public"));
  const auto from = *net::Endpoint::parse("192.0.2.1:51820");
  std::size_t len = 0;
  auto src = cookie_source_bytes(from, len);
  EXPECT_EQ(to_hex(std::span<const std::uint8_t>(src.data(), len)),
            to_hex(v.hex("cookie_src_bytes")));

  CookieChecker checker;
  checker.set_public_key(r_pub);
  Secret<32> secret;
  std::memcpy(secret.data(), v.hex("cookie_secret").data(), 32);
  const MonoTime now(std::chrono::seconds(100));
  checker.set_secret_for_test(secret, now);

  const auto initiation = v.hex("initiation");
  EXPECT_TRUE(checker.check_mac1(initiation));
  EXPECT_FALSE(checker.check_mac2(initiation, from, now));

  test::ScriptedRandom rng;
  std::vector<std::uint8_t> nonce(24);
  for (int i = 0; i < 24; ++i)
    nonce[i] = static_cast<std::uint8_t>(i);
  rng.push(nonce);
  std::array<std::uint8_t, 64> reply{};
  checker.create_reply(initiation, 0x11111111, from, now, rng, reply);
  EXPECT_EQ(to_hex(reply), to_hex(v.hex("cookie_reply")));

  CookieGenerator gen;
  gen.set_peer_public_key(r_pub);
  EXPECT_FALSE(gen.consume_reply(reply, now)) << "no mac1 sent yet: the reply cannot be opened";
  auto msg = initiation;
  gen.add_macs(msg, now);
  EXPECT_EQ(to_hex(msg), to_hex(initiation)) << "without a cookie mac2 stays zero";
  auto bad = reply;
  bad[40] ^= 1;
  EXPECT_FALSE(gen.consume_reply(bad, now));
  ASSERT_TRUE(gen.consume_reply(reply, now));
  gen.add_macs(msg, now);
  EXPECT_EQ(to_hex(msg), to_hex(v.hex("initiation_with_mac2")));
  EXPECT_TRUE(checker.check_mac2(msg, from, now));
  EXPECT_FALSE(checker.check_mac2(msg, *net::Endpoint::parse("192.0.2.1:51821"), now))
      << "the cookie is bound to the source port";
  EXPECT_FALSE(checker.check_mac2(msg, from, now + kCookieRefreshTime + std::chrono::seconds(1)))
      << "an expired secret validates nothing";
}

}  // namespace
}  // namespace warren::wg
