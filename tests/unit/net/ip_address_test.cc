#include "net/ip_address.h"

#include <gtest/gtest.h>

#include "net/ip_header.h"

namespace warren::net {
namespace {

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("192.0.2.1");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->to_string(), "192.0.2.1");
  auto v6 = IpAddress::parse("2001:DB8::1");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::parse("fe80::1%2")->to_string(), "fe80::1");
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "1.2.3.4%2", "fe80::1%", "x"}) {
    EXPECT_FALSE(IpAddress::parse(bad)) << bad;
  }
}

TEST(IpAddress, MappedAddressesUnmapAndMaskingZeroesHostBits) {
  EXPECT_EQ(IpAddress::parse("::ffff:10.1.2.3")->unmapped(), *IpAddress::parse("10.1.2.3"));
  EXPECT_EQ(IpAddress::parse("2001:db8::1")->unmapped(), *IpAddress::parse("2001:db8::1"));
  EXPECT_EQ(IpAddress::parse("192.95.5.93")->masked(27).to_string(), "192.95.5.64");
  EXPECT_EQ(IpAddress::parse("2607:5300:6d8a:6bf8:dab1:f238:f2a5:1523")->masked(83).to_string(),
            "2607:5300:6d8a:6bf8:dab1:e000::");
  EXPECT_EQ(IpAddress::parse("10.1.2.3")->masked(0).to_string(), "0.0.0.0");
  EXPECT_EQ(IpAddress::parse("10.1.2.3")->masked(32).to_string(), "10.1.2.3");
}

TEST(Prefix, ParseCanonicalContains) {
  auto p = Prefix::parse("192.95.5.93/27");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->canonical().to_string(), "192.95.5.64/27");
  EXPECT_TRUE(p->contains(*IpAddress::parse("192.95.5.65")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("192.95.5.96")));
  EXPECT_FALSE(p->contains(*IpAddress::parse("::1")));
  EXPECT_EQ(Prefix::parse("10.0.0.1")->length, 32);
  EXPECT_EQ(Prefix::parse("::/0")->to_string(), "::/0");
  for (const char* bad :
       {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "/8"}) {
    EXPECT_FALSE(Prefix::parse(bad)) << bad;
  }
}

TEST(Endpoint, WgForms) {
  auto e4 = Endpoint::parse("127.0.0.1:51820");
  ASSERT_TRUE(e4);
  EXPECT_EQ(e4->to_string(), "127.0.0.1:51820");
  auto e6 = Endpoint::parse("[::1]:9998");
  ASSERT_TRUE(e6);
  EXPECT_EQ(e6->to_string(), "[::1]:9998");
  auto zone = Endpoint::parse("[abcd:23::33%2]:51820");
  ASSERT_TRUE(zone);
  EXPECT_EQ(zone->to_string(), "[abcd:23::33]:51820");
  // IPv4-mapped endpoints print as IPv4 (wg shows a.b.c.d:p, not [::ffff:a.b.c.d]:p).
  EXPECT_EQ(Endpoint::parse("[::ffff:127.0.0.1]:1")->to_string(), "127.0.0.1:1");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:80", "[::1]",
                          "[::1]80", "[1.2.3.4]:80", "host:80", ":80"}) {
    EXPECT_FALSE(Endpoint::parse(bad)) << bad;
  }
}

TEST(IpHeader, LengthsAndBounds) {
  std::vector<std::uint8_t> v4(28, 0);
  v4[0] = 0x45;
  v4[3] = 28;
  v4[12] = 10, v4[15] = 1, v4[16] = 10, v4[19] = 2;
  auto h = parse_ip_header(v4);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->total_length, 28u);
  EXPECT_EQ(h->source.to_string(), "10.0.0.1");
  EXPECT_EQ(h->destination.to_string(), "10.0.0.2");
  auto padded = v4;
  padded.resize(32, 0);
  EXPECT_EQ(parse_ip_header(padded)->total_length, 28u) << "padding is trimmed by the length field";
  v4[3] = 40;
  EXPECT_FALSE(parse_ip_header(v4)) << "claims more than the buffer holds";
  v4[3] = 10;
  EXPECT_FALSE(parse_ip_header(v4)) << "claims less than its header";
  v4[0] = 0x65;
  EXPECT_FALSE(parse_ip_header(v4)) << "version 6 needs 40 bytes";
  std::vector<std::uint8_t> v6(48, 0);
  v6[0] = 0x60;
  v6[5] = 8;
  v6[23] = 1, v6[39] = 2;
  auto h6 = parse_ip_header(v6);
  ASSERT_TRUE(h6);
  EXPECT_EQ(h6->total_length, 48u);
  EXPECT_EQ(h6->destination.to_string(), "::2");
  EXPECT_FALSE(parse_ip_header(std::vector<std::uint8_t>{}));
  EXPECT_FALSE(ip_destination(std::vector<std::uint8_t>(10, 0x45)));
}

}  // namespace
}  // namespace warren::net

namespace warren::net {
namespace {

TEST(IpHeader, UdpPorts) {
  std::vector<std::uint8_t> v4(28, 0);
  v4[0] = 0x45;
  v4[3] = 28;
  v4[9] = 17;
  v4[20] = 0xca, v4[21] = 0x6c;  // 51820
  v4[23] = 7;
  ASSERT_TRUE(udp_ports(v4));
  EXPECT_EQ(udp_ports(v4)->source, 51820);
  EXPECT_EQ(udp_ports(v4)->destination, 7);
  v4[9] = 6;
  EXPECT_FALSE(udp_ports(v4)) << "TCP";
  v4[9] = 17;
  v4[7] = 1;  // a later fragment carries no UDP header
  EXPECT_FALSE(udp_ports(v4));
  std::vector<std::uint8_t> v6(48, 0);
  v6[0] = 0x60;
  v6[6] = 17;
  v6[40] = 0x00, v6[41] = 0x35;
  ASSERT_TRUE(udp_ports(v6));
  EXPECT_EQ(udp_ports(v6)->source, 53);
  v6[6] = 0;  // hop-by-hop options first: not looked into
  EXPECT_FALSE(udp_ports(v6));
  EXPECT_FALSE(udp_ports(std::vector<std::uint8_t>(24, 0x45)));
}

}  // namespace
}  // namespace warren::net

namespace warren::net {
namespace {

TEST(IpAddress, Loopback) {
  for (const char* yes : {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"})
    EXPECT_TRUE(IpAddress::parse(yes)->is_loopback()) << yes;
  for (const char* no : {"0.0.0.0", "::", "128.0.0.1", "10.0.0.1", "::2", "fe80::1", "1::1",
                         "::ffff:10.0.0.1"})
    EXPECT_FALSE(IpAddress::parse(no)->is_loopback()) << no;
}

}  // namespace
}  // namespace warren::net
