// WARREN_STUN parsing (runtime/stun_discovery.h).

#include "runtime/stun_discovery.h"

#include <gtest/gtest.h>

namespace warren::runtime {
namespace {

TEST(StunServers, ParsesACommaSeparatedList) {
  auto one = parse_stun_servers("198.51.100.1:3478");
  ASSERT_TRUE(one.ok()) << one.message();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].to_string(), "198.51.100.1:3478");
  auto two = parse_stun_servers("198.51.100.1:3478, [2001:db8::1]:3479");
  ASSERT_TRUE(two.ok()) << two.message();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].to_string(), "[2001:db8::1]:3479");
}

TEST(StunServers, BadItemsAreNamed) {
  for (const char* bad : {"stun.example:3478", "198.51.100.1", "198.51.100.1:0",
                          "198.51.100.1:3478,", ",198.51.100.1:3478", "1.2.3.4:99999"}) {
    auto r = parse_stun_servers(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.code(), EINVAL);
    EXPECT_NE(r.message().find("invalid WARREN_STUN"), std::string::npos) << r.message();
  }
  EXPECT_NE(parse_stun_servers("1.2.3.4:1,nope").message().find("\"nope\""), std::string::npos);
}

}  // namespace
}  // namespace warren::runtime
