// The QR code of `warren server export --qr` (apps/warren/qr_text.h): the symbol libqrencode
// makes for known inputs (version by the standard's byte capacities at level L, finder
// patterns), and both renderings read back module for module, with the 4-module quiet zone.

#include "qr_text.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

namespace warren::apps {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(text.substr(start, nl - start));
  EXPECT_EQ(start, text.size()) << "the last line ends in a newline";
  return out;
}

// The module at (x, y) of the rendering including the quiet zone, as the expected picture.
bool expected(const QrSymbol& s, int x, int y) {
  return s.at(x - kQrQuietZone, y - kQrQuietZone);
}

TEST(QrText, VersionFollowsTheByteCapacityOfLevelL) {
  // ISO/IEC 18004 table 7, level L, byte mode: version 1 holds 17 bytes, version 2 holds 32.
  auto v1 = qr_encode(std::string(17, 'a'));
  ASSERT_TRUE(v1) << v1.message();
  EXPECT_EQ(v1->version, 1);
  EXPECT_EQ(v1->width, 21);
  auto v2 = qr_encode(std::string(18, 'a'));
  ASSERT_TRUE(v2) << v2.message();
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->width, 25);
  // A client config with both families is about 350 bytes: version 12 at most (367 bytes).
  auto conf = qr_encode(std::string(350, 'x'));
  ASSERT_TRUE(conf);
  EXPECT_EQ(conf->version, 12);
  auto largest = qr_encode(std::string(2953, 'x'));  // version 40-L holds 2953
  ASSERT_TRUE(largest) << largest.message();
  EXPECT_EQ(largest->version, 40);
  EXPECT_EQ(largest->width, 177);
  auto big = qr_encode(std::string(2954, 'x'));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.code(), ERANGE);
  EXPECT_NE(big.message().find("too long"), std::string::npos) << big.message();
  EXPECT_FALSE(qr_encode(""));
}

TEST(QrText, FinderPatternsAreWhereTheStandardPutsThem) {
  auto s = qr_encode("[Interface]\nPrivateKey = x\n");
  ASSERT_TRUE(s);
  const int w = s->width;
  for (auto [ox, oy] : {std::pair{0, 0}, std::pair{w - 7, 0}, std::pair{0, w - 7}}) {
    for (int i = 0; i < 7; ++i) {  // the outer ring of the 7x7 finder is dark
      EXPECT_TRUE(s->at(ox + i, oy));
      EXPECT_TRUE(s->at(ox + i, oy + 6));
      EXPECT_TRUE(s->at(ox, oy + i));
      EXPECT_TRUE(s->at(ox + 6, oy + i));
    }
    EXPECT_FALSE(s->at(ox + 1, oy + 1));  // then a light ring, then the dark 3x3 centre
    EXPECT_TRUE(s->at(ox + 3, oy + 3));
  }
  EXPECT_FALSE(s->at(7, 0)) << "the separator beside the top-left finder is light";
}

TEST(QrText, AsciiRenderingIsTheSymbolWithItsQuietZone) {
  auto s = qr_encode("warren");
  ASSERT_TRUE(s);
  const int side = s->width + 2 * kQrQuietZone;
  auto lines = lines_of(qr_render(*s, QrStyle::kAscii));
  ASSERT_EQ(static_cast<int>(lines.size()), side);
  for (int y = 0; y < side; ++y) {
    ASSERT_EQ(static_cast<int>(lines[y].size()), 2 * side) << "line " << y;
    for (int x = 0; x < side; ++x)
      EXPECT_EQ(lines[y].substr(2 * x, 2), expected(*s, x, y) ? "##" : "  ")
          << "module " << x << "," << y;
  }
}

TEST(QrText, Utf8RenderingPacksTwoRowsPerLineDarkOnLight) {
  auto s = qr_encode("warren");
  ASSERT_TRUE(s);
  const int side = s->width + 2 * kQrQuietZone;  // odd: the last line's lower half is light
  auto lines = lines_of(qr_render(*s, QrStyle::kUtf8));
  ASSERT_EQ(static_cast<int>(lines.size()), (side + 1) / 2);
  const std::string start = "\033[30;47m", end = "\033[0m";
  for (int row = 0; row < static_cast<int>(lines.size()); ++row) {
    std::string l = lines[row];
    ASSERT_TRUE(l.starts_with(start) && l.ends_with(end)) << "black on white, reset: line " << row;
    l = l.substr(start.size(), l.size() - start.size() - end.size());
    int x = 0;
    for (std::size_t i = 0; i < l.size(); ++x) {
      bool top = false, bottom = false;
      if (l[i] == ' ') {
        i += 1;
      } else {
        const std::string glyph = l.substr(i, 3);
        ASSERT_TRUE(glyph == "\u2580" || glyph == "\u2584" || glyph == "\u2588")
            << "line " << row << " byte " << i;
        top = glyph != "\u2584";
        bottom = glyph != "\u2580";
        i += 3;
      }
      ASSERT_LT(x, side);
      EXPECT_EQ(top, expected(*s, x, 2 * row)) << "module " << x << "," << 2 * row;
      EXPECT_EQ(bottom, expected(*s, x, 2 * row + 1)) << "module " << x << "," << 2 * row + 1;
    }
    EXPECT_EQ(x, side) << "line " << row;
  }
}

}  // namespace
}  // namespace warren::apps
