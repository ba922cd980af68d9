#include "base/encoding.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace warren {
namespace {

using ByteVec = std::vector<std::uint8_t>;

ByteVec ascii(std::string_view s) {
  return ByteVec(s.begin(), s.end());
}

// --- hex ---------------------------------------------------------------------------------------

TEST(Hex, EncodesLowercase) {
  EXPECT_EQ(to_hex(ByteVec{}), "");
  EXPECT_EQ(to_hex(ByteVec{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}), "00017f80abff");
}

TEST(Hex, DecodesEitherCaseIntoExactSize) {
  std::array<std::uint8_t, 3> out{};
  ASSERT_TRUE(from_hex("aBcDeF", out));
  EXPECT_EQ(out, (std::array<std::uint8_t, 3>{0xab, 0xcd, 0xef}));
  ASSERT_TRUE(from_hex("000fF0", out));
  EXPECT_EQ(out, (std::array<std::uint8_t, 3>{0x00, 0x0f, 0xf0}));
  std::array<std::uint8_t, 0> none{};
  EXPECT_TRUE(from_hex("", none));
}

TEST(Hex, RejectsWrongLengthAndBadDigits) {
  std::array<std::uint8_t, 3> out{};
  EXPECT_FALSE(from_hex("abcd", out));      // too short
  EXPECT_FALSE(from_hex("abcdef00", out));  // too long
  EXPECT_FALSE(from_hex("abcde", out));     // odd
  EXPECT_FALSE(from_hex("abcdeg", out));
  EXPECT_FALSE(from_hex("ab cd ", out));
  EXPECT_FALSE(from_hex("0xabcd", out));
  EXPECT_FALSE(from_hex("abcd-f", out));
}

TEST(Hex, VectorOverload) {
  auto v = from_hex("deadBEEF");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, (ByteVec{0xde, 0xad, 0xbe, 0xef}));
  auto empty = from_hex("");
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(from_hex("abc").has_value());
  EXPECT_FALSE(from_hex("zz").has_value());
}

TEST(Hex, RoundTripsRandomData) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n < 70; ++n) {
    ByteVec data(n);
    for (auto& b : data) {
      b = static_cast<std::uint8_t>(rng());
    }
    const std::string text = to_hex(data);
    ASSERT_EQ(text.size(), 2 * n);
    ByteVec back(n);
    ASSERT_TRUE(from_hex(text, back));
    EXPECT_EQ(back, data);
  }
}

// --- base64 ------------------------------------------------------------------------------------

TEST(Base64, Rfc4648TestVectors) {
  EXPECT_EQ(to_base64(ascii("")), "");
  EXPECT_EQ(to_base64(ascii("f")), "Zg==");
  EXPECT_EQ(to_base64(ascii("fo")), "Zm8=");
  EXPECT_EQ(to_base64(ascii("foo")), "Zm9v");
  EXPECT_EQ(to_base64(ascii("foob")), "Zm9vYg==");
  EXPECT_EQ(to_base64(ascii("fooba")), "Zm9vYmE=");
  EXPECT_EQ(to_base64(ascii("foobar")), "Zm9vYmFy");
  for (std::string_view s : {"f", "fo", "foo", "foob", "fooba", "foobar"}) {
    ByteVec out(s.size());
    ASSERT_TRUE(from_base64(to_base64(ascii(s)), out)) << s;
    EXPECT_EQ(out, ascii(s));
  }
}

TEST(Base64, UsesStandardAlphabet) {
  EXPECT_EQ(to_base64(ByteVec{0xfb, 0xff, 0xbf}), "+/+/");
  ByteVec out(3);
  ASSERT_TRUE(from_base64("+/+/", out));
  EXPECT_EQ(out, (ByteVec{0xfb, 0xff, 0xbf}));
  EXPECT_FALSE(from_base64("-_-_", out));  // URL-safe alphabet is not accepted
}

TEST(Base64, KeySizedRoundTrip) {
  std::mt19937 rng(11);
  for (int i = 0; i < 50; ++i) {
    std::array<std::uint8_t, 32> key{};
    for (auto& b : key) {
      b = static_cast<std::uint8_t>(rng());
    }
    const std::string text = to_base64(key);
    ASSERT_EQ(text.size(), 44u);
    EXPECT_EQ(text.back(), '=');
    std::array<std::uint8_t, 32> back{};
    ASSERT_TRUE(from_base64(text, back));
    EXPECT_EQ(back, key);
  }
}

