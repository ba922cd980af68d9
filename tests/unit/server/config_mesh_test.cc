// The [mesh] block of the server configuration (docs/SERVER.md, docs/MESH.md).

#include <gtest/gtest.h>

#include "server/config.h"

namespace warren::server {
namespace {

std::string with_mesh(const std::string& mesh) {
  return "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
         "[mesh]\n" +
         mesh;
}

TEST(ConfigMesh, StunPorts) {
  ServerConfig c =
      parse_config(with_mesh("stun_port = 3478\nstun_alternate_port = 3479\n"), "s.toml");
  ASSERT_TRUE(c.stun_port);
  EXPECT_EQ(*c.stun_port, 3478);
  ASSERT_TRUE(c.stun_alternate_port);
  EXPECT_EQ(*c.stun_alternate_port, 3479);
  ServerConfig none = parse_config(with_mesh(""), "s.toml");
  EXPECT_FALSE(none.stun_port);
  EXPECT_FALSE(none.stun_alternate_port);
}

TEST(ConfigMesh, ErrorsNameLineAndKey) {
  const std::pair<std::string, const char*> cases[] = {
      {with_mesh("stun_port = 0\n"), "s.toml:6:13: mesh.stun_port: must be 1..65535"},
      {with_mesh("stun_port = \"3478\"\n"), "mesh.stun_port: must be an integer"},
      {with_mesh("stun_port = 51820\n"), "mesh.stun_port: must differ from interface.listen_port"},
      {with_mesh("stun_alternate_port = 3479\n"), "mesh.stun_alternate_port: needs mesh.stun_port"},
      {with_mesh("stun_port = 3478\nstun_alternate_port = 3478\n"),
       "s.toml:7:23: mesh.stun_alternate_port: must differ"},
      {with_mesh("stun = 3478\n"), "s.toml:6:1: mesh.stun: unknown key"},
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
