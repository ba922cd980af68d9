#include "platform/offloads.h"

#include <gtest/gtest.h>

namespace warren::platform {
namespace {

TEST(Offloads, DefaultIsEverything) {
  for (const char* s : {"", "all", "on"}) {
    auto p = parse_offloads(s);
    ASSERT_TRUE(p.ok()) << s;
    EXPECT_TRUE(p->tun && p->udp_gso && p->udp_gro) << s;
    EXPECT_EQ(p->to_string(), "tun,gso,gro");
  }
}

TEST(Offloads, OffIsNothing) {
  for (const char* s : {"off", "none"}) {
    auto p = parse_offloads(s);
    ASSERT_TRUE(p.ok()) << s;
    EXPECT_FALSE(p->tun || p->udp_gso || p->udp_gro) << s;
    EXPECT_EQ(p->to_string(), "off");
  }
}

TEST(Offloads, Subsets) {
  auto p = parse_offloads("gro,tun");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->tun);
  EXPECT_FALSE(p->udp_gso);
  EXPECT_TRUE(p->udp_gro);
  EXPECT_EQ(p->to_string(), "tun,gro");
}

TEST(Offloads, UnknownWordIsNamed) {
  auto p = parse_offloads("tun,tso");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), EINVAL);
  EXPECT_NE(p.message().find("unknown offload \"tso\""), std::string::npos) << p.message();
  EXPECT_FALSE(parse_offloads("tun,").ok());
}

}  // namespace
}  // namespace warren::platform
