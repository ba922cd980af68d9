// Server TOML configuration: every key, and errors that name file, line and key.

#include "server/config.h"

#include <gtest/gtest.h>

namespace warren::server {
namespace {

constexpr const char* kFull = R"(
[interface]
name = "wsrv0"
listen_port = 51999
private_key_file = "keys/server.key"
address_v4 = "10.8.0.1/24"
address_v6 = "fd00:8::1/64"
mtu = 1380

[pool]
strategy = "static-or-dynamic"
lease_idle_time = "7d"
quarantine = "30m"
[pool.reservations]
alice = ["10.8.0.10", "fd00:8::10"]
bob = ["10.8.0.11"]

[clients]
dns = ["10.8.0.1", "fd00:8::1"]
routes = ["10.8.0.0/24", "192.168.50.0/24"]
persistent_keepalive = 15
client_to_client = true

[nat]
out_interface = "eth0"

[enrollment]
listen = "0.0.0.0:7443"
public_endpoint = "vpn.example.com:51999"
control_endpoint = "vpn.example.com:8443"

[metrics]
listen = "127.0.0.1:9586"

[storage]
database = "/var/lib/warren/state.db"
)";

TEST(Config, EveryKey) {
  ServerConfig c = parse_config(kFull, "/etc/warren/server.toml");
  EXPECT_EQ(c.interface, "wsrv0");
  EXPECT_EQ(c.listen_port, 51999);
  EXPECT_EQ(c.private_key_file, "/etc/warren/keys/server.key");
  ASSERT_TRUE(c.ipv4 && c.ipv6);
  EXPECT_EQ(c.ipv4->prefix.to_string(), "10.8.0.0/24");
  EXPECT_EQ(c.ipv4->server_address.to_string(), "10.8.0.1");
  EXPECT_EQ(c.ipv4->interface_address().to_string(), "10.8.0.1/24");
  EXPECT_EQ(c.ipv6->prefix.to_string(), "fd00:8::/64");
  EXPECT_EQ(c.mtu, 1380u);
  EXPECT_EQ(c.strategy, PoolStrategy::kStaticOrDynamic);
  EXPECT_EQ(c.lease_idle_time, std::chrono::seconds(7 * 86400));
  EXPECT_EQ(c.address_quarantine, std::chrono::seconds(30 * 60));
  ASSERT_EQ(c.reservations.size(), 2u);
  EXPECT_EQ(c.reservations["alice"].size(), 2u);
  EXPECT_EQ(c.reservations["bob"][0].to_string(), "10.8.0.11");
  ASSERT_EQ(c.dns.size(), 2u);
  EXPECT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[1].to_string(), "192.168.50.0/24");
  EXPECT_EQ(c.persistent_keepalive, 15);
  EXPECT_TRUE(c.client_to_client);
  EXPECT_EQ(c.nat_interface, "eth0");
  EXPECT_EQ(c.control_listen, std::vector<std::string>{"0.0.0.0:7443"});
  EXPECT_EQ(c.public_endpoint, "vpn.example.com:51999");
  EXPECT_EQ(c.control_endpoint, "vpn.example.com:8443");
  EXPECT_EQ(c.metrics_listen, std::vector<std::string>{"127.0.0.1:9586"});
  EXPECT_EQ(c.database, "/var/lib/warren/state.db");
  EXPECT_EQ(c.tls_key_file(), "/var/lib/warren/wsrv0-control.key");
}

TEST(Config, Defaults) {
  ServerConfig c = parse_config(
      "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = "
      "\"[2001:db8::1]:51820\"\n",
      "dir/s.toml");
  EXPECT_EQ(c.interface, "warren0");
  EXPECT_EQ(c.listen_port, 51820);
  EXPECT_EQ(c.private_key_file, "dir/warren0.key");
  EXPECT_EQ(c.database, "dir/s.db");
  EXPECT_EQ(c.strategy, PoolStrategy::kStaticOrDynamic);
  EXPECT_EQ(c.control_endpoint, "[2001:db8::1]:7443");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].to_string(), "10.9.0.0/24");
  EXPECT_FALSE(c.client_to_client);
  EXPECT_EQ(c.persistent_keepalive, 25);
  EXPECT_FALSE(c.nat_interface);
  EXPECT_FALSE(c.nat);
}

struct Bad {
  const char* text;
  const char* expect;  // "LINE:COL: key" prefix or part of the message
};

