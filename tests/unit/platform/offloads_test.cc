#include "platform/offloads.h"

#include <gtest/gtest.h>

namespace warren::platform {
namespace {

TEST(Offloads, DefaultIsEverything) {
  for (const char* s : {"", "all", "on"}) {
    OffloadsParse p = parse_offloads(s);
    ASSERT_TRUE(p.ok) << s;
    EXPECT_TRUE(p.offloads.tun && p.offloads.udp_gso && p.offloads.udp_gro) << s;
    EXPECT_EQ(p.offloads.to_string(), "tun,gso,gro");
  }
}

TEST(Offloads, OffIsNothing) {
  for (const char* s : {"off", "none"}) {
    OffloadsParse p = parse_offloads(s);
    ASSERT_TRUE(p.ok) << s;
    EXPECT_FALSE(p.offloads.tun || p.offloads.udp_gso || p.offloads.udp_gro) << s;
    EXPECT_EQ(p.offloads.to_string(), "off");
  }
}

TEST(Offloads, Subsets) {
  OffloadsParse p = parse_offloads("gro,tun");
  ASSERT_TRUE(p.ok);
  EXPECT_TRUE(p.offloads.tun);
  EXPECT_FALSE(p.offloads.udp_gso);
  EXPECT_TRUE(p.offloads.udp_gro);
  EXPECT_EQ(p.offloads.to_string(), "tun,gro");
}

TEST(Offloads, UnknownWordIsNamed) {
  OffloadsParse p = parse_offloads("tun,tso");
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.bad_word, "tso");
  EXPECT_FALSE(parse_offloads("tun,").ok);
}

}  // namespace
}  // namespace warren::platform
