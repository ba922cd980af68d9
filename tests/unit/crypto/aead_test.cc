#include "crypto/aead.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/encoding.h"
#include "unit/crypto/test_util.h"

namespace warren::crypto {
namespace {

using test::ascii;
using test::ByteVec;
using test::hex;
using test::hex_array;
using ByteView = ConstBytes;

const char kSunscreen[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

std::array<std::uint8_t, kAeadKeySize> key_80_9f() {
  std::array<std::uint8_t, kAeadKeySize> k{};
  for (std::size_t i = 0; i < k.size(); ++i) {
    k[i] = static_cast<std::uint8_t>(0x80 + i);
  }
  return k;
}

// --- RFC 8439 ----------------------------------------------------------------------------------

TEST(ChaCha20Poly1305, Rfc8439Section282Seal) {
  const auto key = key_80_9f();
  const auto nonce = hex_array<kAeadNonceSize>("070000004041424344454647");
  const ByteVec ad = hex("50515253c0c1c2c3c4c5c6c7");
  const ByteVec pt = ascii(kSunscreen);
  ASSERT_EQ(pt.size(), 114u);
  ByteVec out(pt.size() + kAeadTagSize);
  ASSERT_TRUE(aead_seal_nonce12(key, nonce, pt, ad, out));
  EXPECT_EQ(to_hex(ByteView(out).first(pt.size())),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca96712"
            "82fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58"
            "fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116");
  EXPECT_EQ(to_hex(ByteView(out).subspan(pt.size())), "1ae10b594f09e26a7e902ecbd0600691");

  ByteVec back(pt.size());
  ASSERT_TRUE(aead_open_nonce12(key, nonce, out, ad, back));
  EXPECT_EQ(back, pt);
}

// RFC 8439 Appendix A.5: decryption of an Internet-Draft boilerplate paragraph.
const char kA5Key[] = "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0";
const char kA5Ad[] = "f33388860000000000004e91";
const char kA5Ciphertext[] =
    "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d"
    "26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1"
    "ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b"
    "5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea"
    "1b422273f548271a0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a1049e617d91d36"
    "1094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b02709b"
    "eead9d67890cbb22392336fea1851f38";  // tag
const char kA5Plaintext[] =
    "Internet-Drafts are draft documents valid for a maximum of six months and may be updated, "
    "replaced, or obsoleted by other documents at any time. It is inappropriate to use "
    "Internet-Drafts as reference material or to cite them other than as /\xe2\x80\x9cwork in "
    "progress./\xe2\x80\x9d";

TEST(ChaCha20Poly1305, Rfc8439AppendixA5Open) {
  const auto key = hex_array<kAeadKeySize>(kA5Key);
  const auto nonce = hex_array<kAeadNonceSize>("000000000102030405060708");
  const ByteVec ct = hex(kA5Ciphertext);
  ByteVec pt(ct.size() - kAeadTagSize);
  ASSERT_EQ(pt.size(), 265u);
  ASSERT_TRUE(aead_open_nonce12(key, nonce, ct, hex(kA5Ad), pt));
  EXPECT_EQ(std::string(pt.begin(), pt.end()), kA5Plaintext);
}

TEST(ChaCha20Poly1305, Rfc8439AppendixA5ThroughWireGuardCounterForm) {
  // This vector's nonce starts with 4 zero bytes, so it is also WireGuard's nonce for the
  // little-endian counter 0x0807060504030201.
  const auto key = hex_array<kAeadKeySize>(kA5Key);
  const ByteVec ct = hex(kA5Ciphertext);
  ByteVec pt(ct.size() - kAeadTagSize);
  ASSERT_TRUE(aead_open(key, 0x0807060504030201ull, ct, hex(kA5Ad), pt));
  EXPECT_EQ(std::string(pt.begin(), pt.end()), kA5Plaintext);
  ByteVec again(ct.size());
  ASSERT_TRUE(aead_seal(key, 0x0807060504030201ull, pt, hex(kA5Ad), again));
  EXPECT_EQ(again, ct);
  EXPECT_FALSE(aead_open(key, 0x0807060504030202ull, ct, hex(kA5Ad), pt));
}

// --- WireGuard transport messages from wg_handshake_vector.json ------------------------------

class WireGuardTransport : public ::testing::Test {
 protected:
  test::VectorFile v_{"wg_handshake_vector.json"};
};

TEST_F(WireGuardTransport, ResponderDataPacketOpensAndReseals) {
  const auto key = hex_array<kAeadKeySize>(v_.string("initiator_recv_key (=responder_send)"));
  const ByteVec msg = v_.bytes("responder_data_counter0");
  ASSERT_EQ(msg.size(), 64u);
  ASSERT_EQ(load_le32(msg.data()), 4u);  // type 4, reserved zero
  const std::uint64_t counter = load_le64(msg.data() + 8);
  EXPECT_EQ(counter, 0u);
  const ByteView body = ByteView(msg).subspan(16);
  ByteVec pt(body.size() - kAeadTagSize);
  ASSERT_TRUE(aead_open(key, counter, body, {}, pt));
  EXPECT_EQ(to_hex(pt), v_.string("responder_data_plaintext_padded"));

  ByteVec resealed(body.size());
  ASSERT_TRUE(aead_seal(key, counter, pt, {}, resealed));
  EXPECT_EQ(to_hex(resealed), to_hex(body));

  // The other direction's key must not open it.
  const auto wrong = hex_array<kAeadKeySize>(v_.string("initiator_send_key (=responder_recv)"));
  EXPECT_FALSE(aead_open(wrong, counter, body, {}, pt));
}

TEST_F(WireGuardTransport, InitiatorKeepaliveOpensToEmpty) {
  const auto key = hex_array<kAeadKeySize>(v_.string("initiator_send_key (=responder_recv)"));
  const ByteVec msg = v_.bytes("initiator_keepalive_counter0");
  ASSERT_EQ(msg.size(), 32u);
  const ByteView body = ByteView(msg).subspan(16);
  ASSERT_EQ(body.size(), kAeadTagSize);
  EXPECT_TRUE(aead_open(key, load_le64(msg.data() + 8), body, {}, std::span<std::uint8_t>()));

  std::array<std::uint8_t, kAeadTagSize> tag{};
  ASSERT_TRUE(aead_seal(key, 0, {}, {}, tag));
  EXPECT_EQ(to_hex(tag), to_hex(body));
  EXPECT_FALSE(aead_open(key, 1, body, {}, std::span<std::uint8_t>()));
}

// --- Properties ---------------------------------------------------------------------------------

std::array<std::uint8_t, kAeadKeySize> pattern_key(std::uint8_t seed) {
  std::array<std::uint8_t, kAeadKeySize> k{};
  for (std::size_t i = 0; i < k.size(); ++i) {
    k[i] = static_cast<std::uint8_t>(std::size_t{seed} * 31 + i);
  }
  return k;
}

ByteVec pattern(std::size_t n, std::uint8_t seed) {
  ByteVec v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::uint8_t>(seed + i * 13);
  }
  return v;
}

TEST(ChaCha20Poly1305, InPlaceRoundTripAllSizes) {
  const auto key = pattern_key(1);
  const ByteVec ad = ascii("header");
  for (std::size_t n : {0u,   1u,   12u,  15u,   16u,   17u,   63u,   64u,   65u,   255u,  256u,
                        511u, 512u, 513u, 1023u, 1024u, 1420u, 1440u, 4096u, 9000u, 65519u}) {
    SCOPED_TRACE(n);
    const ByteVec pt = pattern(n, static_cast<std::uint8_t>(n));
    ByteVec buf(n + kAeadTagSize);
    std::copy(pt.begin(), pt.end(), buf.begin());
    ASSERT_TRUE(aead_seal(key, 1000 + n, ByteView(buf.data(), n), ad, buf));
    // Same as sealing out of place.
    ByteVec out_of_place(n + kAeadTagSize);
    ASSERT_TRUE(aead_seal(key, 1000 + n, pt, ad, out_of_place));
    EXPECT_EQ(buf, out_of_place);
    if (n >= 16) {
      EXPECT_NE(ByteVec(buf.begin(), buf.begin() + 16), ByteVec(pt.begin(), pt.begin() + 16));
    }
    ASSERT_TRUE(aead_open(key, 1000 + n, buf, ad, std::span<std::uint8_t>(buf.data(), n)));
    EXPECT_EQ(ByteVec(buf.begin(), buf.begin() + n), pt);
  }
}

TEST(ChaCha20Poly1305, TamperingIsDetectedAndOutputIsWiped) {
  const auto key = pattern_key(2);
  const ByteVec pt = pattern(100, 9);
  const ByteVec ad = ascii("associated");
  ByteVec ct(pt.size() + kAeadTagSize);
  ASSERT_TRUE(aead_seal(key, 7, pt, ad, ct));
  ByteVec out(pt.size());
  ASSERT_TRUE(aead_open(key, 7, ct, ad, out));

  auto expect_rejected = [&](const ByteVec& c, const ByteVec& a, std::uint64_t counter,
                             const std::array<std::uint8_t, kAeadKeySize>& k) {
    ByteVec o(pt.size(), 0xee);
    EXPECT_FALSE(aead_open(k, counter, c, a, o));
    EXPECT_EQ(o, ByteVec(pt.size(), 0)) << "unauthenticated plaintext left in out";
  };
  for (std::size_t i : {std::size_t{0}, std::size_t{50}, pt.size() - 1, pt.size(), ct.size() - 1}) {
    ByteVec bad = ct;
    bad[i] ^= 0x01;
    expect_rejected(bad, ad, 7, key);
  }
  ByteVec bad_ad = ad;
  bad_ad[3] ^= 0x80;
  expect_rejected(ct, bad_ad, 7, key);
  expect_rejected(ct, {}, 7, key);
  expect_rejected(ct, ad, 8, key);
  expect_rejected(ct, ad, 7ull | (1ull << 63), key);
  auto other = key;
  other[31] ^= 1;
  expect_rejected(ct, ad, 7, other);
  // Truncated: drop the last ciphertext byte (tag now misaligned).
  ByteVec shorter(ct.begin() + 1, ct.end());
  ByteVec o(shorter.size() - kAeadTagSize);
  EXPECT_FALSE(aead_open(key, 7, shorter, ad, o));
  // And the genuine message still opens afterwards (no state left behind by the failures).
  ASSERT_TRUE(aead_open(key, 7, ct, ad, out));
  EXPECT_EQ(out, pt);
}

TEST(ChaCha20Poly1305, WrongSizesAreRefused) {
  const auto key = pattern_key(3);
  const ByteVec pt = pattern(32, 1);
  ByteVec out(pt.size() + kAeadTagSize);
  EXPECT_FALSE(aead_seal(key, 0, pt, {}, std::span(out).first(out.size() - 1)));
  ByteVec too_big(pt.size() + kAeadTagSize + 1);
  EXPECT_FALSE(aead_seal(key, 0, pt, {}, too_big));
  EXPECT_FALSE(aead_seal(key, 0, pt, {}, std::span<std::uint8_t>()));
  ASSERT_TRUE(aead_seal(key, 0, pt, {}, out));

  ByteVec small(pt.size() - 1), big(pt.size() + 1), right(pt.size());
  EXPECT_FALSE(aead_open(key, 0, out, {}, small));
  EXPECT_FALSE(aead_open(key, 0, out, {}, big));
  EXPECT_TRUE(aead_open(key, 0, out, {}, right));
  for (std::size_t n = 0; n < kAeadTagSize; ++n) {
    EXPECT_FALSE(aead_open(key, 0, ByteView(out).first(n), {}, std::span<std::uint8_t>()));
  }
}

TEST(ChaCha20Poly1305, PartialOverlapIsRefused) {
  const auto key = pattern_key(4);
  ByteVec buf(200);
  // out starts one byte after the plaintext: overlapping but not in place.
  EXPECT_FALSE(aead_seal(key, 0, ByteView(buf.data(), 100), {},
                         std::span<std::uint8_t>(buf.data() + 1, 116)));
  EXPECT_FALSE(aead_seal(key, 0, ByteView(buf.data() + 1, 100), {},
                         std::span<std::uint8_t>(buf.data(), 116)));
  // Adjacent, not overlapping: fine.
  EXPECT_TRUE(aead_seal(key, 0, ByteView(buf.data(), 50), {},
                        std::span<std::uint8_t>(buf.data() + 50, 66)));
  ASSERT_TRUE(
      aead_seal(key, 0, ByteView(buf.data(), 100), {}, std::span<std::uint8_t>(buf.data(), 116)));
  EXPECT_FALSE(aead_open(key, 0, ByteView(buf.data(), 116), {},
                         std::span<std::uint8_t>(buf.data() + 16, 100)));
  EXPECT_TRUE(
      aead_open(key, 0, ByteView(buf.data(), 116), {}, std::span<std::uint8_t>(buf.data(), 100)));
}

TEST(ChaCha20Poly1305, WipingThreadKeysKeepsResultsCorrect) {
  const auto key = pattern_key(6);
  const ByteVec pt = pattern(300, 4);
  ByteVec first(pt.size() + kAeadTagSize), second(pt.size() + kAeadTagSize);
  ASSERT_TRUE(aead_seal(key, 3, pt, {}, first));
  ByteVec out(pt.size());
  ASSERT_TRUE(aead_open(key, 3, first, {}, out));
  aead_wipe_thread_keys();
  aead_wipe_thread_keys();  // idempotent
  // The next calls must key the contexts again rather than use the wiped (zero) key.
  ASSERT_TRUE(aead_seal(key, 3, pt, {}, second));
  EXPECT_EQ(first, second);
  ASSERT_TRUE(aead_open(key, 3, second, {}, out));
  EXPECT_EQ(out, pt);
  // And an all-zero key, the value the contexts were wiped with, still works as a real key.
  const std::array<std::uint8_t, kAeadKeySize> zero{};
  ASSERT_TRUE(aead_seal(zero, 3, pt, {}, second));
  EXPECT_NE(first, second);
  ASSERT_TRUE(aead_open(zero, 3, second, {}, out));
  EXPECT_EQ(out, pt);
}

// Differential test against libsodium's independent ChaCha20-Poly1305-IETF, interleaving keys,
// directions and sizes so that reuse of the per-thread contexts (cached key, nonce-only
// re-initialisation) is exercised.
void differential_against_libsodium(unsigned seed, int rounds) {
  ASSERT_GE(sodium_init(), 0);
  std::mt19937 rng(seed);
  std::array<std::array<std::uint8_t, kAeadKeySize>, 3> keys{};
  for (auto& k : keys) {
    for (auto& b : k) {
      b = static_cast<std::uint8_t>(rng());
    }
  }
  for (int round = 0; round < rounds; ++round) {
    const auto& key = keys[rng() % keys.size()];
    const std::uint64_t counter = (static_cast<std::uint64_t>(rng()) << 32) | rng();
    const std::size_t n = rng() % 1500;
    const std::size_t ad_len = rng() % 3 == 0 ? rng() % 40 : 0;
    ByteVec pt(n), ad(ad_len);
    for (auto& b : pt) {
      b = static_cast<std::uint8_t>(rng());
    }
    for (auto& b : ad) {
      b = static_cast<std::uint8_t>(rng());
    }
    std::uint8_t nonce[12] = {};
    store_le64(nonce + 4, counter);

    ByteVec ours(n + kAeadTagSize), theirs(n + kAeadTagSize);
    ASSERT_TRUE(aead_seal(key, counter, pt, ad, ours));
    unsigned long long len = 0;
    ASSERT_EQ(
        crypto_aead_chacha20poly1305_ietf_encrypt(theirs.data(), &len, pt.data(), n, ad.data(),
                                                  ad.size(), nullptr, nonce, key.data()),
        0);
    ASSERT_EQ(ours, theirs) << "round " << round << " size " << n;
    ByteVec back(n);
    ASSERT_TRUE(aead_open(key, counter, theirs, ad, back));
    ASSERT_EQ(back, pt);
    if (n > 0 && round % 5 == 0) {
      theirs[rng() % theirs.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
      ASSERT_FALSE(aead_open(key, counter, theirs, ad, back));
    }
  }
}

TEST(ChaCha20Poly1305, MatchesLibsodium) {
  differential_against_libsodium(12345, 2000);
}

TEST(ChaCha20Poly1305, ThreadsDoNotShareState) {
  // gtest records assertion failures from any thread against the running test.
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([t] { differential_against_libsodium(1000 + t, 500); });
  }
  for (auto& th : threads) {
    th.join();
  }
}

// --- XChaCha20-Poly1305 -------------------------------------------------------------------------

const char kXChaChaA31Ciphertext[] =
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda"
    "7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b23835"
    "65d3fff921f9664c97637da9768812f615c68b13b52e";

TEST(XChaCha20Poly1305, DraftA31Vector) {
  const auto key = key_80_9f();
  std::array<std::uint8_t, kXNonceSize> nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = static_cast<std::uint8_t>(0x40 + i);
  }
  const ByteVec ad = hex("50515253c0c1c2c3c4c5c6c7");
  const ByteVec pt = ascii(kSunscreen);
  ByteVec out(pt.size() + kAeadTagSize);
  ASSERT_TRUE(xaead_seal(key, nonce, pt, ad, out));
  EXPECT_EQ(to_hex(ByteView(out).first(pt.size())), kXChaChaA31Ciphertext);
  EXPECT_EQ(to_hex(ByteView(out).subspan(pt.size())), "c0875924c1c7987947deafd8780acf49");

