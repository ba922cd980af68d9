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

TEST(ConfigMesh, AMeshTableEvenEmptyMakesACoordinatorWithDefaults) {
  const std::string plain =
      "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n";
  EXPECT_FALSE(parse_config(plain, "s.toml").mesh);
  ServerConfig c = parse_config(with_mesh(""), "s.toml");
  EXPECT_TRUE(c.mesh);
  EXPECT_EQ(c.mesh_plan.v4_prefix().to_string(), "100.64.0.0/10");
  EXPECT_EQ(c.mesh_plan.v6_prefix().to_string(), "200::/7");
  EXPECT_EQ(c.mesh_domain, "warren");
}

TEST(ConfigMesh, PrefixesAndDomain) {
  ServerConfig c = parse_config(with_mesh("prefix_v4 = \"10.99.1.2/16\"\n"
                                          "prefix_v6 = \"fd12:3456:7890::/48\"\n"
                                          "domain = \"Mesh.Example.\"\n"),
                                "s.toml");
  EXPECT_EQ(c.mesh_plan.v4_prefix().to_string(), "10.99.0.0/16");  // host bits cleared
  EXPECT_EQ(c.mesh_plan.v6_prefix().to_string(), "fd12:3456:7890::/48");
  EXPECT_EQ(c.mesh_domain, "mesh.example");
}

TEST(ConfigMesh, PrefixAndDomainErrorsNameLineAndKey) {
  const std::pair<std::string, const char*> cases[] = {
      {with_mesh("prefix_v4 = \"100.64.0.0/31\"\n"), "s.toml:6:13: mesh.prefix_v4: mesh IPv4"},
      {with_mesh("prefix_v4 = \"100.64.0.0/7\"\n"), "mesh.prefix_v4: mesh IPv4 prefix"},
      {with_mesh("prefix_v4 = \"fd00::/48\"\n"), "mesh.prefix_v4:"},
      {with_mesh("prefix_v4 = \"nonsense\"\n"), "mesh.prefix_v4: 'nonsense' is not a prefix"},
      {with_mesh("prefix_v4 = 10\n"), "mesh.prefix_v4: must be a string"},
      {with_mesh("prefix_v6 = \"fd00::/96\"\n"), "s.toml:6:13: mesh.prefix_v6: mesh IPv6"},
      {with_mesh("prefix_v6 = \"10.0.0.0/8\"\n"), "mesh.prefix_v6:"},
      {with_mesh("domain = \"a..b\"\n"), "s.toml:6:10: mesh.domain:"},
      {with_mesh("domain = 5\n"), "mesh.domain: must be a string"},
      {"[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
       "[pool]\nstrategy = \"static\"\n[mesh]\n",
       "pool.strategy: \"static\" is not with [mesh]"},
      {"[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n"
       "[pool.reservations]\nalice = [\"10.9.0.5\"]\n[mesh]\n",
       "pool.reservations: not with [mesh]"},
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
