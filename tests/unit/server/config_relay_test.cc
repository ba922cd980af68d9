// The relay keys of the [mesh] block (docs/SERVER.md, docs/MESH.md "Relay").

#include <gtest/gtest.h>

#include "server/config.h"

namespace warren::server {
namespace {

std::string with_mesh(const std::string& mesh) {
  return "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
         "[mesh]\n" +
         mesh;
}

TEST(ConfigRelay, DefaultsAndValues) {
  ServerConfig none = parse_config(with_mesh(""), "s.toml");
  EXPECT_EQ(none.relay_port, 0);  // off
  EXPECT_EQ(none.relay_rate, 8u * 1024 * 1024);
  EXPECT_EQ(none.relay_frame_rate, 4096u);
  EXPECT_EQ(none.relay_connections_per_source, 16u);
  ServerConfig c =
      parse_config(with_mesh("relay_port = 7444\nrelay_rate = 1000000\nrelay_frame_rate = 0\n"
                             "relay_connections_per_source = 2\n"),
                   "s.toml");
  EXPECT_EQ(c.relay_port, 7444);
  EXPECT_EQ(c.relay_rate, 1000000u);
  EXPECT_EQ(c.relay_frame_rate, 0u);  // unlimited
  EXPECT_EQ(c.relay_connections_per_source, 2u);
}

TEST(ConfigRelay, ErrorsNameLineAndKey) {
  const std::pair<std::string, const char*> cases[] = {
      {with_mesh("relay_port = 70000\n"), "s.toml:6:14: mesh.relay_port: must be 0..65535"},
      {with_mesh("relay_port = 7443\n"), "mesh.relay_port: must differ from the enrollment port"},
      {with_mesh("relay_port = 51820\n"),
       "mesh.relay_port: must differ from interface.listen_port and the STUN ports"},
      {with_mesh("stun_port = 3478\nrelay_port = 3478\n"),
       "s.toml:7:14: mesh.relay_port: must differ from interface.listen_port"},
      {with_mesh("relay_rate = -1\n"), "mesh.relay_rate: must be 0.."},
      {with_mesh("relay_connections_per_source = 0\n"),
       "mesh.relay_connections_per_source: must be 1..65535"},
      {with_mesh("relay = 7444\n"), "s.toml:6:1: mesh.relay: unknown key"},
  };
  for (const auto& [text, expect] : cases) {
    try {
      parse_config(text, "s.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos)
          << text << "\n -> " << e.what();
    }
  }
}

}  // namespace
}  // namespace warren::server
