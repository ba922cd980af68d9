#include "base/secure.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

namespace warren {
namespace {

TEST(SecureZero, ZeroesExactlyTheRange) {
  std::array<std::uint8_t, 16> buf{};
  buf.fill(0xab);
  secure_zero(buf.data() + 4, 8);
  for (std::size_t i = 0; i < buf.size(); ++i) {
    EXPECT_EQ(buf[i], (i >= 4 && i < 12) ? 0 : 0xab) << i;
  }
  secure_zero(buf.data(), 0);  // no-op
  EXPECT_EQ(buf[0], 0xab);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  const std::vector<std::uint8_t> a{1, 2, 3, 4}, b{1, 2, 3, 4}, c{1, 2, 3, 5}, d{0, 2, 3, 4};
  EXPECT_TRUE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, d));
  EXPECT_FALSE(constant_time_equal(a, std::span(b).first(3)));
  EXPECT_TRUE(constant_time_equal({}, {}));
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto e = a;
      e[i] ^= static_cast<std::uint8_t>(1u << bit);
      EXPECT_FALSE(constant_time_equal(a, e)) << i << ":" << bit;
    }
  }
}

TEST(ConstantTimeIsZero, DetectsAnySetBit) {
  std::array<std::uint8_t, 32> z{};
  EXPECT_TRUE(constant_time_is_zero(z));
  EXPECT_TRUE(constant_time_is_zero({}));
  for (std::size_t i = 0; i < z.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto x = z;
      x[i] = static_cast<std::uint8_t>(1u << bit);
      EXPECT_FALSE(constant_time_is_zero(x)) << i << ":" << bit;
    }
  }
}

TEST(SecretTest, DefaultIsZeroAndConstructsFromSpan) {
  Secret<32> s;
  EXPECT_TRUE(s.is_zero());
  EXPECT_EQ(s.size(), 32u);
  std::array<std::uint8_t, 32> src{};
  for (std::size_t i = 0; i < src.size(); ++i) {
    src[i] = static_cast<std::uint8_t>(i + 1);
  }
  Secret<32> t(src);
  EXPECT_FALSE(t.is_zero());
  EXPECT_EQ(std::memcmp(t.data(), src.data(), 32), 0);
  EXPECT_TRUE(constant_time_equal(t.span(), src));
}

TEST(SecretTest, CopyAndAssignCopyBytes) {
  std::array<std::uint8_t, 16> src{};
  src.fill(0x5a);
  const Secret<16> a(src);
  Secret<16> b(a);
  EXPECT_TRUE(constant_time_equal(a.span(), b.span()));
  Secret<16> c;
  c = a;
  EXPECT_TRUE(constant_time_equal(a.span(), c.span()));
  c.data()[0] = 0;  // independent storage
  EXPECT_EQ(a.data()[0], 0x5a);
}

TEST(SecretTest, ClearZeroes) {
  std::array<std::uint8_t, 32> src{};
  src.fill(0xff);
  Secret<32> s(src);
  ASSERT_FALSE(s.is_zero());
  s.clear();
  EXPECT_TRUE(s.is_zero());
  for (std::size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s.data()[i], 0) << i;
  }
}

TEST(SecretTest, DestructorWipesStorage) {
  // Construct in caller-owned storage, destroy explicitly, then inspect the raw bytes (the
  // storage outlives the object, so reading it is well defined).
  alignas(Secret<32>) unsigned char storage[sizeof(Secret<32>)];
  std::array<std::uint8_t, 32> src{};
  src.fill(0xc3);
  auto* s = new (storage) Secret<32>(src);
  ASSERT_EQ(s->data()[0], 0xc3);
  s->~Secret<32>();
  for (std::size_t i = 0; i < sizeof storage; ++i) {
    EXPECT_EQ(storage[i], 0) << i;
  }
}

}  // namespace
}  // namespace warren