std::string base(const std::string& extra_interface, const std::string& rest) {
  return "[interface]\naddress_v4 = \"10.9.0.1/24\"\n" + extra_interface +
         "[enrollment]\npublic_endpoint = \"h:1\"\n" + rest;
}

TEST(Config, ListenListsAndDualStack) {
  ServerConfig c =
      parse_config(base("",
                        "listen = [\"[::]:7443\", \"127.0.0.1:8443\"]\n[metrics]\nlisten = "
                        "[\"127.0.0.1:9586\", \"[::1]:9586\"]\n"),
                   "s.toml");
  EXPECT_EQ(c.control_listen, (std::vector<std::string>{"[::]:7443", "127.0.0.1:8443"}));
  EXPECT_EQ(c.metrics_listen, (std::vector<std::string>{"127.0.0.1:9586", "[::1]:9586"}));
  EXPECT_EQ(c.control_endpoint, "h:7443");  // the first address's port
  c = parse_config(base("", ""), "s.toml");
  EXPECT_EQ(c.control_listen, std::vector<std::string>{"0.0.0.0:7443"});
  EXPECT_TRUE(c.metrics_listen.empty());
}

TEST(Config, NatBlock) {
  // An empty [nat] turns the full tunnel on: out of any interface, IPv6 masqueraded.
  ServerConfig c = parse_config(base("address_v6 = \"fd00:9::1/64\"\n", "[nat]\n"), "s.toml");
  EXPECT_TRUE(c.nat);
  EXPECT_FALSE(c.nat_interface);
  EXPECT_EQ(c.nat_ipv6, Ipv6Egress::kMasquerade);
  c = parse_config(base("address_v6 = \"2001:db8:9::1/64\"\n",
                        "[nat]\nout_interface = \"eth1\"\nipv6 = \"routed\"\n"),
                   "s.toml");
  EXPECT_TRUE(c.nat);
  EXPECT_EQ(c.nat_interface, "eth1");
  EXPECT_EQ(c.nat_ipv6, Ipv6Egress::kRouted);
  // IPv6 only: NAT no longer needs an IPv4 prefix.
  c = parse_config(
      "[interface]\naddress_v6 = \"fd00:9::1/64\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
      "[nat]\n",
      "s.toml");
  EXPECT_TRUE(c.nat);
}

TEST(Config, ErrorsNameFileLineAndKey) {
  const Bad cases[] = {
      {"[interface]\nnmae = \"x\"\n", "s.toml:2:1: interface.nmae: unknown key"},
      {"[interfaces]\n", "s.toml:1:2: interfaces: unknown key"},
      {"[interface]\nlisten_port = 70000\n",
       "s.toml:2:15: interface.listen_port: must be 1..65535"},
      {"[interface]\nlisten_port = \"x\"\n",
       "s.toml:2:15: interface.listen_port: must be an integer"},
      {"[interface]\naddress_v4 = \"10.9.0.1\"\n", "s.toml:2:14: interface.address_v4:"},
      {"[interface]\naddress_v4 = \"fd00::1/64\"\n", "interface.address_v4: 'fd00::1/64' must be"},
      {"[interface]\naddress_v4 = \"10.9.0.0/24\"\n", "network address"},
      {"[interface]\naddress_v4 = \"10.9.0.1/31\"\n", "leaves no room"},
      {"[interface]\nname = \"a/b\"\n", "s.toml:2:8: interface.name:"},
      {"[interface]\nmtu = 100\n", "interface.mtu: must be 1280..9000"},
      {"[interface]\n", "interface.address_v4: at least one"},
      {"x = \n", "s.toml:1:"},
  };
  for (const auto& c : cases) {
    try {
      parse_config(c.text, "s.toml");
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos)
          << c.text << "\n -> " << e.what();
    }
  }
}

