#include "uapi/protocol.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cerrno>
#include <ostream>
#include <string>
#include <variant>

#include "uapi_test_util.h"

namespace warren::uapi {
namespace {

using namespace testing;

// Returns a copy, so `const auto& d = ok(parse_set(...))` stays valid.
wg::ConfigDelta ok(const Result<wg::ConfigDelta>& r) {
  if (!r) {
    ADD_FAILURE() << "unexpected parse error: " << r.message();
    return {};
  }
  return *r;
}

Error err(const Result<wg::ConfigDelta>& r) {
  if (!r)
    return r.error();
  ADD_FAILURE() << "expected a parse error";
  return {};
}

std::string peer_line(std::string_view hex) {
  return "public_key=" + std::string(hex) + "\n";
}

// ---- parse_set: accepted input --------------------------------------------------------------

TEST(ParseSet, DeviceKeys) {
  auto r = parse_set("private_key=" + std::string(kPrivHex) +
                     "\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n");
  const auto& d = ok(r);
  ASSERT_TRUE(d.private_key.has_value());
  EXPECT_EQ(hex_of(*d.private_key), kPrivHex);
  EXPECT_EQ(d.listen_port, 51820);
  EXPECT_EQ(d.fwmark, 4294967295u);
  EXPECT_TRUE(d.replace_peers);
  EXPECT_TRUE(d.peers.empty());
}

TEST(ParseSet, AbsentKeysStayUnset) {
  const auto& d = ok(parse_set("listen_port=0\n"));
  EXPECT_FALSE(d.private_key.has_value());
  ASSERT_TRUE(d.listen_port.has_value());
  EXPECT_EQ(*d.listen_port, 0);
  EXPECT_FALSE(d.fwmark.has_value());
  EXPECT_FALSE(d.replace_peers);
}

TEST(ParseSet, ZeroKeysMeanRemovalAndAreKept) {
  // What `wg setconf` sends for a config without PrivateKey, and `wg set ... private-key
  // /dev/null`.
  const auto& d =
      ok(parse_set("private_key=" + std::string(kZeroHex) + "\nfwmark=0\n" + peer_line(kPeerHex) +
                   "preshared_key=" + std::string(kZeroHex) + "\n"));
  ASSERT_TRUE(d.private_key.has_value());
  EXPECT_TRUE(d.private_key->is_zero());
  ASSERT_TRUE(d.fwmark.has_value());
  EXPECT_EQ(*d.fwmark, 0u);
  ASSERT_EQ(d.peers.size(), 1u);
  ASSERT_TRUE(d.peers[0].preshared_key.has_value());
  EXPECT_TRUE(d.peers[0].preshared_key->is_zero());
}

TEST(ParseSet, UppercaseHexIsAccepted) {
  std::string upper(kPrivHex);
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  const auto& d = ok(parse_set("private_key=" + upper + "\n"));
  ASSERT_TRUE(d.private_key.has_value());
  EXPECT_EQ(hex_of(*d.private_key), kPrivHex);
}

TEST(ParseSet, EveryPeerKey) {
  std::string body = "replace_peers=true\n" + peer_line(kPeerHex) +
                     "protocol_version=1\n"
                     "preshared_key=" +
                     std::string(kPskHex) +
                     "\n"
                     "endpoint=[abcd:23::33%2]:51820\n"
                     "persistent_keepalive_interval=111\n"
                     "replace_allowed_ips=true\n"
                     "allowed_ip=192.168.4.4/32\n"
                     "allowed_ip=fd00::/8\n"
                     "allowed_ip=-10.0.0.0/8\n" +
                     peer_line(kPeer2Hex) +
                     "endpoint=182.122.22.19:3233\n"
                     "update_only=true\n" +
                     peer_line(kPeer3Hex) + "remove=true\n";
  const auto& d = ok(parse_set(body));
  EXPECT_TRUE(d.replace_peers);
  ASSERT_EQ(d.peers.size(), 3u);

  const auto& a = d.peers[0];
  EXPECT_EQ(a.public_key, pub(kPeerHex));
  ASSERT_TRUE(a.preshared_key.has_value());
  EXPECT_EQ(hex_of(*a.preshared_key), kPskHex);
  ASSERT_TRUE(a.endpoint.has_value());
  EXPECT_EQ(a.endpoint->to_string(), "[abcd:23::33]:51820");  // zone accepted, dropped
  ASSERT_TRUE(a.persistent_keepalive.has_value());
  EXPECT_EQ(*a.persistent_keepalive, 111);
  EXPECT_TRUE(a.replace_allowed_ips);
  ASSERT_EQ(a.allowed_ips_add.size(), 2u);
  EXPECT_EQ(a.allowed_ips_add[0], prefix("192.168.4.4/32"));
  EXPECT_EQ(a.allowed_ips_add[1], prefix("fd00::/8"));
  ASSERT_EQ(a.allowed_ips_remove.size(), 1u);
  EXPECT_EQ(a.allowed_ips_remove[0], prefix("10.0.0.0/8"));
  EXPECT_FALSE(a.remove);
  EXPECT_FALSE(a.update_only);

  const auto& b = d.peers[1];
  EXPECT_EQ(b.public_key, pub(kPeer2Hex));
  EXPECT_TRUE(b.update_only);
  EXPECT_FALSE(b.remove);
  EXPECT_FALSE(b.preshared_key.has_value());
  EXPECT_FALSE(b.persistent_keepalive.has_value());
  EXPECT_FALSE(b.replace_allowed_ips);
  ASSERT_TRUE(b.endpoint.has_value());
  EXPECT_EQ(*b.endpoint, endpoint("182.122.22.19:3233"));

  const auto& c = d.peers[2];
  EXPECT_EQ(c.public_key, pub(kPeer3Hex));
  EXPECT_TRUE(c.remove);
  EXPECT_TRUE(c.allowed_ips_add.empty());
}

TEST(ParseSet, AllowedIpHostBitsAreKeptForTheDevice) {
  const auto& d = ok(parse_set(peer_line(kPeerHex) + "allowed_ip=10.1.2.3/8\n"));
  ASSERT_EQ(d.peers.size(), 1u);
  ASSERT_EQ(d.peers[0].allowed_ips_add.size(), 1u);
  EXPECT_EQ(d.peers[0].allowed_ips_add[0].length, 8);
  EXPECT_EQ(d.peers[0].allowed_ips_add[0].canonical(), prefix("10.0.0.0/8"));
}

TEST(ParseSet, AllowedIpRemoval) {
  const auto& d = ok(parse_set(peer_line(kPeerHex) + "allowed_ip=-192.168.1.0/24\n" +
                               "allowed_ip=-2001:db8::/32\nallowed_ip=10.0.0.1/32\n"));
  ASSERT_EQ(d.peers.size(), 1u);
  const auto& p = d.peers[0];
  ASSERT_EQ(p.allowed_ips_remove.size(), 2u);
  EXPECT_EQ(p.allowed_ips_remove[0], prefix("192.168.1.0/24"));
  EXPECT_EQ(p.allowed_ips_remove[1], prefix("2001:db8::/32"));
  ASSERT_EQ(p.allowed_ips_add.size(), 1u);
  EXPECT_EQ(p.allowed_ips_add[0], prefix("10.0.0.1/32"));
  EXPECT_FALSE(p.replace_allowed_ips);
}

TEST(ParseSet, ReplaceAllowedIpsDropsPrefixesNamedBeforeIt) {
  // wireguard-go clears the peer's allowed IPs at the replace line, so earlier lines are lost.
  const auto& d = ok(parse_set(peer_line(kPeerHex) + "allowed_ip=10.0.0.0/8\n" +
                               "allowed_ip=-10.9.0.0/16\nreplace_allowed_ips=true\n" +
                               "allowed_ip=10.1.0.0/16\n"));
  const auto& p = d.peers.at(0);
  EXPECT_TRUE(p.replace_allowed_ips);
  ASSERT_EQ(p.allowed_ips_add.size(), 1u);
  EXPECT_EQ(p.allowed_ips_add[0], prefix("10.1.0.0/16"));
  EXPECT_TRUE(p.allowed_ips_remove.empty());
}

TEST(ParseSet, NumberLimits) {
  EXPECT_EQ(ok(parse_set("listen_port=65535\n")).listen_port, 65535);
  EXPECT_EQ(ok(parse_set("listen_port=00080\n")).listen_port, 80);  // Go's ParseUint allows it
  EXPECT_EQ(ok(parse_set("fwmark=0\n")).fwmark, 0u);
  const auto& d = ok(parse_set(peer_line(kPeerHex) + "persistent_keepalive_interval=65535\n"));
  EXPECT_EQ(d.peers.at(0).persistent_keepalive, 65535);
}

TEST(ParseSet, EmptyBodyIsAnEmptyDelta) {
  const auto& d = ok(parse_set(""));
  EXPECT_FALSE(d.private_key || d.listen_port || d.fwmark || d.replace_peers);
  EXPECT_TRUE(d.peers.empty());
}

TEST(ParseSet, LastLineMayLackNewline) {
  EXPECT_EQ(ok(parse_set("listen_port=1\nfwmark=7")).fwmark, 7u);
}

TEST(ParseSet, StopsAtBlankLine) {
  // A blank line ends the operation; what follows is not part of this set (§3.4).
  const auto& d = ok(parse_set("listen_port=1\n\nbogus_key=1\n"));
  EXPECT_EQ(d.listen_port, 1);
  EXPECT_TRUE(ok(parse_set("\nlisten_port=1\n")).peers.empty());
  EXPECT_FALSE(ok(parse_set("\nlisten_port=1\n")).listen_port.has_value());
}

TEST(ParseSet, OwnPublicKeyIsKeptForTheDeviceToIgnore) {
  // Only the device knows its public key; the parser must pass the peer through.
  const auto& d = ok(parse_set("private_key=" + std::string(kPrivHex) + "\n" + peer_line(kPeerHex) +
                               "allowed_ip=10.0.0.0/8\n"));
  EXPECT_EQ(d.peers.size(), 1u);
}

TEST(ParseSet, DuplicateDeviceKeyLastWins) {
  EXPECT_EQ(ok(parse_set("listen_port=1\nlisten_port=2\n")).listen_port, 2);
}

// ---- parse_set: rejected input --------------------------------------------------------------

struct BadCase {
  const char* name;
  std::string body;
  int errno_value;
  std::size_t line;
  std::string key;  // must appear in the message
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class ParseSetRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseSetRejects, WithErrnoLineAndKeyButNoValue) {
  const BadCase& c = GetParam();
  auto r = parse_set(c.body);
  ASSERT_FALSE(r.ok()) << c.name;
  const Error& e = r.error();
  EXPECT_EQ(e.code, c.errno_value) << c.name << ": " << e.message;
  EXPECT_NE(e.message.find("line " + std::to_string(c.line) + ":"), std::string::npos)
      << c.name << ": " << e.message;
  if (!c.key.empty()) {
    EXPECT_NE(e.message.find(c.key), std::string::npos) << c.name << ": " << e.message;
  }
  // No key material (or any 64-hex-digit value) ever lands in a message.
  for (std::string_view k : {kPrivHex, kPeerHex, kPskHex, kPeer2Hex}) {
    EXPECT_EQ(e.message.find(k.substr(0, 16)), std::string::npos) << c.name << ": " << e.message;
  }
}

std::string priv_line() {
  return "private_key=" + std::string(kPrivHex) + "\n";
}

INSTANTIATE_TEST_SUITE_P(
    AllErrors, ParseSetRejects,
    ::testing::Values(
        BadCase{"private_key_bad_hex", "private_key=zz" + std::string(kPrivHex.substr(2)) + "\n",
                EINVAL, 1, "private_key"},
        BadCase{"private_key_short", "private_key=" + std::string(kPrivHex.substr(2)) + "\n",
                EINVAL, 1, "private_key"},
        BadCase{"private_key_long", "private_key=" + std::string(kPrivHex) + "00\n", EINVAL, 1,
                "private_key"},
        BadCase{"private_key_empty", "private_key=\n", EINVAL, 1, "private_key"},
        BadCase{"private_key_base64", "private_key=wGtrQNsHg+FaTpO8IWaJqq/kRUk+8yawLUmdh1J1dnI=\n",
                EINVAL, 1, "private_key"},
        BadCase{"public_key_zz", "public_key=zz\n", EINVAL, 1, "public_key"},
        BadCase{"public_key_short", "public_key=" + std::string(kPeerHex.substr(1)) + "\n", EINVAL,
                1, "public_key"},
        BadCase{"preshared_key_bad",
                priv_line() + peer_line(kPeerHex) +
                    "preshared_key=" + std::string(kPskHex.substr(0, 63)) + "g\n",
                EINVAL, 3, "preshared_key"},
        BadCase{"listen_port_abc", "listen_port=abc\n", EINVAL, 1, "listen_port"},
        BadCase{"listen_port_too_big", "listen_port=65536\n", EINVAL, 1, "listen_port"},
        BadCase{"listen_port_negative", "listen_port=-1\n", EINVAL, 1, "listen_port"},
        BadCase{"listen_port_plus", "listen_port=+1\n", EINVAL, 1, "listen_port"},
        BadCase{"listen_port_space", "listen_port= 1\n", EINVAL, 1, "listen_port"},
        BadCase{"listen_port_empty", "listen_port=\n", EINVAL, 1, "listen_port"},
        BadCase{"fwmark_too_big", "fwmark=4294967296\n", EINVAL, 1, "fwmark"},
        BadCase{"fwmark_hex", "fwmark=0x10\n", EINVAL, 1, "fwmark"},
        BadCase{"replace_peers_false", "replace_peers=false\n", EINVAL, 1, "replace_peers"},
        BadCase{"replace_peers_one", "replace_peers=1\n", EINVAL, 1, "replace_peers"},
        BadCase{"bogus_key", "listen_port=1\nbogus_key=1\n", EINVAL, 2, "bogus_key"},
        BadCase{"bogus_peer_key", peer_line(kPeerHex) + "bogus_key=1\n", EINVAL, 2, "bogus_key"},
        BadCase{"empty_key", "=1\n", EINVAL, 1, ""},
        BadCase{"key_with_spaces", "listen_port =1\n", EINVAL, 1, ""},
        BadCase{"device_key_after_peer", priv_line() + peer_line(kPeerHex) + "listen_port=1\n",
                EINVAL, 3, "listen_port"},
        BadCase{"private_key_after_peer", peer_line(kPeerHex) + priv_line(), EINVAL, 2,
                "private_key"},
        BadCase{"peer_key_before_peer", "endpoint=1.2.3.4:5\n", EINVAL, 1, "endpoint"},
        BadCase{"protocol_version_2", peer_line(kPeerHex) + "protocol_version=2\n", EINVAL, 2,
                "protocol_version"},
        BadCase{"protocol_version_01", peer_line(kPeerHex) + "protocol_version=01\n", EINVAL, 2,
                "protocol_version"},
        BadCase{"endpoint_no_port", peer_line(kPeerHex) + "endpoint=1.2.3.4\n", EINVAL, 2,
                "endpoint"},
        BadCase{"endpoint_hostname", peer_line(kPeerHex) + "endpoint=example.com:51820\n", EINVAL,
                2, "endpoint"},
        BadCase{"endpoint_bare_v6", peer_line(kPeerHex) + "endpoint=::1:51820\n", EINVAL, 2,
                "endpoint"},
        BadCase{"endpoint_v6_no_port", peer_line(kPeerHex) + "endpoint=[::1]\n", EINVAL, 2,
                "endpoint"},
        BadCase{"endpoint_port_range", peer_line(kPeerHex) + "endpoint=1.2.3.4:65536\n", EINVAL, 2,
                "endpoint"},
        BadCase{"endpoint_port_text", peer_line(kPeerHex) + "endpoint=1.2.3.4:abc\n", EINVAL, 2,
                "endpoint"},
        BadCase{"endpoint_bracketed_v4", peer_line(kPeerHex) + "endpoint=[1.2.3.4]:80\n", EINVAL, 2,
                "endpoint"},
        BadCase{"repeated_public_key",
                peer_line(kPeerHex) + peer_line(kPeer2Hex) + peer_line(kPeerHex), EINVAL, 3,
                "public_key"},
        BadCase{"remove_false", peer_line(kPeerHex) + "remove=false\n", EINVAL, 2, "remove"},
        BadCase{"update_only_yes", peer_line(kPeerHex) + "update_only=yes\n", EINVAL, 2,
                "update_only"},
        BadCase{"replace_allowed_ips_1", peer_line(kPeerHex) + "replace_allowed_ips=1\n", EINVAL, 2,
                "replace_allowed_ips"},
        BadCase{"keepalive_too_big", peer_line(kPeerHex) + "persistent_keepalive_interval=65536\n",
                EINVAL, 2, "persistent_keepalive_interval"},
        BadCase{"allowed_ip_bad_cidr", peer_line(kPeerHex) + "allowed_ip=10.0.0.0/33\n", EINVAL, 2,
                "allowed_ip"},
        BadCase{"allowed_ip_no_cidr", peer_line(kPeerHex) + "allowed_ip=10.0.0.1\n", EINVAL, 2,
                "allowed_ip"},
        BadCase{"allowed_ip_zone", peer_line(kPeerHex) + "allowed_ip=fe80::%2/64\n", EINVAL, 2,
                "allowed_ip"},
        BadCase{"allowed_ip_dash_only", peer_line(kPeerHex) + "allowed_ip=-\n", EINVAL, 2,
                "allowed_ip"},
        BadCase{"allowed_ip_double_dash", peer_line(kPeerHex) + "allowed_ip=--10.0.0.0/8\n", EINVAL,
                2, "allowed_ip"},
        BadCase{"allowed_ip_v6_bad", peer_line(kPeerHex) + "allowed_ip=fd00::/129\n", EINVAL, 2,
                "allowed_ip"},
        BadCase{"no_equals", "listen_port\n", EPROTO, 1, ""},
        BadCase{"crlf", "listen_port=1\r\n", EINVAL, 1, "listen_port"}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(ParseSet, ErrorAfterValidLinesGivesNoDelta) {
  // Whole-request semantics: the valid lines before the bad one are not returned either.
  auto r = parse_set(priv_line() + "listen_port=51820\n" + peer_line(kPeerHex) +
                            "allowed_ip=10.0.0.0/8\nendpoint=nonsense\n");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(err(r).code, EINVAL);
  EXPECT_NE(err(r).message.find("line 5"), std::string::npos);
}

TEST(ParseSet, KeyMaterialInTheKeyPositionIsNotEchoed) {
  // A client that sends a key where the key name belongs must not get it into the logs.
  Error e = err(parse_set(std::string(kPrivHex) + "=1\n"));
  EXPECT_EQ(e.message.find(kPrivHex.substr(0, 8)), std::string::npos) << e.message;
  Error e2 = err(parse_set(std::string(kPrivHex) + "\n"));
  EXPECT_EQ(e2.code, EPROTO);
  EXPECT_EQ(e2.message.find(kPrivHex.substr(0, 8)), std::string::npos) << e2.message;
}

// ---- format_get -----------------------------------------------------------------------------

TEST(FormatGet, MatchesWireguardGoReplyByteForByte) {
  EXPECT_EQ(format_get(example_snapshot()), kExampleReply);
}

TEST(FormatGet, EmptyDeviceIsJustErrno) {
  EXPECT_EQ(format_get(wg::DeviceSnapshot{}), "errno=0\n\n");
}

TEST(FormatGet, ZeroPrivateKeyIsOmitted) {
  wg::DeviceSnapshot s;
  s.private_key = secret(kZeroHex);
  EXPECT_EQ(format_get(s), "errno=0\n\n");
}

TEST(FormatGet, FwmarkPeersWithoutEndpointOrPskAndIpv6) {
  wg::DeviceSnapshot s;
  s.listen_port = 0;  // omitted
  s.fwmark = 51820;
  wg::PeerSnapshot a;
  a.public_key = pub(kPeerHex);
  a.persistent_keepalive = 25;
  a.allowed_ips = {prefix("10.0.0.0/8"), prefix("fd00::/8")};
  wg::PeerSnapshot b;
  b.public_key = pub(kPeer2Hex);
  b.endpoint = endpoint("[2001:db8::1]:9998");
  b.rx_bytes = 18446744073709551615ull;
  s.peers = {a, b};
  EXPECT_EQ(format_get(s),
            "fwmark=51820\n"
            "public_key=" +
                std::string(kPeerHex) +
                "\n"
                "preshared_key=" +
                std::string(kZeroHex) +
                "\n"
                "protocol_version=1\n"
                "last_handshake_time_sec=0\n"
                "last_handshake_time_nsec=0\n"
                "tx_bytes=0\n"
                "rx_bytes=0\n"
                "persistent_keepalive_interval=25\n"
                "allowed_ip=10.0.0.0/8\n"
                "allowed_ip=fd00::/8\n"
                "public_key=" +
                std::string(kPeer2Hex) +
                "\n"
                "preshared_key=" +
                std::string(kZeroHex) +
                "\n"
                "protocol_version=1\n"
                "endpoint=[2001:db8::1]:9998\n"
                "last_handshake_time_sec=0\n"
                "last_handshake_time_nsec=0\n"
                "tx_bytes=0\n"
                "rx_bytes=18446744073709551615\n"
                "persistent_keepalive_interval=0\n"
                "errno=0\n\n");
}

TEST(FormatGet, MatchesALiveWireguardGoReplyWithFwmarkIpv6AndTwoPeers) {
  // Recorded from wireguard-go 0.0.20220316 on the project VM after
  //   set=1 private_key=<kPrivHex> fwmark=51820 listen_port=0
  //   public_key=<kPeerHex> endpoint=[2001:db8::1]:9998 persistent_keepalive_interval=25
  //   allowed_ip=fd00::/8 allowed_ip=10.1.2.3/8  public_key=<kPeer2Hex>
  wg::DeviceSnapshot s;
  s.private_key = secret(kPrivHex);
  s.listen_port = 45503;
  s.fwmark = 51820;
  wg::PeerSnapshot a;
  a.public_key = pub(kPeerHex);
  a.endpoint = endpoint("[2001:db8::1]:9998");
  a.persistent_keepalive = 25;
  a.allowed_ips = {prefix("fd00::/8"), prefix("10.0.0.0/8")};
  wg::PeerSnapshot b;
  b.public_key = pub(kPeer2Hex);
  s.peers = {a, b};
  EXPECT_EQ(format_get(s),
            "private_key=c06b6b40db0783e15a4e93bc216689aadabfe445493ef326b02d499d87527672\n"
            "listen_port=45503\n"
            "fwmark=51820\n"
            "public_key=e5b0e43bc42635df6db2c2d59ff8aaeb150039538a3c9b07e494730fcdf8c427\n"
            "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
            "protocol_version=1\n"
            "endpoint=[2001:db8::1]:9998\n"
            "last_handshake_time_sec=0\n"
            "last_handshake_time_nsec=0\n"
            "tx_bytes=0\n"
            "rx_bytes=0\n"
            "persistent_keepalive_interval=25\n"
            "allowed_ip=fd00::/8\n"
            "allowed_ip=10.0.0.0/8\n"
            "public_key=58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376\n"
            "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
            "protocol_version=1\n"
            "last_handshake_time_sec=0\n"
            "last_handshake_time_nsec=0\n"
            "tx_bytes=0\n"
            "rx_bytes=0\n"
            "persistent_keepalive_interval=0\n"
            "errno=0\n"
            "\n");
}

TEST(FormatGet, RoundTripsThroughParse) {
  // What get prints, set accepts (wg syncconf feeds one into the other).
  std::string reply = format_get(example_snapshot());
  std::string body;
  for (std::size_t pos = 0; pos < reply.size();) {
    std::size_t nl = reply.find('\n', pos);
    std::string line = reply.substr(pos, nl - pos);
    pos = nl + 1;
    std::string key = line.substr(0, line.find('='));
    for (const char* k :
         {"private_key", "listen_port", "public_key", "preshared_key", "protocol_version",
          "endpoint", "persistent_keepalive_interval", "allowed_ip"}) {
      if (key == k) {
        body += line + "\n";
      }
    }
  }
  const auto& d = ok(parse_set(body));
  ASSERT_TRUE(d.private_key.has_value());
  EXPECT_EQ(hex_of(*d.private_key), kPrivHex);
  EXPECT_EQ(d.listen_port, 51999);
  ASSERT_EQ(d.peers.size(), 1u);
  EXPECT_EQ(d.peers[0].public_key, pub(kPeerHex));
  EXPECT_EQ(hex_of(d.peers[0].preshared_key.value()), kPskHex);
  EXPECT_EQ(d.peers[0].endpoint, endpoint("127.0.0.1:54120"));
  EXPECT_EQ(d.peers[0].persistent_keepalive, 0);
  ASSERT_EQ(d.peers[0].allowed_ips_add.size(), 1u);
  EXPECT_EQ(d.peers[0].allowed_ips_add[0], prefix("10.9.9.2/32"));
}

// ---- format_errno ---------------------------------------------------------------------------

TEST(FormatErrno, NegatesPositiveErrno) {
  EXPECT_EQ(format_errno(0), "errno=0\n\n");
  EXPECT_EQ(format_errno(EINVAL), "errno=-22\n\n");
  EXPECT_EQ(format_errno(EADDRINUSE), "errno=-98\n\n");
  EXPECT_EQ(format_errno(EIO), "errno=-5\n\n");
  EXPECT_EQ(format_errno(EPROTO), "errno=-71\n\n");
  EXPECT_EQ(format_errno(-EINVAL), "errno=-22\n\n");
}

}  // namespace
}  // namespace warren::uapi
