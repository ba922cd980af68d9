// The server's nftables table, text for text: IPv4 only, dual stack with NAT66, routed IPv6,
// and a fixed out-interface. The namespace test (test_fulltunnel.sh) loads the same text
// into the kernel.
#include "server/nft_ruleset.h"

#include <gtest/gtest.h>

namespace warren::server {
namespace {

ServerConfig config(const std::string& interface_extra, const std::string& nat) {
  return parse_config("[interface]\nname = \"wg-ft\"\naddress_v4 = \"10.9.0.1/24\"\n" +
                          interface_extra + "[enrollment]\npublic_endpoint = \"h:1\"\n[nat]\n" +
                          nat,
                      "/etc/warren/server.toml");
}

constexpr const char* kForward =
    "\tchain forward {\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tiifname \"wg-ft\" counter accept\n"
    "\t\toifname \"wg-ft\" ct state established,related counter accept\n"
    "\t}\n";

TEST(NftRuleset, Ipv4Only) {
  const auto c = config("", "");
  EXPECT_EQ(nft_table_name(c), "warren_wg-ft");
  EXPECT_EQ(nft_table_definition(c),
            std::string("table inet warren_wg-ft {\n") + kForward +
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.9.0.0/24 oifname != \"wg-ft\" counter masquerade\n"
                "\t}\n"
                "}\n");
}

TEST(NftRuleset, DualStackNat66) {
  const auto c = config("address_v6 = \"fd00:9::1/64\"\n", "");
  EXPECT_EQ(nft_table_definition(c),
            std::string("table inet warren_wg-ft {\n") + kForward +
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.9.0.0/24 oifname != \"wg-ft\" counter masquerade\n"
                "\t\tip6 saddr fd00:9::/64 oifname != \"wg-ft\" counter masquerade\n"
                "\t}\n"
                "}\n");
}

TEST(NftRuleset, RoutedIpv6HasNoIpv6Masquerade) {
  const auto c = config("address_v6 = \"2001:db8:9::1/64\"\n", "ipv6 = \"routed\"\n");
  EXPECT_EQ(nft_table_definition(c),
            std::string("table inet warren_wg-ft {\n") + kForward +
                "\tchain postrouting {\n"
                "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                "\t\tip saddr 10.9.0.0/24 oifname != \"wg-ft\" counter masquerade\n"
                "\t}\n"
                "}\n");
}

TEST(NftRuleset, OutInterfaceNarrowsTheMasquerade) {
  const auto c = config("address_v6 = \"fd00:9::1/64\"\n", "out_interface = \"eth0\"\n");
  const auto t = nft_table_definition(c);
  EXPECT_NE(t.find("\t\tip saddr 10.9.0.0/24 oifname \"eth0\" counter masquerade\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("\t\tip6 saddr fd00:9::/64 oifname \"eth0\" counter masquerade\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("!="), std::string::npos) << t;
}

}  // namespace
}  // namespace warren::server
