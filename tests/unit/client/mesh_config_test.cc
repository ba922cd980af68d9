// The mesh node's #@warren Mesh* lines (client/config.h) and what join writes for a mesh
// coordinator's enrollment answer (client/join.h).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/config.h"
#include "client/join.h"
#include "control/enroll.h"

namespace warren::client {
namespace {

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

std::string head() {
  return std::string("[Interface]\nPrivateKey = ") + kPriv + "\n";
}

std::string mesh_lines() {
  return "#@warren MeshPrefix4 = 100.64.0.0/10\n"
         "#@warren MeshPrefix6 = 200::/7\n"
         "#@warren MeshDomain = Corp.Warren\n"
         "#@warren MeshIndex = 3\n"
         "#@warren MeshStun = 203.0.113.1:3478, [2001:db8::1]:3479\n"
         "#@warren MeshRelay = coord.example:3479\n";
}

TEST(MeshConfig, ParsesEveryKey) {
  ClientConfig c = parse_config(mesh_lines() + "#@warren MeshAllowOverlap = TRUE\n" + head(),
                                "/x/wg0.conf");
  ASSERT_TRUE(c.mesh);
  EXPECT_EQ(c.mesh->prefix_v4.to_string(), "100.64.0.0/10");
  EXPECT_EQ(c.mesh->prefix_v6.to_string(), "200::/7");
  EXPECT_EQ(c.mesh->domain, "corp.warren");
  EXPECT_EQ(c.mesh->v4_index, 3u);
  ASSERT_EQ(c.mesh->stun.size(), 2u);
  EXPECT_EQ(c.mesh->stun[1].to_string(), "[2001:db8::1]:3479");
  ASSERT_TRUE(c.mesh->relay);
  EXPECT_EQ(c.mesh->relay->to_string(), "coord.example:3479");
  EXPECT_TRUE(c.mesh->allow_overlap);
}

TEST(MeshConfig, NoMeshLinesNoMesh) {
  EXPECT_FALSE(parse_config(head(), "/x/wg0.conf").mesh);
}

TEST(MeshConfig, HostBitsClearedAndDefaults) {
  ClientConfig c = parse_config(
      "#@warren MeshPrefix4 = 10.99.1.2/16\n#@warren MeshPrefix6 = fd12:3456:7890::1/48\n" + head(),
      "/x/wg0.conf");
  ASSERT_TRUE(c.mesh);
  EXPECT_EQ(c.mesh->prefix_v4.to_string(), "10.99.0.0/16");
  EXPECT_EQ(c.mesh->prefix_v6.to_string(), "fd12:3456:7890::/48");
  EXPECT_EQ(c.mesh->domain, "warren");
  EXPECT_EQ(c.mesh->v4_index, 0u);
  EXPECT_TRUE(c.mesh->stun.empty());
  EXPECT_FALSE(c.mesh->relay);
  EXPECT_FALSE(c.mesh->allow_overlap);
}

TEST(MeshConfig, FormatRoundTrips) {
  ClientConfig c = parse_config(mesh_lines() + "#@warren MeshAllowOverlap = true\n" + head(),
                                "/x/wg0.conf");
  const std::string text = format_config(c);
  ClientConfig d = parse_config(text, "/y/wg0.conf");
  EXPECT_EQ(format_config(d), text);
  ASSERT_TRUE(d.mesh);
  EXPECT_EQ(d.mesh->stun, c.mesh->stun);
  EXPECT_EQ(d.mesh->v4_index, 3u);
  EXPECT_TRUE(d.mesh->allow_overlap);
  EXPECT_NE(text.find("#@warren MeshPrefix6 = 200::/7\n"), std::string::npos);
}

TEST(MeshConfig, BadValuesNameFileLineAndKey) {
  struct Case {
    std::string text, expected;
  };
  const std::string v4 = "#@warren MeshPrefix4 = 100.64.0.0/10\n";
  const std::string v6 = "#@warren MeshPrefix6 = 200::/7\n";
  const std::vector<Case> cases = {
      {"#@warren MeshPrefix4 = 200::/7\n" + v6 + head(),
       "c/wg0.conf:1: MeshPrefix4: '200::/7' is not an IPv4 prefix"},
      {v4 + "#@warren MeshPrefix6 = 10.0.0.0/8\n" + head(),
       "c/wg0.conf:2: MeshPrefix6: '10.0.0.0/8' is not an IPv6 prefix"},
      {v4 + head(), "c/wg0.conf:1: MeshPrefix6: missing"},
      {"#@warren MeshDomain = warren\n" + v6 + head(), "c/wg0.conf:1: MeshPrefix4: missing"},
      {v4 + v6 + "#@warren MeshIndex = 2000\n" + head(),
       "c/wg0.conf:3: MeshIndex: '2000' is not a collision index"},
      {v4 + v6 + "#@warren MeshStun = stun.example:3478\n" + head(),
       "c/wg0.conf:3: MeshStun: 'stun.example:3478' is not a numeric address:port"},
      {v4 + v6 + "#@warren MeshStun = 192.0.2.1:0\n" + head(), "c/wg0.conf:3: MeshStun:"},
      {v4 + v6 + "#@warren MeshRelay = nope\n" + head(),
       "c/wg0.conf:3: MeshRelay: 'nope' is not host:port"},
      {v4 + v6 + "#@warren MeshAllowOverlap = yes\n" + head(),
       "c/wg0.conf:3: MeshAllowOverlap: 'yes' is not true or false"},
      {v4 + v6 + "#@warren MeshDomain = bad_domain!\n" + head(),
       "c/wg0.conf:3: MeshDomain: 'bad_domain!' is not a DNS domain"},
      {v4 + v4 + v6 + head(), "c/wg0.conf:2: MeshPrefix4: given twice"},
      {v4 + v6 + "#@warren MeshColor = blue\n" + head(),
       "c/wg0.conf:3: MeshColor: unknown #@warren setting"},
  };
  for (const auto& bc : cases) {
    try {
      (void)parse_config(bc.text, "c/wg0.conf");
      ADD_FAILURE() << bc.expected << ": accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(bc.expected), std::string::npos)
          << "want " << bc.expected << "\n got " << e.what();
    }
  }
}

control::Enrollment mesh_enrollment() {
  control::Enrollment e;
  e.name = "laptop";
  e.addresses = {*net::Prefix::parse("100.110.184.96/32"),
                 *net::Prefix::parse("28f:33d4:267b:73bd:9730:1a5e:dd33:5216/128")};
  e.server_public_key = *crypto::PublicKey::from_base64(kPub);
  e.server_endpoint = "198.51.100.1:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  e.persistent_keepalive = 25;
  control::MeshSettings m;
  m.prefix_v4 = *net::Prefix::parse("100.64.0.0/10");
  m.prefix_v6 = *net::Prefix::parse("200::/7");
  m.domain = "warren";
  m.v4_index = 1;
  m.stun = {"198.51.100.1:3478"};
  m.relay = "198.51.100.1:3479";
  e.mesh = m;
  return e;
}

TEST(MeshEnrollment, JsonRoundTripAndOldAnswers) {
  control::Enrollment e = mesh_enrollment();
  control::Enrollment back = control::enrollment_from_json(control::enrollment_to_json(e));
  ASSERT_TRUE(back.mesh);
  EXPECT_EQ(back.mesh->prefix_v6.to_string(), "200::/7");
  EXPECT_EQ(back.mesh->v4_index, 1u);
  EXPECT_EQ(back.mesh->stun, e.mesh->stun);
  EXPECT_EQ(back.mesh->relay, "198.51.100.1:3479");
  e.mesh->relay.clear();
  EXPECT_EQ(control::enrollment_to_json(e).find("relay"), std::string::npos);
  e.mesh.reset();
  EXPECT_FALSE(control::enrollment_from_json(control::enrollment_to_json(e)).mesh);
}

TEST(MeshEnrollment, JoinWritesTheMeshLines) {
  crypto::PrivateKey key;
  ASSERT_TRUE(crypto::secret_from_base64(kPriv, key));
  ClientConfig c = config_from_enrollment(mesh_enrollment(), key, "mesh0", "198.51.100.1:8443");
  ASSERT_TRUE(c.mesh);
  ASSERT_EQ(c.peers.size(), 1u);  // the coordinator only; the mesh peers come from the roster
  EXPECT_EQ(c.peers[0].allowed_ips, mesh_enrollment().routes);
  const std::string text = format_config(c);
  for (const char* line :
       {"#@warren MeshPrefix4 = 100.64.0.0/10\n", "#@warren MeshPrefix6 = 200::/7\n",
        "#@warren MeshDomain = warren\n", "#@warren MeshIndex = 1\n",
        "#@warren MeshStun = 198.51.100.1:3478\n", "#@warren MeshRelay = 198.51.100.1:3479\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line;
  ClientConfig d = parse_config(text, "/etc/warren/mesh0.conf");
  ASSERT_TRUE(d.mesh);
  EXPECT_EQ(d.mesh->v4_index, 1u);
  EXPECT_EQ(d.addresses, c.addresses);

  control::Enrollment bad = mesh_enrollment();
  bad.mesh->stun = {"not a host:3478"};
  EXPECT_THROW((void)config_from_enrollment(bad, key, "mesh0", "x:1"), std::runtime_error);
}

}  // namespace
}  // namespace warren::client