TEST(Base64, RefusesNonCanonicalTrailingBits) {
  // 32 bytes = 256 bits in 43 characters (258 bits): the last character's 2 low bits must be 0.
  std::array<std::uint8_t, 32> out{};
  const std::string zero(43, 'A');
  EXPECT_TRUE(from_base64(zero + "=", out));
  EXPECT_FALSE(from_base64(zero.substr(0, 42) + "B=", out));
  EXPECT_FALSE(from_base64(zero.substr(0, 42) + "D=", out));
  EXPECT_TRUE(from_base64(zero.substr(0, 42) + "E=", out));
  // "AAE=": E = 000100; its top 4 bits end byte 31 (0x01), its low 2 bits are the spare ones.
  EXPECT_EQ(out[31], 0x01);
  // One byte in "XX==": the second character's 4 low bits must be 0.
  std::array<std::uint8_t, 1> one{};
  EXPECT_TRUE(from_base64("Zg==", one));
  EXPECT_FALSE(from_base64("Zh==", one));
  EXPECT_FALSE(from_base64("Zv==", one));
}

TEST(Base64, RefusesMalformedInput) {
  std::array<std::uint8_t, 32> out{};
  const std::string good = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
  ASSERT_TRUE(from_base64(good, out));
  EXPECT_FALSE(from_base64(good.substr(0, 43), out));  // missing padding
  EXPECT_FALSE(from_base64(good + "====", out));       // too long
  EXPECT_FALSE(from_base64("", out));
  std::string bad = good;
  bad[10] = '*';
  EXPECT_FALSE(from_base64(bad, out));
  bad = good;
  bad[40] = '=';  // padding in the middle
  EXPECT_FALSE(from_base64(bad, out));
  bad = good;
  bad[0] = ' ';
  EXPECT_FALSE(from_base64(bad, out));
  std::array<std::uint8_t, 31> shorter{};
  EXPECT_FALSE(from_base64(good, shorter));  // text encodes 32 bytes
  std::array<std::uint8_t, 33> longer{};
  EXPECT_FALSE(from_base64(good, longer));
  std::array<std::uint8_t, 2> two{};
  EXPECT_FALSE(from_base64("Zg==", two));  // "Zg==" is one byte, not two
  EXPECT_FALSE(from_base64("Z===", two));
}

// RFC 4648 §10 test vectors, unpadded; the url alphabet only differs in 62/63.
TEST(Base64Url, EncodesRfcVectorsWithoutPadding) {
  auto enc = [](std::string_view s) {
    return to_base64url(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg");
  EXPECT_EQ(enc("fo"), "Zm8");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foob"), "Zm9vYg");
  EXPECT_EQ(enc("fooba"), "Zm9vYmE");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
  const std::vector<std::uint8_t> high = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(to_base64url(high), "-_-_");
  EXPECT_EQ(to_base64(high), "+/+/");
}

TEST(Base64Url, RoundTripsEveryLength) {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n <= 100; ++n) {
    std::vector<std::uint8_t> b(n);
    for (auto& x : b)
      x = static_cast<std::uint8_t>(rng());
    auto s = to_base64url(b);
    EXPECT_EQ(s.find_first_of("+/="), std::string::npos) << s;
    EXPECT_EQ(s.size(), (n * 4 + 2) / 3);
    auto back = from_base64url(s);
    ASSERT_TRUE(back) << "length " << n << ": " << s;
    EXPECT_EQ(*back, b);
  }
}

TEST(Base64Url, RefusesNonCanonicalTrailingBits) {
  ASSERT_TRUE(from_base64url("Zg"));
  EXPECT_FALSE(from_base64url("Zh"));  // low 4 bits of 'h' would be dropped
  ASSERT_TRUE(from_base64url("Zm8"));
  EXPECT_FALSE(from_base64url("Zm9"));  // low 2 bits of '9' would be dropped
}

TEST(Base64Url, RefusesCharactersOutsideTheAlphabet) {
  EXPECT_FALSE(from_base64url("Zm9v+A"));  // standard alphabet's 62
  EXPECT_FALSE(from_base64url("Zm9v/A"));  // standard alphabet's 63
  EXPECT_FALSE(from_base64url("Zg=="));    // padding
  EXPECT_FALSE(from_base64url("Zm 9"));
  EXPECT_FALSE(from_base64url("!!!!"));
  std::array<std::uint8_t, 3> out{};
  EXPECT_FALSE(from_base64("-_-_", out));  // and the other way round
  ASSERT_TRUE(from_base64("+/+/", out));
}

TEST(Base64Url, RefusesLengthOneModFour) {
  EXPECT_FALSE(from_base64url("Z"));
  EXPECT_FALSE(from_base64url("Zm9vY"));
  EXPECT_FALSE(from_base64url("Zm9vYmFyA"));
  auto empty = from_base64url("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace warren
