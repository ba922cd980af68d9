#include "net/host_port.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::net {
namespace {

TEST(HostPort, SplitsNamesAddressesAndBracketedV6) {
  auto a = split_host_port("vpn.example.com:51820");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "vpn.example.com");
  EXPECT_EQ(a->port, 51820);
  auto b = split_host_port("192.0.2.1:1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "192.0.2.1");
  EXPECT_EQ(b->port, 1);
  auto c = split_host_port("[2001:db8::1]:65535");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "2001:db8::1");
  EXPECT_EQ(c->port, 65535);
}

TEST(HostPort, ToStringBracketsV6AndRoundTrips) {
  for (std::string s : {"a.b:1", "192.0.2.1:443", "[::1]:80", "[fe80::1]:65535"}) {
    auto hp = split_host_port(s);
    ASSERT_TRUE(hp) << s;
    EXPECT_EQ(hp->to_string(), s);
  }
}

TEST(HostPort, RefusesWithAReason) {
  struct Case {
    const char* text;
    const char* reason;
  };
  for (const Case& k : {
           Case{"host", "no ':port'"},
           Case{"", "no ':port'"},
           Case{":80", "empty host"},
           Case{"[]:80", "empty host"},
           Case{"2001:db8::1:51820", "more than one ':'"},
           Case{"[::1", "closing ']'"},
           Case{"[::1]80", "no ':port' after ']'"},
           Case{"[::1]", "no ':port' after ']'"},
           Case{"host:", "port '' is not a number"},
           Case{"host:0", "port '0' is not a number from 1 to 65535"},
           Case{"host:65536", "port '65536'"},
           Case{"host:123456", "port '123456'"},
           Case{"host:8o", "port '8o'"},
           Case{"host:-1", "port '-1'"},
           Case{"host:+1", "port '+1'"},
           Case{"host:0x50", "port '0x50'"},
           Case{"host: 80", "port ' 80'"},
       }) {
    std::string why;
    EXPECT_FALSE(split_host_port(k.text, &why)) << k.text;
    EXPECT_NE(why.find(k.reason), std::string::npos) << k.text << " -> " << why;
    EXPECT_FALSE(split_host_port(k.text)) << k.text;  // the reason is optional
  }
}

TEST(ValidHost, NamesAndAddresses) {
  for (const char* ok : {"vpn.example.com", "vpn.example.com.", "localhost", "a", "a-b.c0",
                         "192.0.2.1", "2001:db8::1", "::1", "xn--bcher-kva.example"}) {
    EXPECT_TRUE(valid_host(ok)) << ok;
  }
  const std::string long_label(64, 'a');
  const std::string long_name = std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                std::string(63, 'c') + "." + std::string(63, 'd');  // 255
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string("a..b"), std::string("-a.com"),
        std::string("a-.com"), std::string("a.-b"), std::string("vpn example.com"),
        std::string("vpn.example.com\n"), std::string("evil\x1b[2J.com"), std::string("a;rm -rf"),
        std::string("user@host"), std::string("host/path"), std::string("a_b.com"), long_label,
        long_name, std::string("h\0st", 4)}) {
    EXPECT_FALSE(valid_host(bad)) << printable(bad);
  }
  EXPECT_EQ(printable("a\nb\x7f"), "a?b?");
}

}  // namespace
}  // namespace warren::net
