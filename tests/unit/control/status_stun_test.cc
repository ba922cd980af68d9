// The status document's "stun" object (mesh endpoint discovery).

#include <gtest/gtest.h>

#include "control/status.h"

namespace warren::control {
namespace {

InterfaceStatus with_stun() {
  InterfaceStatus s;
  s.interface = "wc0";
  s.role = "client";
  StunStatus st;
  st.mapping = "endpoint-dependent";
  st.servers.push_back({"198.51.100.1:3478", "ok", "203.0.113.5:40000", 1'764'614'400, 12});
  st.servers.push_back({"198.51.100.1:3479", "timeout", "", 0, 0});
  s.stun = st;
  return s;
}

TEST(StatusStun, RoundTrip) {
  InterfaceStatus b = status_from_json(to_json(with_stun()));
  ASSERT_TRUE(b.stun);
  EXPECT_EQ(b.stun->mapping, "endpoint-dependent");
  ASSERT_EQ(b.stun->servers.size(), 2u);
  EXPECT_EQ(b.stun->servers[0].server, "198.51.100.1:3478");
  EXPECT_EQ(b.stun->servers[0].state, "ok");
  EXPECT_EQ(b.stun->servers[0].reflexive, "203.0.113.5:40000");
  EXPECT_EQ(b.stun->servers[0].learned_at, 1'764'614'400);
  EXPECT_EQ(b.stun->servers[0].rtt_ms, 12u);
  EXPECT_EQ(b.stun->servers[1].state, "timeout");
  // Absent when discovery does not run (and older daemons' documents still parse).
  InterfaceStatus plain;
  plain.interface = "wc0";
  plain.role = "client";
  EXPECT_EQ(to_json(plain).find("stun"), std::string::npos);
  EXPECT_FALSE(status_from_json(to_json(plain)).stun);
}

TEST(StatusStun, RejectsABadStunObject) {
  EXPECT_THROW(status_from_json(R"({"version":1,"interface":"x","role":"client","public_key":"",
      "listen_port":1,"peers":[],"stun":[]})"),
               ControlError);
  EXPECT_THROW(status_from_json(R"({"version":1,"interface":"x","role":"client","public_key":"",
      "listen_port":1,"peers":[],"stun":{"mapping":"unknown","servers":[{"server":"a"}]}})"),
               ControlError);
}

TEST(StatusStun, TableShowsEachServerAndTheMapping) {
  const std::string t = format_table(with_stun(), 1'764'614'410);
  EXPECT_NE(t.find("stun:        203.0.113.5:40000 via 198.51.100.1:3478 (ok, learned 10s ago)"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("stun:        - via 198.51.100.1:3479 (timeout)"), std::string::npos) << t;
  EXPECT_NE(t.find("nat mapping: endpoint-dependent"), std::string::npos) << t;
}

}  // namespace
}  // namespace warren::control
