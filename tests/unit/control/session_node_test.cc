// The node's side of the mesh messages on the settings session (control/session.h).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control/session.h"

namespace warren::control {
namespace {

TEST(SessionMesh, RosterMessageRoundTripsAnyLength) {
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 100u, 70000u}) {
    std::vector<std::uint8_t> bytes(n);
    for (std::size_t i = 0; i < n; ++i)
      bytes[i] = static_cast<std::uint8_t>(i * 7 + 1);
    auto m = parse_session_message(session_roster_to_json(bytes));
    ASSERT_TRUE(m.ok()) << m.message();
    EXPECT_EQ(m->type, SessionMessageType::kRoster);
    EXPECT_EQ(m->roster_delta, bytes) << n;
  }
}

TEST(SessionMesh, BadRosterMessagesAreRefused) {
  for (const char* bad : {R"({"version":2,"type":"roster"})",
                          R"({"version":2,"type":"roster","delta":5})",
                          R"({"version":2,"type":"roster","delta":"abc"})",
                          R"({"version":2,"type":"roster","delta":"a$==")"
                          R"("})"}) {
    auto m = parse_session_message(bad);
    EXPECT_FALSE(m.ok()) << bad;
    if (!m.ok())
      EXPECT_EQ(m.code(), EPROTO);
  }
}

TEST(SessionMesh, NodeMessagesAsTheContractSpellsThem) {
  auto r = nlohmann::json::parse(session_roster_request_to_json(17));
  EXPECT_EQ(r["type"], "roster_request");
  EXPECT_EQ(r["from"], 17);
  EXPECT_EQ(r["version"], kProtocolVersion);
  auto e = nlohmann::json::parse(
      session_endpoints_to_json({"192.0.2.10:51820", "[2001:db8::10]:51820"}, std::nullopt));
  EXPECT_EQ(e["type"], "endpoints");
  EXPECT_EQ(e["local"].size(), 2u);
  EXPECT_EQ(e["local"][1], "[2001:db8::10]:51820");
  EXPECT_FALSE(e.contains("reflexive"));
  e = nlohmann::json::parse(session_endpoints_to_json({}, "198.51.100.7:40001"));
  EXPECT_EQ(e["reflexive"], "198.51.100.7:40001");
  // A node-bound parser sees them as messages it does not handle (ignored).
  auto m = parse_session_message(session_roster_request_to_json(0));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, SessionMessageType::kOther);
}

}  // namespace
}  // namespace warren::control
