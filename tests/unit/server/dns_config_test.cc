// [dns] in the server's configuration and the zone of client names (server/config.h,
// server/dns_service.h).

#include <gtest/gtest.h>

#include <string>

#include "server/config.h"
#include "server/dns_service.h"
#include "server/store.h"

namespace warren::server {
namespace {

const char* kBase = R"(
[interface]
address_v4 = "10.8.0.1/24"
address_v6 = "fd00:8::1/64"
[enrollment]
public_endpoint = "vpn.example.com:51820"
)";

ServerConfig parse(const std::string& extra) {
  return parse_config(std::string(kBase) + extra, "/etc/warren/s.toml");
}

std::string error_of(const std::string& extra) {
  try {
    (void)parse(extra);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

net::Endpoint ep(const char* text) {
  return *net::Endpoint::parse(text);
}

TEST(DnsConfig, OnWhenClientsAreToldToUseTheServer) {
  EXPECT_FALSE(parse("").dns_enabled);
  EXPECT_FALSE(parse("[clients]\ndns = [\"192.0.2.53\"]\n").dns_enabled);
  EXPECT_TRUE(parse("[clients]\ndns = [\"192.0.2.53\", \"10.8.0.1\"]\n").dns_enabled);
  EXPECT_TRUE(parse("[clients]\ndns = [\"fd00:8::1\"]\n").dns_enabled);
  // Explicit either way.
  EXPECT_FALSE(parse("[clients]\ndns = [\"10.8.0.1\"]\n[dns]\nenabled = false\n").dns_enabled);
  EXPECT_TRUE(parse("[dns]\nenabled = true\n").dns_enabled);
}

TEST(DnsConfig, DomainAndUpstreams) {
  ServerConfig c = parse("");
  EXPECT_EQ(c.dns_domain, "warren.internal");
  EXPECT_TRUE(c.dns_upstreams.empty());
  c = parse(
      "[dns]\ndomain = \"VPN.Example.COM.\"\nupstreams = [\"192.0.2.53\", "
      "\"[2001:db8::1]:5353\"]\n");
  EXPECT_EQ(c.dns_domain, "vpn.example.com");
  EXPECT_EQ(c.dns_upstreams,
            (std::vector<net::Endpoint>{ep("192.0.2.53:53"), ep("[2001:db8::1]:5353")}));
}

TEST(DnsConfig, ErrorsNameTheKey) {
  EXPECT_EQ(error_of("[dns]\ndomain = \"corp.local\"\n"),
            "/etc/warren/s.toml:8:10: dns.domain: domain \"corp.local\": .local belongs to "
            "multicast DNS");
  EXPECT_EQ(error_of("[dns]\nupstreams = [\"10.8.0.1\"]\n"),
            "/etc/warren/s.toml:8:14: dns.upstreams: 10.8.0.1 is the server's own tunnel address "
            "(it would forward to itself)");
  EXPECT_EQ(error_of("[dns]\nupstreams = [\"dns.example\"]\n"),
            "/etc/warren/s.toml:8:14: dns.upstreams: 'dns.example' is not an address or "
            "address:port (port 53 by default)");
  EXPECT_NE(error_of("[dns]\nport = 5353\n").find("dns.port: unknown key"), std::string::npos)
      << error_of("[dns]\nport = 5353\n");
  EXPECT_NE(error_of("[dns]\nenabled = \"yes\"\n").find("dns.enabled"), std::string::npos);
}

ClientRecord client(const char* name, std::vector<const char*> addresses) {
  ClientRecord c;
  c.name = name;
  for (const char* a : addresses)
    c.leases.push_back({*net::IpAddress::parse(a), true});
  return c;
}

TEST(ClientZone, ActiveClientsWithOneLabelNames) {
  std::vector<ClientRecord> clients{client("alice", {"10.8.0.2", "fd00:8::2"}),
                                    client("bob", {"10.8.0.3"}),
                                    client("carol", {"10.8.0.4"}),
                                    client("dave", {"10.8.0.5"}),
                                    client("eve.laptop", {"10.8.0.6"}),
                                    client("ALICE", {"10.8.0.7"})};
  clients[2].revoked_at = 1;
  clients[3].disabled_at = 1;
  auto z = client_zone(clients, "warren.internal", {*net::Prefix::parse("10.8.0.0/24")});
  ASSERT_TRUE(z) << z.message();
  ASSERT_TRUE(z->find("alice"));
  EXPECT_EQ(z->find("alice")->size(), 2u);
  EXPECT_EQ(z->find("Alice")->front(), *net::IpAddress::parse("10.8.0.2"));  // the first kept
  EXPECT_TRUE(z->find("bob"));
  EXPECT_FALSE(z->find("carol"));       // revoked
  EXPECT_FALSE(z->find("dave"));        // disabled
  EXPECT_FALSE(z->find("eve.laptop"));  // not one label
  EXPECT_EQ(z->size(), 2u);
}

}  // namespace
}  // namespace warren::server

namespace warren::server {
namespace {

TEST(DnsConfig, ConfiguredUpstreamsWinOverResolvConf) {
  auto u = dns_upstreams(parse("[dns]\nupstreams = [\"192.0.2.1\"]\n"));
  ASSERT_TRUE(u) << u.message();
  EXPECT_EQ(*u, std::vector<net::Endpoint>{ep("192.0.2.1:53")});
}

}  // namespace
}  // namespace warren::server
