// The status document's "relay_path" object (a node's own path through the relay, docs/MESH.md
// "Relay path of a node").

#include <gtest/gtest.h>

#include "control/status.h"

namespace warren::control {
namespace {

InterfaceStatus with_path() {
  InterfaceStatus s;
  s.interface = "wc0";
  s.role = "client";
  RelayPathStatus r;
  r.relay = "192.0.2.1:7444";
  r.connected = true;
  r.connects = 2;
  r.sent = 10;
  r.received = 9;
  r.drops = {{"queue_full", 1}, {"not_connected", 3}};
  r.relayed_peers = {"peerkey1", "peerkey2"};
  s.relay_path = r;
  return s;
}

TEST(StatusRelayPath, RoundTripAndTable) {
  const InterfaceStatus s = with_path();
  InterfaceStatus b = status_from_json(to_json(s));
  ASSERT_TRUE(b.relay_path);
  EXPECT_EQ(b.relay_path->relay, "192.0.2.1:7444");
  EXPECT_TRUE(b.relay_path->connected);
  EXPECT_EQ(b.relay_path->connects, 2u);
  EXPECT_EQ(b.relay_path->sent, 10u);
  EXPECT_EQ(b.relay_path->received, 9u);
  EXPECT_EQ(b.relay_path->drops, s.relay_path->drops);
  EXPECT_EQ(b.relay_path->relayed_peers, s.relay_path->relayed_peers);
  EXPECT_NE(format_table(b, 0).find("relay path:  192.0.2.1:7444 connected, 2 peer(s) relayed"),
            std::string::npos)
      << format_table(b, 0);
  InterfaceStatus udp = s;
  udp.relay_path->carrier = "UDP";
  InterfaceStatus u = status_from_json(to_json(udp));
  EXPECT_EQ(u.relay_path->carrier, "UDP");
  EXPECT_NE(format_table(u, 0).find("relay path:  192.0.2.1:7444 connected over UDP, 2 peer"),
            std::string::npos)
      << format_table(u, 0);
  InterfaceStatus down = s;
  down.relay_path->connected = false;
  down.relay_path->last_error = "cannot connect: refused";
  EXPECT_NE(format_table(down, 0).find("not connected (cannot connect: refused)"),
            std::string::npos);
  // Absent on a daemon without WARREN_RELAY.
  InterfaceStatus none = s;
  none.relay_path.reset();
  EXPECT_EQ(to_json(none).find("relay_path"), std::string::npos);
  EXPECT_FALSE(status_from_json(to_json(none)).relay_path);
}

TEST(StatusRelayPath, MalformedIsNamed) {
  const std::string doc = to_json(with_path());
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {R"("connected": true)", R"("connected": 1)"},
           {R"("relayed_peers": [)", R"("relayed_peers": [3,)"},
           {R"("queue_full": 1)", R"("queue_full": "x")"}}) {
    std::string bad = doc;
    const auto at = bad.find(from);
    ASSERT_NE(at, std::string::npos) << from << " in " << doc;
    bad.replace(at, from.size(), to);
    try {
      (void)status_from_json(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const ControlError& e) {
      EXPECT_NE(std::string(e.what()).find("relay"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace warren::control
