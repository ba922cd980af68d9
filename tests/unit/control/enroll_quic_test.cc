// The optional "quic" object of the enrollment answer and of pushed settings (control/enroll.h,
// QuicSettings; issue 15): round trip, old answers without it, and malformed values.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control/enroll.h"
#include "control/session.h"
#include "crypto/x25519.h"

namespace warren::control {
namespace {

Enrollment base() {
  crypto::PrivateKey k;
  k.data()[1] = 7;
  Enrollment e;
  e.name = "alice";
  e.addresses = {*net::Prefix::parse("10.8.0.2/32")};
  e.server_public_key = crypto::derive_public_key(k);
  e.server_endpoint = "vpn.example.com:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  e.mtu = 1420;
  return e;
}

TEST(EnrollmentQuic, RoundTripAndAbsentByDefault) {
  Enrollment e = base();
  const std::string plain = enrollment_to_json(e);
  EXPECT_EQ(plain.find("quic"), std::string::npos);  // nothing offered: no key at all
  EXPECT_FALSE(enrollment_from_json(plain).quic);    // an old server's answer parses
  e.quic = QuicSettings{"vpn.example.com:443"};
  const Enrollment back = enrollment_from_json(enrollment_to_json(e));
  ASSERT_TRUE(back.quic);
  EXPECT_EQ(back.quic->endpoint, "vpn.example.com:443");
  e.quic = QuicSettings{"[2001:db8::1]:443"};
  EXPECT_EQ(enrollment_from_json(enrollment_to_json(e)).quic, e.quic);
}

TEST(EnrollmentQuic, PushedSettingsCarryIt) {
  Enrollment e = base();
  e.quic = QuicSettings{"198.51.100.7:443"};
  auto m = parse_session_message(session_settings_to_json(e));
  ASSERT_TRUE(m.ok()) << m.message();
  ASSERT_TRUE(m->settings);
  ASSERT_TRUE(m->settings->quic);
  EXPECT_EQ(m->settings->quic->endpoint, "198.51.100.7:443");
}

TEST(EnrollmentQuic, MalformedNamesQuicEndpoint) {
  const nlohmann::json good = nlohmann::json::parse(enrollment_to_json(base()));
  const nlohmann::json bad_values[] = {
      "vpn.example.com:443",                    // not an object
      nlohmann::json::object(),                 // no endpoint
      {{"endpoint", 443}},                      // not a string
      {{"endpoint", "vpn.example.com"}},        // no port
      {{"endpoint", "vpn.example.com:0"}},      // port 0
      {{"endpoint", "vpn.example.com:70000"}},  // port out of range
      {{"endpoint", "2001:db8::1:443"}},        // an IPv6 host without brackets
      // Written into the client's config file: a line break or a '#' must never get there.
      {{"endpoint", "vpn.example.com\nPostUp = x:443"}},
      {{"endpoint", "a b:443"}},
      {{"endpoint", "x#y:443"}},
  };
  for (const auto& v : bad_values) {
    nlohmann::json j = good;
    j["quic"] = v;
    try {
      (void)enrollment_from_json(j.dump());
      ADD_FAILURE() << "accepted " << v.dump();
    } catch (const ControlError& e) {
      EXPECT_NE(std::string(e.what()).find("quic"), std::string::npos) << e.what();
      if (v.is_object() && v.contains("endpoint")) {
        EXPECT_NE(std::string(e.what()).find("quic.endpoint"), std::string::npos) << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace warren::control
