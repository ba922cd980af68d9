#include "crypto/x25519.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "base/encoding.h"
#include "crypto/random.h"
#include "unit/crypto/test_util.h"

namespace warren::crypto {
namespace {

PrivateKey private_from_hex(std::string_view text) {
  PrivateKey k;
  if (!secret_from_hex(text, k)) {
    throw std::invalid_argument("bad private key hex");
  }
  return k;
}

PublicKey public_from_hex(std::string_view text) {
  auto k = PublicKey::from_hex(text);
  if (!k) {
    throw std::invalid_argument("bad public key hex");
  }
  return *k;
}

// A RandomSource that hands out a fixed byte, to check clamping deterministically.
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(std::uint8_t b) : b_(b) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& x : out) {
      x = b_;
    }
  }

 private:
  std::uint8_t b_;
};

// --- RFC 7748 ----------------------------------------------------------------------------------

TEST(X25519, Rfc7748Section52Vector1) {
  const PrivateKey scalar =
      private_from_hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4");
  const PublicKey u =
      public_from_hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c");
  SharedSecret out;
  ASSERT_TRUE(x25519(scalar, u, out));
  EXPECT_EQ(secret_to_hex(out), "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

class Rfc7748AliceBob : public ::testing::Test {
 protected:
  test::VectorFile v_{"wg_handshake_vector.json"};
  // RFC 7748 §6.1 Alice and Bob are the vector's static keys (vectors README §2).
  PrivateKey alice_ = private_from_hex(v_.string("initiator_static_private"));
  PrivateKey bob_ = private_from_hex(v_.string("responder_static_private"));
};

TEST_F(Rfc7748AliceBob, PublicKeys) {
  EXPECT_EQ(derive_public_key(alice_).to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(derive_public_key(bob_).to_hex(),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  EXPECT_EQ(derive_public_key(alice_).to_hex(), v_.string("initiator_static_public"));
}

TEST_F(Rfc7748AliceBob, SharedSecretBothWays) {
  SharedSecret ab, ba;
  ASSERT_TRUE(x25519(alice_, derive_public_key(bob_), ab));
  ASSERT_TRUE(x25519(bob_, derive_public_key(alice_), ba));
  EXPECT_EQ(secret_to_hex(ab), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(secret_to_hex(ba), secret_to_hex(ab));
}

TEST_F(Rfc7748AliceBob, EphemeralKeysOfTheVector) {
  EXPECT_EQ(derive_public_key(private_from_hex(v_.string("initiator_ephemeral_private"))).to_hex(),
            v_.string("initiator_ephemeral_public"));
  EXPECT_EQ(derive_public_key(private_from_hex(v_.string("responder_ephemeral_private"))).to_hex(),
            v_.string("responder_ephemeral_public"));
}

// RFC 7748 §5.2 iterated test: k = u = 9; repeat (k, u) := (X25519(k, u), k).
std::string iterate(int iterations) {
  PrivateKey k;
  k.data()[0] = 9;
  PublicKey u;
  u.bytes[0] = 9;
  for (int i = 0; i < iterations; ++i) {
    SharedSecret r;
    if (!x25519(k, u, r)) {
      return "x25519 failed";
    }
    std::copy(k.data(), k.data() + kKeySize, u.bytes.begin());
    k = r;
  }
  return secret_to_hex(k);
}

TEST(X25519, Rfc7748IteratedOnce) {
  EXPECT_EQ(iterate(1), "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
}

TEST(X25519, Rfc7748IteratedThousandTimes) {
  // The 1,000,000-iteration variant takes ~30 s here and adds nothing the 1,000 one lacks.
  EXPECT_EQ(iterate(1000), "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

// --- Low-order points ---------------------------------------------------------------------------

TEST(X25519, LowOrderPublicKeysAreRejected) {
  // The 7 keys of the kernel netns.sh test (wireguard-protocol.md §3.1 #17): 0, 1, the two
  // order-8 points, p-1, p and p+1.
  const char* const keys[] = {
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=",
      "X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=",
      "7P///////////////////////////////////////38=",
      "7f///////////////////////////////////////38=",
      "7v///////////////////////////////////////38=",
  };
  const PrivateKey priv = generate_private_key(SystemRandom::instance());
  for (const char* b64 : keys) {
    SCOPED_TRACE(b64);
    auto pub = PublicKey::from_base64(b64);
    ASSERT_TRUE(pub.has_value());
    SharedSecret out;
    out.data()[0] = 0xaa;  // must be wiped on failure
    EXPECT_FALSE(x25519(priv, *pub, out));
    EXPECT_TRUE(out.is_zero());

    // RFC 7748 ignores the top bit of u, so the same points with it set are rejected too.
    PublicKey high = *pub;
    high.bytes[31] |= 0x80;
    EXPECT_FALSE(x25519(priv, high, out));
  }
}

TEST(X25519, RandomKeysAgree) {
  for (int i = 0; i < 20; ++i) {
    const PrivateKey a = generate_private_key(SystemRandom::instance());
    const PrivateKey b = generate_private_key(SystemRandom::instance());
    SharedSecret ab, ba;
    ASSERT_TRUE(x25519(a, derive_public_key(b), ab));
    ASSERT_TRUE(x25519(b, derive_public_key(a), ba));
    EXPECT_EQ(secret_to_hex(ab), secret_to_hex(ba));
    EXPECT_FALSE(ab.is_zero());
  }
}

TEST(X25519, OutputMayAliasPrivateKey) {
  const PrivateKey bob =
      private_from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  PrivateKey k =
      private_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  ASSERT_TRUE(x25519(k, derive_public_key(bob), k));
  EXPECT_EQ(secret_to_hex(k), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST(X25519, ClampingDoesNotChangeResults) {
  // X25519 clamps internally, so a key and its clamped form are the same key.
  PrivateKey raw;
  SystemRandom::instance().fill(raw.span());
  raw.data()[0] |= 7;
  raw.data()[31] |= 0x80;
  PrivateKey clamped = raw;
  clamp(clamped);
  EXPECT_NE(secret_to_hex(raw), secret_to_hex(clamped));
  EXPECT_EQ(derive_public_key(raw), derive_public_key(clamped));
}

// --- Key handling -------------------------------------------------------------------------------

TEST(Keys, ClampBits) {
  PrivateKey ones;
  std::fill(ones.data(), ones.data() + kKeySize, 0xff);
  clamp(ones);
  EXPECT_EQ(ones.data()[0], 0xf8);
  EXPECT_EQ(ones.data()[31], 0x7f);
  for (std::size_t i = 1; i < 31; ++i) {
    EXPECT_EQ(ones.data()[i], 0xff);
  }

  PrivateKey zeros;
  clamp(zeros);
  EXPECT_EQ(zeros.data()[0], 0x00);
  EXPECT_EQ(zeros.data()[31], 0x40);

  // netns.sh #17: take a clamped key, replace its first base64 character with '/' (which sets
  // byte 0's low bits); after clamping it reads back with '+' and is otherwise unchanged.
  const std::string key1 = secret_to_base64(generate_private_key(SystemRandom::instance()));
  PrivateKey k;
  ASSERT_TRUE(secret_from_base64("/" + key1.substr(1), k));
  clamp(k);
  EXPECT_EQ(secret_to_base64(k), "+" + key1.substr(1));
}

TEST(Keys, GeneratedKeysAreClampedAndFresh) {
  FixedRandom ff(0xff);
  const PrivateKey k = generate_private_key(ff);
  EXPECT_EQ(k.data()[0], 0xf8);
  EXPECT_EQ(k.data()[31], 0x7f);
  FixedRandom zero(0);
  EXPECT_EQ(generate_private_key(zero).data()[31], 0x40);

  std::unordered_set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    const PrivateKey r = generate_private_key(SystemRandom::instance());
    EXPECT_EQ(r.data()[0] & 7, 0);
    EXPECT_EQ(r.data()[31] & 0xc0, 0x40);
    EXPECT_TRUE(seen.insert(secret_to_hex(r)).second);
  }
}

TEST(Keys, PublicKeyEncodings) {
  const std::string b64 = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
  auto k = PublicKey::from_base64(b64);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->to_hex(), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(k->to_base64(), b64);
  auto h = PublicKey::from_hex(k->to_hex());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(*h, *k);
  auto upper =
      PublicKey::from_hex("8520F0098930A754748B7DDCB43EF75A0DBF3A0D26381AF4EBA4A98EAA9B4E6A");
  ASSERT_TRUE(upper.has_value());
  EXPECT_EQ(*upper, *k);
  EXPECT_FALSE(k->is_zero());
  EXPECT_TRUE(PublicKey{}.is_zero());
  EXPECT_EQ(std::hash<PublicKey>{}(*k), std::hash<PublicKey>{}(*h));
}

TEST(Keys, MalformedEncodingsAreRejected) {
  const std::string good = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
  EXPECT_FALSE(PublicKey::from_base64(""));
  EXPECT_FALSE(PublicKey::from_base64(good.substr(0, 43)));  // no padding
  EXPECT_FALSE(PublicKey::from_base64(good + "="));          // too long
  EXPECT_FALSE(PublicKey::from_base64("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp="));  // bits
  EXPECT_FALSE(PublicKey::from_base64("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm!="));
  EXPECT_FALSE(PublicKey::from_base64("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb=mo="));
  EXPECT_FALSE(PublicKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));  // 31 B
  EXPECT_FALSE(PublicKey::from_hex("8520f0"));
  EXPECT_FALSE(PublicKey::from_hex(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6"));  // 63 chars
  EXPECT_FALSE(PublicKey::from_hex(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6g"));  // non-hex
  EXPECT_FALSE(PublicKey::from_hex(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a00"));  // 33 B
}

TEST(Keys, SecretEncodingsRoundTripAndFailuresLeaveOutputAlone) {
  const PrivateKey k =
      private_from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const std::string b64 = secret_to_base64(k);
  EXPECT_EQ(b64, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
  PrivateKey back;
  ASSERT_TRUE(secret_from_base64(b64, back));
  EXPECT_EQ(secret_to_hex(back), secret_to_hex(k));
  PrivateKey from_hex;
  ASSERT_TRUE(secret_from_hex(secret_to_hex(k), from_hex));
  EXPECT_EQ(secret_to_base64(from_hex), b64);

  PrivateKey untouched = k;
  EXPECT_FALSE(secret_from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo", untouched));
  EXPECT_FALSE(secret_from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=", untouched));
  EXPECT_FALSE(secret_from_hex("zz", untouched));
  EXPECT_EQ(secret_to_hex(untouched), secret_to_hex(k));
}

// --- SystemRandom -------------------------------------------------------------------------------

TEST(SystemRandomTest, FillsAndDiffers) {
  std::array<std::uint8_t, 32> a{}, b{};
  SystemRandom::instance().fill(a);
  SystemRandom::instance().fill(b);
  EXPECT_NE(a, b);
  EXPECT_FALSE(constant_time_is_zero(a));
  // Large fills and empty fills are fine.
  std::vector<std::uint8_t> big(1 << 20);
  SystemRandom::instance().fill(big);
  std::size_t zeros = 0;
  for (auto x : big) {
    zeros += x == 0;
  }
  // ~4096 expected for uniform bytes; a wildly different count means a broken fill.
  EXPECT_GT(zeros, 3000u);
  EXPECT_LT(zeros, 5200u);
  SystemRandom::instance().fill(std::span<std::uint8_t>());
  EXPECT_EQ(&SystemRandom::instance(), &SystemRandom::instance());
}

}  // namespace
}  // namespace warren::crypto