  ByteVec back(pt.size());
  ASSERT_TRUE(xaead_open(key, nonce, out, ad, back));
  EXPECT_EQ(back, pt);

  for (std::size_t i : {std::size_t{0}, pt.size() - 1, pt.size(), out.size() - 1}) {
    ByteVec bad = out;
    bad[i] ^= 0x04;
    ByteVec o(pt.size(), 0xee);
    EXPECT_FALSE(xaead_open(key, nonce, bad, ad, o));
    EXPECT_EQ(o, ByteVec(pt.size(), 0));
  }
  ByteVec o(pt.size());
  EXPECT_FALSE(xaead_open(key, nonce, out, {}, o));
  auto other_nonce = nonce;
  other_nonce[23] ^= 1;  // the part that becomes the inner ChaCha20 nonce
  EXPECT_FALSE(xaead_open(key, other_nonce, out, ad, o));
  other_nonce = nonce;
  other_nonce[0] ^= 1;  // the part that goes into HChaCha20
  EXPECT_FALSE(xaead_open(key, other_nonce, out, ad, o));
}

TEST(XChaCha20Poly1305, WireGuardCookieReply) {
  test::VectorFile v("wg_handshake_vector.json");
  const ByteVec reply = v.bytes("cookie_reply");
  const ByteVec initiation = v.bytes("initiation");
  ASSERT_EQ(reply.size(), 64u);
  ASSERT_EQ(load_le32(reply.data()), 3u);
  const auto key = hex_array<kAeadKeySize>(v.string("cookie_encryption_key (HASH(cookie--||S_r))"));
  std::array<std::uint8_t, kXNonceSize> nonce{};
  std::copy(reply.begin() + 8, reply.begin() + 32, nonce.begin());
  const ByteView mac1 = ByteView(initiation).subspan(116, 16);
  std::array<std::uint8_t, 16> cookie{};
  ASSERT_TRUE(xaead_open(key, nonce, ByteView(reply).subspan(32), mac1, cookie));
  EXPECT_EQ(to_hex(cookie), v.string("cookie"));

  ByteVec resealed(32);
  ASSERT_TRUE(xaead_seal(key, nonce, cookie, mac1, resealed));
  EXPECT_EQ(to_hex(resealed), to_hex(ByteView(reply).subspan(32)));
}

TEST(XChaCha20Poly1305, InPlaceAndSizes) {
  const auto key = pattern_key(5);
  const auto nonce = hex_array<kXNonceSize>("000102030405060708090a0b0c0d0e0f1011121314151617");
  const ByteVec pt = pattern(77, 3);
  ByteVec buf(pt.size() + kAeadTagSize);
  std::copy(pt.begin(), pt.end(), buf.begin());
  ASSERT_TRUE(xaead_seal(key, nonce, ByteView(buf.data(), pt.size()), {}, buf));
  ByteVec copy(buf.size());
  ASSERT_TRUE(xaead_seal(key, nonce, pt, {}, copy));
  EXPECT_EQ(buf, copy);
  ASSERT_TRUE(xaead_open(key, nonce, buf, {}, std::span<std::uint8_t>(buf.data(), pt.size())));
  EXPECT_EQ(ByteVec(buf.begin(), buf.begin() + pt.size()), pt);

  ByteVec wrong(pt.size());
  EXPECT_FALSE(xaead_seal(key, nonce, pt, {}, wrong));
  EXPECT_FALSE(xaead_open(key, nonce, ByteView(copy).first(15), {}, std::span<std::uint8_t>()));
  ByteVec o(pt.size() + 1);
  EXPECT_FALSE(xaead_open(key, nonce, copy, {}, o));
  EXPECT_FALSE(xaead_seal(key, nonce, ByteView(buf.data(), 50), {},
                          std::span<std::uint8_t>(buf.data() + 2, 66)));

  std::array<std::uint8_t, kAeadTagSize> tag{};
  ASSERT_TRUE(xaead_seal(key, nonce, {}, {}, tag));
  EXPECT_TRUE(xaead_open(key, nonce, tag, {}, std::span<std::uint8_t>()));
}

}  // namespace
}  // namespace warren::crypto