TEST(Config, ErrorsInLaterTables) {
  const std::pair<std::string, const char*> cases[] = {
      {base("", "[pool]\nstrategy = \"random\"\n"), "s.toml:6:12: pool.strategy: 'random'"},
      {base("", "[pool]\nlease_idle_time = \"5 days\"\n"), "s.toml:6:19: pool.lease_idle_time"},
      {base("", "[pool]\nquarantine = \"soon\"\n"), "s.toml:6:14: pool.quarantine: 'soon'"},
      {base("", "[pool.reservations]\nalice = [\"10.10.0.5\"]\n"),
       "s.toml:6:10: pool.reservations.alice: 10.10.0.5 is outside"},
      {base("", "[pool.reservations]\nalice = [\"10.9.0.1\"]\n"), "server's own address"},
      {base("", "[pool.reservations]\nalice = [\"10.9.0.255\"]\n"), "broadcast"},
      {base("", "[pool.reservations]\na = [\"10.9.0.5\"]\nb = [\"10.9.0.5\"]\n"),
       "pool.reservations.b: 10.9.0.5 is reserved twice"},
      {base("", "[pool]\nstrategy = \"dynamic\"\n[pool.reservations]\na = [\"10.9.0.5\"]\n"),
       "pool.reservations: reservations need"},
      {base("", "[clients]\ndns = [\"1.2.3\"]\n"), "s.toml:6:8: clients.dns: '1.2.3' is not"},
      {base("", "[clients]\nroutes = \"0.0.0.0/0\"\n"), "clients.routes: must be a list"},
      {base("", "[clients]\nclient_to_client = 1\n"), "clients.client_to_client: must be true"},
      {base("", "[clients]\npersistent_keepalive = -1\n"), "clients.persistent_keepalive"},
      {base("", "[nat]\nout_interface = \"warren0\"\n"),
       "s.toml:6:17: nat.out_interface: 'warren0' is the tunnel itself"},
      {base("", "[nat]\nipv6 = \"nat66\"\n"), "s.toml:6:8: nat.ipv6: must be \"masquerade\""},
      {base("", "[nat]\nipv6 = \"routed\"\n"), "nat.ipv6: needs interface.address_v6"},
      {base("address_v6 = \"fd00:9::1/64\"\n", "[nat]\nipv6 = \"routed\"\n"),
       "s.toml:7:8: nat.ipv6: \"routed\" needs a global prefix in interface.address_v6 "
       "(2000::/3; fd00:9::/64 is not routed"},
      {base("", "[metrics]\nlisten = \"localhost\"\n"), "s.toml:6:10: metrics.listen"},
      {base("", "listen = [\"[::]:7443\", \"0.0.0.0:7443\"]\n"),
       "s.toml:5:10: enrollment.listen: '0.0.0.0:7443' overlaps '[::]:7443', which listens on "
       "IPv4 too"},
      {base("", "listen = [\"[::]:7443\", \"[::]:7443\"]\n"), "'[::]:7443' is listed twice"},
      {base("", "listen = []\n"),
       "s.toml:5:10: enrollment.listen: must be an address:port or a list"},
      {base("", "listen = [\"[::]:7443\", 5]\n"), "s.toml:5:24: enrollment.listen: must be"},
      {base("", "listen = [\"[::]:7443\", \"nowhere:1\"]\n"),
       "s.toml:5:24: enrollment.listen: 'nowhere:1' is not address:port"},
      {base("", "[metrics]\nlisten = [\"127.0.0.1:9586\", \"[::]:9586\"]\n"),
       "s.toml:6:29: metrics.listen: '[::]:9586' is not a loopback address"},
      {base("", "[metrics]\nlisten = \"0.0.0.0:9586\"\n"),
       "s.toml:6:10: metrics.listen: '0.0.0.0:9586' is not a loopback address"},
      {base("", "[metrics]\nlisten = \"[::]:9586\"\n"), "is not a loopback address"},
      {base("", "[storage]\npath = \"x\"\n"), "s.toml:6:1: storage.path: unknown key"},
      {base("", "[enrollment.x]\n"), "enrollment.x: unknown key"},
      {"[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\n",
       "enrollment.public_endpoint: missing"},
      {"[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h\"\n",
       "s.toml:4:19: enrollment.public_endpoint: 'h' is not host:port"},
      {"[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
       "listen = \"host:1\"\n",
       "s.toml:5:10: enrollment.listen"},
  };
  for (const auto& [text, expect] : cases) {
    try {
      parse_config(text, "s.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos)
          << text << "\n -> " << e.what();
    }
  }
}

TEST(Config, MissingFileNamed) {
  try {
    load_config("/nonexistent/warren.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/warren.toml"), std::string::npos);
  }
}

TEST(Duration, Parse) {
  EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("30m"), std::chrono::seconds(1800));
  EXPECT_EQ(parse_duration("24h"), std::chrono::seconds(86400));
  EXPECT_EQ(parse_duration("7d"), std::chrono::seconds(604800));
  EXPECT_EQ(parse_duration("2w"), std::chrono::seconds(1209600));
  EXPECT_EQ(parse_duration("0"), std::chrono::seconds(0));
  for (const char* bad : {"", "d", "5", "5x", "-5d", "1.5h", "1h30m"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

}  // namespace
}  // namespace warren::server
