// The status document's "relay" object (the coordinator's relay, docs/MESH.md "Relay").

#include <gtest/gtest.h>

#include "control/status.h"

namespace warren::control {
namespace {

TEST(StatusRelay, RoundTrip) {
  InterfaceStatus s;
  s.interface = "ws0";
  s.role = "server";
  RelayStatus r;
  r.port = 7444;
  r.connections = 3;
  r.nodes = 2;
  r.forwarded_frames = 13;
  r.forwarded_bytes = 1300;
  r.drops = {{"rate_limited", 4}, {"auth_failed", 1}};
  s.relay = r;
  InterfaceStatus b = status_from_json(to_json(s));
  ASSERT_TRUE(b.relay);
  EXPECT_EQ(b.relay->port, 7444);
  EXPECT_EQ(b.relay->connections, 3u);
  EXPECT_EQ(b.relay->nodes, 2u);
  EXPECT_EQ(b.relay->forwarded_frames, 13u);
  EXPECT_EQ(b.relay->forwarded_bytes, 1300u);
  EXPECT_EQ(b.relay->drops, r.drops);
  // Absent without a relay (and documents without it still parse).
  s.relay.reset();
  EXPECT_EQ(to_json(s).find("relay"), std::string::npos);
  EXPECT_FALSE(status_from_json(to_json(s)).relay);
}

TEST(StatusRelay, MalformedIsNamed) {
  InterfaceStatus s;
  s.interface = "ws0";
  s.role = "server";
  std::string doc = to_json(s);
  const std::string base = doc.substr(0, doc.rfind('}')) + ",";
  for (const std::string& bad : {base + R"("relay":3})", base + R"("relay":{"port":1}})",
                                 base + R"("relay":{"port":1,"connections":0,"nodes":0,)"
                                        R"("forwarded_frames":0,"forwarded_bytes":0,)"
                                        R"("drops":{"x":"y"}}})"}) {
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