namespace warren::crypto {
namespace {

// Issue 12 (8): a session key cached by another thread's context must not outlive its keypair
// in that thread once the keypair is destroyed (the worker wipes before it goes to sleep).
TEST(ChaCha20Poly1305, RetiredKeysAreWipedFromOtherThreads) {
  const auto key = pattern_key(9);
  const ByteVec pt = pattern(64, 1);
  std::mutex mu;
  std::condition_variable cv;
  int step = 0;
  bool held_before = false, held_after_retire = false, held_after_wipe = false;
  std::thread worker([&] {
    ByteVec ct(pt.size() + kAeadTagSize);
    ASSERT_TRUE(aead_seal(key, 0, pt, {}, ct));
    held_before = aead_thread_holds_key();
    std::unique_lock lock(mu);
    step = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return step == 2; });  // the keypair is destroyed meanwhile
    held_after_retire = aead_thread_holds_key();
    aead_wipe_thread_keys_if_retired();  // what a worker does before it blocks
    held_after_wipe = aead_thread_holds_key();
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return step == 1; });
    aead_retire_keys();  // ~Keypair on this thread
    step = 2;
    cv.notify_all();
  }
  worker.join();
  EXPECT_TRUE(held_before);
  EXPECT_TRUE(held_after_retire);  // nothing reaches into another thread by itself ...
  EXPECT_FALSE(held_after_wipe);   // ... until it checks
}

TEST(ChaCha20Poly1305, WipeIfRetiredKeepsCurrentKeys) {
  const auto key = pattern_key(10);
  const ByteVec pt = pattern(64, 2);
  ByteVec ct(pt.size() + kAeadTagSize), again(pt.size() + kAeadTagSize);
  aead_retire_keys();
  ASSERT_TRUE(aead_seal(key, 1, pt, {}, ct));
  aead_wipe_thread_keys_if_retired();  // keyed after the last retirement: kept
  EXPECT_TRUE(aead_thread_holds_key());
  aead_retire_keys();
  // A context keyed before a retirement re-keys on its next use and still computes correctly.
  ASSERT_TRUE(aead_seal(key, 1, pt, {}, again));
  EXPECT_EQ(ct, again);
  aead_wipe_thread_keys();
  EXPECT_FALSE(aead_thread_holds_key());
}

}  // namespace
}  // namespace warren::crypto
