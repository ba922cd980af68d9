// The QUIC lines of the client's config (client/config.h: #@warren QuicEndpoint, Transport),
// what join writes from an answer that offers QUIC, pushed settings that add or withdraw it,
// and the tunnel MTU cap (client/plan.h, kQuicTunnelMtu). Issue 15.

#include <gtest/gtest.h>

#include "client/join.h"
#include "client/plan.h"
#include "client/settings.h"
#include "host/fake/fake_system.h"

namespace warren::client {
namespace {

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

/// A config with `warren` lines at the top and `mtu` (none when empty).
std::string text(const std::string& warren, const std::string& mtu = "1420") {
  return warren + "[Interface]\nPrivateKey = " + kPriv + "\nAddress = 10.8.0.2/32\n" +
         (mtu.empty() ? "" : "MTU = " + mtu + "\n") + "[Peer]\nPublicKey = " + kPub +
         "\nEndpoint = vpn.example.com:51820\nAllowedIPs = 10.8.0.0/24\n";
}

ClientConfig parse(const std::string& warren, const std::string& mtu = "1420") {
  return parse_config(text(warren, mtu), "/etc/warren/wg0.conf");
}

std::string parse_error(const std::string& warren) {
  try {
    (void)parse(warren);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(QuicConfig, DefaultsFollowTheEndpoint) {
  ClientConfig none = parse("");
  EXPECT_FALSE(none.quic_endpoint);
  EXPECT_FALSE(none.transport);
  EXPECT_EQ(effective_transport(none), Transport::kWireguard);
  EXPECT_FALSE(may_use_quic(none));

  ClientConfig offered = parse("#@warren QuicEndpoint = vpn.example.com:443\n");
  ASSERT_TRUE(offered.quic_endpoint);
  EXPECT_EQ(offered.quic_endpoint->to_string(), "vpn.example.com:443");
  EXPECT_EQ(effective_transport(offered), Transport::kAuto);
  EXPECT_TRUE(may_use_quic(offered));

  ClientConfig udp_only =
      parse("#@warren QuicEndpoint = [2001:db8::1]:443\n#@warren transport = WireGuard\n");
  EXPECT_EQ(udp_only.quic_endpoint->to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(effective_transport(udp_only), Transport::kWireguard);
  EXPECT_FALSE(may_use_quic(udp_only));

  // Order does not matter: Transport before QuicEndpoint.
  ClientConfig quic = parse("#@warren Transport = quic\n#@warren QuicEndpoint = 192.0.2.1:443\n");
  EXPECT_EQ(effective_transport(quic), Transport::kQuic);
  EXPECT_TRUE(may_use_quic(quic));

  // auto without an endpoint is accepted and means UDP: nothing to fall back to.
  ClientConfig lone_auto = parse("#@warren Transport = auto\n");
  EXPECT_EQ(lone_auto.transport, Transport::kAuto);
  EXPECT_EQ(effective_transport(lone_auto), Transport::kWireguard);
}

TEST(QuicConfig, ErrorsNameTheLine) {
  EXPECT_EQ(parse_error("#@warren Server = s:1\n#@warren Transport = quic\n"),
            "/etc/warren/wg0.conf:2: Transport: quic needs a #@warren QuicEndpoint (the "
            "server's QUIC host:port; warren join writes it when the server offers QUIC)");
  EXPECT_EQ(parse_error("#@warren Transport = tcp\n"),
            "/etc/warren/wg0.conf:1: Transport: 'tcp' is not auto, wireguard or quic");
  EXPECT_EQ(parse_error("#@warren QuicEndpoint = vpn.example.com\n"),
            "/etc/warren/wg0.conf:1: QuicEndpoint: 'vpn.example.com' is not host:port ([v6]:port "
            "for IPv6)");
  for (const char* bad : {"vpn.example.com:0", "vpn.example.com:99999", "2001:db8::1:443",
                          "[vpn.example.com]:443", "a b:443", ":443"})
    EXPECT_NE(
        parse_error(std::string("#@warren QuicEndpoint = ") + bad + "\n").find("QuicEndpoint: '"),
        std::string::npos)
        << bad;
  EXPECT_EQ(parse_error("#@warren Transport = auto\n#@warren Transport = quic\n"),
            "/etc/warren/wg0.conf:2: Transport: given twice");
  EXPECT_EQ(parse_error("#@warren QuicEndpoint = a:1\n#@warren QuicEndpoint = b:1\n"),
            "/etc/warren/wg0.conf:2: QuicEndpoint: given twice");
}

TEST(QuicConfig, FormatRoundTrips) {
  ClientConfig c =
      parse("#@warren QuicEndpoint = vpn.example.com:443\n#@warren Transport = quic\n");
  const std::string out = format_config(c);
  EXPECT_NE(out.find("#@warren QuicEndpoint = vpn.example.com:443\n"), std::string::npos) << out;
  EXPECT_NE(out.find("#@warren Transport = quic\n"), std::string::npos) << out;
  ClientConfig back = parse_config(out, "/etc/warren/wg0.conf");
  EXPECT_EQ(back.quic_endpoint, c.quic_endpoint);
  EXPECT_EQ(back.transport, c.transport);
  // Nothing written when there is nothing to say.
  EXPECT_EQ(format_config(parse("")).find("Quic"), std::string::npos);
  EXPECT_EQ(format_config(parse("")).find("Transport"), std::string::npos);
}

control::Enrollment answer() {
  control::Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
  e.server_public_key = *crypto::PublicKey::from_base64(kPub);
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  e.mtu = 1420;
  return e;
}

TEST(QuicConfig, JoinWritesBothLinesWhenOffered) {
  crypto::PrivateKey key;
  ASSERT_TRUE(crypto::secret_from_base64(kPriv, key));
  ClientConfig plain = config_from_enrollment(answer(), key, "wg0", "vpn.example.com:7443");
  EXPECT_FALSE(plain.quic_endpoint);
  EXPECT_FALSE(plain.transport);
  EXPECT_EQ(format_config(plain).find("Quic"), std::string::npos);

  control::Enrollment e = answer();
  e.quic = control::QuicSettings{"vpn.example.com:443"};
  ClientConfig c = config_from_enrollment(e, key, "wg0", "vpn.example.com:7443");
  const std::string out = format_config(c);
  EXPECT_NE(out.find("#@warren QuicEndpoint = vpn.example.com:443\n#@warren Transport = auto\n"),
            std::string::npos)
      << out;
  ClientConfig back = parse_config(out, "/etc/warren/wg0.conf");
  EXPECT_EQ(effective_transport(back), Transport::kAuto);

  // A bad endpoint (enrollment_from_json already refuses it; join checks again).
  e.quic = control::QuicSettings{"bad endpoint"};
  EXPECT_THROW((void)config_from_enrollment(e, key, "wg0", "s:1"), std::runtime_error);
}

TEST(QuicConfig, PushedSettingsAddAndWithdrawQuic) {
  const ClientConfig running = parse("");
  control::Enrollment e = answer();
  e.persistent_keepalive = 0;
  EXPECT_FALSE(settings_change(running, e));  // nothing differs

  e.quic = control::QuicSettings{"vpn.example.com:443"};
  auto add = settings_change(running, e);
  ASSERT_TRUE(add);
  EXPECT_EQ(add->changes, std::vector<std::string>{"quic endpoint: none -> vpn.example.com:443"});
  EXPECT_EQ(add->next.quic_endpoint->to_string(), "vpn.example.com:443");
  EXPECT_EQ(add->next.transport, Transport::kAuto);
  EXPECT_TRUE(add->transport);
  EXPECT_TRUE(add->host);  // the MTU cap turns on

  // An operator's explicit mode stays; moving the endpoint is a change, no host redo.
  ClientConfig pinned =
      parse("#@warren QuicEndpoint = vpn.example.com:443\n#@warren Transport = wireguard\n");
  e.quic = control::QuicSettings{"vpn.example.com:8443"};
  auto moved = settings_change(pinned, e);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->next.transport, Transport::kWireguard);
  EXPECT_EQ(moved->next.quic_endpoint->port, 8443);
  EXPECT_FALSE(moved->host);

  // Withdrawn: both go (Transport = quic would be left without an endpoint).
  ClientConfig quic =
      parse("#@warren QuicEndpoint = vpn.example.com:443\n#@warren Transport = quic\n");
  e.quic.reset();
  auto gone = settings_change(quic, e);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->next.quic_endpoint);
  EXPECT_FALSE(gone->next.transport);
  EXPECT_TRUE(gone->host);  // the cap turns off
  EXPECT_NO_THROW(parse_config(format_config(gone->next), "/etc/warren/wg0.conf"));

  // A malformed endpoint from the server is ignored, not written.
  e.quic = control::QuicSettings{"x\ny:443"};
  EXPECT_FALSE(settings_change(running, e));
}

TEST(QuicConfig, TunnelMtuIsCappedWhenQuicMayCarryIt) {
  EXPECT_EQ(kQuicTunnelMtu, 1372u);
  EXPECT_EQ(tunnel_mtu(parse(""), 1420), 1420u);
  EXPECT_EQ(tunnel_mtu(parse("", ""), 1420), 1420u);  // no MTU line: as created
  EXPECT_EQ(tunnel_mtu(parse("#@warren QuicEndpoint = h:443\n"), 1420), 1372u);
  EXPECT_EQ(tunnel_mtu(parse("#@warren QuicEndpoint = h:443\n", ""), 1420), 1372u);
  EXPECT_EQ(tunnel_mtu(parse("#@warren QuicEndpoint = h:443\n", "1280"), 1420), 1280u);
  EXPECT_EQ(tunnel_mtu(parse("#@warren QuicEndpoint = h:443\n#@warren Transport = quic\n"), 1420),
            1372u);
  EXPECT_EQ(
      tunnel_mtu(parse("#@warren QuicEndpoint = h:443\n#@warren Transport = wireguard\n"), 1420),
      1420u);
}

TEST(QuicConfig, PlanSetsTheCappedMtu) {
  host::fake::FakeSystem sys;
  const std::uint32_t tun = sys.fake_net().add_link("wg0", 1420, false);
  ClientConfig c = parse("#@warren QuicEndpoint = h:443\n", "");  // no MTU line at all
  PlanOptions o;
  o.resolv_conf = "/etc/resolv.conf";
  o.state_dir = "/run/warren";
  auto up = bring_up(sys, c, tun, 1420, o, "/run/warren/wg0.state");
  ASSERT_TRUE(up.ok()) << up.message();
  EXPECT_EQ(sys.fake_net().state().links.at(tun).mtu, 1372u);
  (*up).reset();  // undo: the created MTU comes back
  EXPECT_EQ(sys.fake_net().state().links.at(tun).mtu, 1420u);
}

}  // namespace
}  // namespace warren::client
