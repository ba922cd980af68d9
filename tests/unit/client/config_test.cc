#include "client/config.h"

#include <gtest/gtest.h>

#include <string>

namespace warren::client {
namespace {

// Keys from `wg genkey` / `wg pubkey` (test-only material).
constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kPub2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";

std::string full_config() {
  return std::string(
             "# a comment\n"
             "[Interface]\n"
             "PrivateKey = ") +
         kPriv +
         "\n"
         "Address = 10.0.0.2/24, fd00::2/64\n"
         "Address = 10.1.0.2/32\n"
         "DNS = 10.0.0.1, fd00::1, corp.example, lab.example\n"
         "MTU = 1380\n"
         "ListenPort = 51000\n"
         "FwMark = 0x1234\n"
         "Table = 1000\n"
         "SaveConfig = false\n"
         "\n"
         "[Peer]\n"
         "PublicKey = " +
         kPub +
         "  # trailing comment\n"
         "PresharedKey = " +
         kPriv +
         "\n"
         "AllowedIPs = 10.0.0.0/24, 192.168.7.9/16\n"
         "AllowedIPs = ::/0\n"
         "Endpoint = vpn.example.com:51820\n"
         "PersistentKeepalive = 25\n"
         "[peer]\n"
         "publickey = " +
         kPub2 +
         "\n"
         "endpoint = [2001:db8::1]:443\n";
}

TEST(ClientConfig, ParsesEveryKey) {
  ClientConfig c = parse_config(full_config(), "/etc/wireguard/wg0.conf");
  EXPECT_EQ(c.interface, "wg0");
  EXPECT_EQ(crypto::secret_to_base64(c.private_key), kPriv);
  ASSERT_EQ(c.addresses.size(), 3u);
  EXPECT_EQ(c.addresses[0].to_string(), "10.0.0.2/24");  // host bits kept for the interface
  EXPECT_EQ(c.addresses[1].to_string(), "fd00::2/64");
  EXPECT_EQ(c.addresses[2].to_string(), "10.1.0.2/32");
  ASSERT_EQ(c.dns_servers.size(), 2u);
  EXPECT_EQ(c.dns_servers[1].to_string(), "fd00::1");
  EXPECT_EQ(c.dns_search, (std::vector<std::string>{"corp.example", "lab.example"}));
  EXPECT_EQ(c.mtu, 1380u);
  EXPECT_EQ(c.listen_port, 51000);
  EXPECT_EQ(c.fwmark, 0x1234u);
  EXPECT_EQ(c.table, 1000u);
  ASSERT_EQ(c.peers.size(), 2u);
  const PeerConfig& p = c.peers[0];
  EXPECT_EQ(p.public_key.to_base64(), kPub);
  ASSERT_TRUE(p.preshared_key);
  ASSERT_EQ(p.allowed_ips.size(), 3u);
  EXPECT_EQ(p.allowed_ips[1].to_string(), "192.168.0.0/16");  // canonical
  EXPECT_EQ(p.allowed_ips[2].to_string(), "::/0");
  ASSERT_TRUE(p.endpoint);
  EXPECT_EQ(p.endpoint->host, "vpn.example.com");
  EXPECT_EQ(p.endpoint->port, 51820);
  EXPECT_EQ(p.persistent_keepalive, 25);
  ASSERT_TRUE(c.peers[1].endpoint);
  EXPECT_EQ(c.peers[1].endpoint->host, "2001:db8::1");
  EXPECT_EQ(c.peers[1].endpoint->to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(c.peers[1].persistent_keepalive, 0);
}

TEST(ClientConfig, TableAndMarkWords) {
  auto with = [](const std::string& extra) {
    return parse_config(std::string("[Interface]\nPrivateKey = ") + kPriv + "\n" + extra,
                        "x/t1.conf");
  };
  EXPECT_EQ(with("Table = off\n").table, 0u);
  EXPECT_FALSE(with("Table = auto\n").table);
  EXPECT_EQ(with("Table = main\n").table, 254u);
  EXPECT_EQ(with("FwMark = off\n").fwmark, 0u);
  EXPECT_EQ(with("FwMark = 51820\n").fwmark, 51820u);
  EXPECT_EQ(with("[Peer]\nPublicKey = " + std::string(kPub) + "\nPersistentKeepalive = off\n")
                .peers[0]
                .persistent_keepalive,
            0);
}

TEST(ClientConfig, FormatRoundTrips) {
  ClientConfig c = parse_config(full_config(), "/x/wg0.conf");
  c.server_name = "vpn.example.com";
  c.dns_search = {"corp.example"};
  const std::string text = format_config(c);
  ClientConfig d = parse_config(text, "/y/wg0.conf");
  EXPECT_EQ(format_config(d), text);
  EXPECT_EQ(d.server_name, "vpn.example.com");
  EXPECT_EQ(d.peers.size(), 2u);
  EXPECT_EQ(d.table, 1000u);
  EXPECT_EQ(d.peers[0].allowed_ips, c.peers[0].allowed_ips);
  // wg-quick ignores the warren line: it is a comment.
  EXPECT_EQ(text.rfind("#@warren Server = vpn.example.com\n", 0), 0u);
}

struct BadCase {
  const char* name;
  std::string text;
  std::string expected;  // substring of the message, which always starts with file:line:
};

TEST(ClientConfig, EveryErrorNamesFileLineAndKey) {
  const std::string head = std::string("[Interface]\nPrivateKey = ") + kPriv + "\n";
  const std::string peer = std::string("[Peer]\nPublicKey = ") + kPub + "\n";
  const std::vector<BadCase> cases = {
      {"unknown interface key", head + "Bogus = 1\n",
       "c/wg0.conf:3: Bogus: unknown key in [Interface]"},
      {"unknown peer key", head + peer + "Foo = bar\n", "c/wg0.conf:5: Foo: unknown key in [Peer]"},
      {"postup", head + "PostUp = iptables -A\n", "c/wg0.conf:3: PostUp: not supported"},
      {"preup", head + "PreUp = x\n", ":3: PreUp: not supported"},
      {"predown", head + "PreDown = x\n", ":3: PreDown: not supported"},
      {"postdown", head + "PostDown = x\n", ":3: PostDown: not supported"},
      {"saveconfig", head + "SaveConfig = true\n",
       ":3: SaveConfig: SaveConfig = true is not supported"},
      {"saveconfig word", head + "SaveConfig = maybe\n",
       ":3: SaveConfig: 'maybe' is not true or false"},
      {"bad private key", "[Interface]\nPrivateKey = abc\n", ":2: PrivateKey: not a base64"},
      {"missing private key", "[Interface]\nAddress = 10.0.0.1/24\n",
       "c/wg0.conf:1: PrivateKey: missing"},
      {"no interface", peer, "c/wg0.conf: [Interface]: missing"},
      {"bad address", head + "Address = 10.0.0.300/24\n",
       ":3: Address: '10.0.0.300/24' is not an address"},
      {"empty list item", head + "Address = 10.0.0.1/24,\n", ":3: Address: '' is not an address"},
      {"bad dns", head + "DNS = 10.0.0.1, bad!name\n", ":3: DNS: 'bad!name' is neither"},
      {"bad mtu", head + "MTU = 99\n", ":3: MTU: '99' is not an MTU"},
      {"mtu word", head + "MTU = big\n", ":3: MTU: 'big'"},
      {"bad port", head + "ListenPort = 70000\n", ":3: ListenPort: '70000' is not a port"},
      {"bad fwmark", head + "FwMark = -1\n", ":3: FwMark: '-1' is not a mark"},
      {"bad table", head + "Table = local\n", ":3: Table: 'local' is not a table"},
      {"duplicate key", head + "MTU = 1400\nMTU = 1300\n", ":4: MTU: given twice"},
      {"empty value", head + "MTU =\n", ":3: MTU: empty value"},
      {"no equals", head + "MTU 1400\n", ":3: MTU 1400: expected 'Key = Value'"},
      {"unknown section", head + "[Peers]\n", ":3: [Peers]: unknown section"},
      {"second interface", head + "[Interface]\n", ":3: [Interface]: a second [Interface]"},
      {"key outside section", "MTU = 1400\n" + head, ":1: MTU: key outside a section"},
      {"bad public key", head + "[Peer]\nPublicKey = nope\n", ":4: PublicKey: not a base64"},
      {"missing public key", head + "[Peer]\nAllowedIPs = 10.0.0.0/24\n", ":3: PublicKey: missing"},
      {"same peer twice", head + peer + peer, ":5: PublicKey: the same peer appears twice"},
      {"bad psk", head + peer + "PresharedKey = x\n", ":5: PresharedKey: not a base64"},
      {"bad allowed ip", head + peer + "AllowedIPs = 10.0.0.0/33\n",
       ":5: AllowedIPs: '10.0.0.0/33' is not a prefix"},
      {"endpoint no port", head + peer + "Endpoint = host\n",
       ":5: Endpoint: 'host' is not host:port"},
      {"endpoint port 0", head + peer + "Endpoint = host:0\n", ":5: Endpoint:"},
      {"endpoint v6 unbracketed", head + peer + "Endpoint = 2001:db8::1:51820\n", ":5: Endpoint:"},
      {"endpoint bad bracket", head + peer + "Endpoint = [host]:1\n", ":5: Endpoint:"},
      {"bad keepalive", head + peer + "PersistentKeepalive = 70000\n",
       ":5: PersistentKeepalive: '70000'"},
      {"bad warren directive", "#@warren Color = blue\n" + head,
       ":1: Color: unknown #@warren setting"},
  };
  for (const auto& bc : cases) {
    try {
      (void)parse_config(bc.text, "c/wg0.conf");
      ADD_FAILURE() << bc.name << ": accepted";
    } catch (const ConfigError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind("c/wg0.conf:", 0), 0u) << bc.name << ": " << m;
      EXPECT_NE(m.find(bc.expected), std::string::npos) << bc.name << ": " << m;
    }
  }
}

TEST(ClientConfig, InterfaceNameFromFileName) {
  const std::string body = std::string("[Interface]\nPrivateKey = ") + kPriv + "\n";
  EXPECT_EQ(parse_config(body, "wg-office.conf").interface, "wg-office");
  EXPECT_THROW(parse_config(body, "/etc/wireguard/wg0.txt"), ConfigError);
  EXPECT_THROW(parse_config(body, "/etc/wireguard/this-name-is-too-long.conf"), ConfigError);
  EXPECT_THROW(parse_config(body, "/etc/wireguard/bad name.conf"), ConfigError);
  EXPECT_THROW(parse_config(body, "/etc/wireguard/.conf"), ConfigError);
  EXPECT_TRUE(valid_interface_name("wg0"));
  EXPECT_FALSE(valid_interface_name("a/b"));
  EXPECT_FALSE(valid_interface_name(""));
}

TEST(ClientConfig, HostPort) {
  auto a = parse_host_port("192.0.2.1:51820");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "192.0.2.1");
  EXPECT_EQ(a->port, 51820);
  EXPECT_FALSE(parse_host_port("192.0.2.1:65536"));
  EXPECT_FALSE(parse_host_port("[::1]51820"));
  EXPECT_FALSE(parse_host_port(":51820"));
  EXPECT_EQ(parse_host_port("[::1]:1")->host, "::1");
}

}  // namespace
}  // namespace warren::client
