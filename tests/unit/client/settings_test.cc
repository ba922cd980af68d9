// Pushed settings against a running client's config (client/settings.h), and the two
// #@warren lines the settings session needs (client/config.h).

#include "client/settings.h"

#include <gtest/gtest.h>

namespace warren::client {
namespace {

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kPub2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
const std::string kPin(64, 'a');

ClientConfig running() {
  return parse_config(std::string("#@warren Server = vpn.example.com:7443\n"
                                   "#@warren ControlPin = ") +
                          kPin +
                          "\n[Interface]\nPrivateKey = " + kPriv +
                          "\nAddress = 10.8.0.2/32\nDNS = 10.8.0.1, corp.example\nMTU = 1420\n"
                          "[Peer]\nPublicKey = " + kPub +
                          "\nEndpoint = vpn.example.com:51820\nAllowedIPs = 10.8.0.0/24\n"
                          "PersistentKeepalive = 25\n",
                      "/etc/warren/wg0.conf");
}

control::Enrollment pushed() {
  control::Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
  e.server_public_key = *crypto::PublicKey::from_base64(kPub);
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  e.dns = {*net::IpAddress::parse("10.8.0.1")};
  e.mtu = 1420;
  e.persistent_keepalive = 25;
  return e;
}

TEST(ControlPin, ParsedWrittenAndChecked) {
  ClientConfig c = running();
  EXPECT_EQ(c.server_name, "vpn.example.com:7443");
  EXPECT_EQ(c.control_pin, kPin);
  const std::string text = format_config(c);
  EXPECT_NE(text.find("#@warren ControlPin = " + kPin + "\n"), std::string::npos);
  EXPECT_EQ(parse_config(text, "/x/wg0.conf").control_pin, kPin);
  try {
    (void)parse_config("#@warren ControlPin = ABC\n[Interface]\nPrivateKey = " +
                           std::string(kPriv) + "\n",
                       "/x/wg0.conf");
    FAIL() << "a short pin was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/x/wg0.conf:1: ControlPin: not 64 lowercase hex"),
              std::string::npos)
        << e.what();
  }
}

TEST(SettingsChange, TheSameSettingsChangeNothing) {
  EXPECT_FALSE(settings_change(running(), pushed()));
}

TEST(SettingsChange, NewRouteChangesAllowedIpsAndHostSteps) {
  control::Enrollment e = pushed();
  e.routes.push_back(*net::Prefix::parse("10.99.0.0/24"));
  auto c = settings_change(running(), e);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->host);
  EXPECT_TRUE(c->peer);
  ASSERT_EQ(c->changes.size(), 1u);
  EXPECT_EQ(c->changes[0], "routes: [10.8.0.0/24] -> [10.8.0.0/24, 10.99.0.0/24]");
  EXPECT_EQ(c->next.peers[0].allowed_ips, e.routes);
}

TEST(SettingsChange, KeepaliveIsEngineOnlyDnsAndMtuAreHostOnly) {
  control::Enrollment e = pushed();
  e.persistent_keepalive = 0;
  auto k = settings_change(running(), e);
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->peer);
  EXPECT_FALSE(k->host);
  EXPECT_EQ(k->next.peers[0].persistent_keepalive, 0);

  e = pushed();
  e.dns = {*net::IpAddress::parse("1.1.1.1")};
  e.mtu = 1380;
  auto h = settings_change(running(), e);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->host);
  EXPECT_FALSE(h->peer);
  EXPECT_EQ(h->next.dns_servers, e.dns);
  EXPECT_EQ(h->next.dns_search, std::vector<std::string>{"corp.example"});  // the file's
  EXPECT_EQ(h->next.mtu, 1380u);
  EXPECT_EQ(h->changes.size(), 2u);
}

TEST(SettingsChange, NoRoutesMeansTheTunnelItself) {
  control::Enrollment e = pushed();
  e.routes.clear();
  auto c = settings_change(running(), e);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->next.peers[0].allowed_ips, e.addresses);
}

TEST(SettingsChange, AnotherServersMessageChangesNothing) {
  control::Enrollment e = pushed();
  e.server_public_key = *crypto::PublicKey::from_base64(kPub2);
  e.routes.push_back(*net::Prefix::parse("10.99.0.0/24"));
  EXPECT_FALSE(settings_change(running(), e));
}

TEST(SettingsChange, AddressesAreReportedNotApplied) {
  control::Enrollment e = pushed();
  e.addresses = {*net::Prefix::parse("10.8.0.9/32")};
  e.dns.clear();
  auto c = settings_change(running(), e);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->next.addresses, running().addresses);
  ASSERT_EQ(c->ignored.size(), 1u);
  EXPECT_NE(c->ignored[0].find("addresses [10.8.0.9/32]"), std::string::npos);
}

}  // namespace
}  // namespace warren::client
