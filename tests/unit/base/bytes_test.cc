#include "base/bytes.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

namespace warren {
namespace {

TEST(ByteOrder, LittleEndianLayout) {
  std::array<std::uint8_t, 8> b{};
  store_le16(b.data(), 0x1234);
  EXPECT_EQ(b[0], 0x34);
  EXPECT_EQ(b[1], 0x12);
  store_le32(b.data(), 0x11223344u);
  EXPECT_EQ(b, (std::array<std::uint8_t, 8>{0x44, 0x33, 0x22, 0x11, 0x00, 0x00, 0x00, 0x00}));
  store_le64(b.data(), 0x0102030405060708ull);
  EXPECT_EQ(b, (std::array<std::uint8_t, 8>{8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(load_le16(b.data()), 0x0708);
  EXPECT_EQ(load_le32(b.data()), 0x05060708u);
  EXPECT_EQ(load_le64(b.data()), 0x0102030405060708ull);
}

TEST(ByteOrder, BigEndianLayout) {
  std::array<std::uint8_t, 8> b{};
  store_be16(b.data(), 0x1234);
  EXPECT_EQ(b[0], 0x12);
  EXPECT_EQ(b[1], 0x34);
  store_be32(b.data(), 0x11223344u);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(b[3], 0x44);
  store_be64(b.data(), 0x0102030405060708ull);
  EXPECT_EQ(b, (std::array<std::uint8_t, 8>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(load_be16(b.data()), 0x0102);
  EXPECT_EQ(load_be32(b.data()), 0x01020304u);
  EXPECT_EQ(load_be64(b.data()), 0x0102030405060708ull);
}

TEST(ByteOrder, HighBitsSurvive) {
  // Catches sign-extension and shift-width mistakes in the helpers.
  std::array<std::uint8_t, 8> b{};
  for (std::uint64_t v :
       {0xffffffffffffffffull, 0x8000000000000000ull, 0x80000000ull, 0xfedcba9876543210ull}) {
    store_le64(b.data(), v);
    EXPECT_EQ(load_le64(b.data()), v);
    store_be64(b.data(), v);
    EXPECT_EQ(load_be64(b.data()), v);
    store_le32(b.data(), static_cast<std::uint32_t>(v));
    EXPECT_EQ(load_le32(b.data()), static_cast<std::uint32_t>(v));
    store_be32(b.data(), static_cast<std::uint32_t>(v));
    EXPECT_EQ(load_be32(b.data()), static_cast<std::uint32_t>(v));
    store_le16(b.data(), static_cast<std::uint16_t>(v));
    EXPECT_EQ(load_le16(b.data()), static_cast<std::uint16_t>(v));
    store_be16(b.data(), static_cast<std::uint16_t>(v));
    EXPECT_EQ(load_be16(b.data()), static_cast<std::uint16_t>(v));
  }
}

TEST(ByteOrder, UnalignedAccess) {
  std::array<std::uint8_t, 16> b{};
  store_le64(b.data() + 3, 0xa1b2c3d4e5f60718ull);
  EXPECT_EQ(load_le64(b.data() + 3), 0xa1b2c3d4e5f60718ull);
  EXPECT_EQ(b[3], 0x18);
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[11], 0);
}

TEST(ToArray, CopiesTruncatesAndZeroFills) {
  const std::vector<std::uint8_t> v{1, 2, 3, 4, 5};
  EXPECT_EQ(to_array<3>(v), (std::array<std::uint8_t, 3>{1, 2, 3}));
  EXPECT_EQ(to_array<5>(v), (std::array<std::uint8_t, 5>{1, 2, 3, 4, 5}));
  EXPECT_EQ(to_array<7>(v), (std::array<std::uint8_t, 7>{1, 2, 3, 4, 5, 0, 0}));
  EXPECT_EQ(to_array<2>(ConstBytes{}), (std::array<std::uint8_t, 2>{0, 0}));
}

}  // namespace
}  // namespace warren
