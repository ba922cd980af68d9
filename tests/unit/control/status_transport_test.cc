// The per-peer "transport" of the status document (control/status.h; issue 15): in the JSON
// only when set, back from it, and in the table after the state.

#include <gtest/gtest.h>

#include "control/status.h"

namespace warren::control {
namespace {

InterfaceStatus two_peers() {
  InterfaceStatus s;
  s.interface = "wg0";
  s.role = "server";
  s.listen_port = 51820;
  for (std::uint8_t seed : {2, 3}) {
    crypto::PrivateKey k;
    k.data()[1] = seed;  // byte 0's low bits are clamped away
    PeerStatus p;
    p.name = seed == 2 ? "alice" : "bob";
    p.public_key = crypto::derive_public_key(k);
    p.state = "connected";
    p.last_handshake = 1'764'614'400;
    s.peers.push_back(p);
  }
  return s;
}

TEST(StatusTransport, JsonOnlyWhenSetAndRoundTrips) {
  InterfaceStatus s = two_peers();
  EXPECT_EQ(to_json(s).find("transport"), std::string::npos);  // nobody says: absent
  s.peers[0].transport = "quic";
  const std::string j = to_json(s);
  EXPECT_NE(j.find("\"transport\": \"quic\""), std::string::npos) << j;
  InterfaceStatus b = status_from_json(j);
  EXPECT_EQ(b.peers[0].transport, "quic");
  EXPECT_EQ(b.peers[1].transport, "");
  // A document with a transport that is not a string is refused.
  std::string bad = j;
  bad.replace(bad.find("\"quic\""), 6, "7");
  EXPECT_THROW(status_from_json(bad), ControlError);
}

TEST(StatusTransport, TableShowsItAfterTheState) {
  InterfaceStatus s = two_peers();
  const std::string none = format_table(s, 1'764'614'410);
  EXPECT_EQ(none.find("(wireguard)"), std::string::npos) << none;
  s.peers[0].transport = "quic";
  s.peers[1].transport = "wireguard";
  const std::string t = format_table(s, 1'764'614'410);
  EXPECT_NE(t.find("alice connected (quic)"), std::string::npos) << t;
  EXPECT_NE(t.find("bob   connected (wireguard)"), std::string::npos) << t;
  // With a mesh path: both, and a transport that only repeats the path is said once.
  s.peers[0].path = "direct";
  s.peers[1].path = "relay";
  s.peers[1].transport = "relay";
  const std::string m = format_table(s, 1'764'614'410);
  EXPECT_NE(m.find("connected (direct, quic)"), std::string::npos) << m;
  EXPECT_NE(m.find("connected (relay) "), std::string::npos) << m;
}

// The QUIC transport's own part ("quic"): absent without it, round-trips, one table line per role.
TEST(StatusTransport, QuicSectionRoundTripsAndShowsInTheTable) {
  InterfaceStatus s = two_peers();
  EXPECT_EQ(to_json(s).find("\"quic\""), std::string::npos);
  QuicTransportStatus q;
  q.role = "server";
  q.endpoint = ":443";
  q.clients = 2;
  q.connects = 3;
  q.drops = {{"too_big", 4}, {"malformed", 1}};
  s.quic = q;
  InterfaceStatus b = status_from_json(to_json(s));
  ASSERT_TRUE(b.quic.has_value());
  EXPECT_EQ(b.quic->role, "server");
  EXPECT_EQ(b.quic->clients, 2u);
  EXPECT_EQ(b.quic->drops.at("too_big"), 4u);
  EXPECT_NE(format_table(s, 1'764'614'410).find("quic:        listening on UDP :443, 2 client(s)"),
            std::string::npos)
      << format_table(s, 1'764'614'410);
  s.quic->role = "client";
  s.quic->endpoint = "vpn.example.com:443";
  s.quic->connected = false;
  s.quic->last_error = "refused by the server: revoked";
  EXPECT_NE(
      format_table(s, 1'764'614'410)
          .find("quic:        vpn.example.com:443 not connected (refused by the server: revoked)"),
      std::string::npos)
      << format_table(s, 1'764'614'410);
  std::string bad = to_json(s);
  bad.replace(bad.find("\"connected\": false"), 18, "\"connected\": 1");
  EXPECT_THROW(status_from_json(bad), ControlError);
}

}  // namespace
}  // namespace warren::control
