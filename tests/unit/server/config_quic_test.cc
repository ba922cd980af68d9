// The [quic] table (docs/SERVER.md, issue 15): parsing, its errors, and reload's treatment.

#include <gtest/gtest.h>

#include "server/config.h"
#include "server/reload.h"

namespace warren::server {
namespace {

std::string with_quic(const std::string& quic, const std::string& extra = "") {
  return "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n" +
         extra + "[quic]\n" + quic;
}

TEST(ConfigQuic, AbsentTableIsOff) {
  ServerConfig c = parse_config(
      "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = \"h:1\"\n",
      "s.toml");
  EXPECT_FALSE(c.quic());
  EXPECT_TRUE(c.quic_listen.empty());
}

TEST(ConfigQuic, OneStringOrAList) {
  ServerConfig one = parse_config(with_quic("listen = \"0.0.0.0:443\"\n"), "s.toml");
  EXPECT_TRUE(one.quic());
  EXPECT_EQ(one.quic_listen, std::vector<std::string>{"0.0.0.0:443"});
  // Both families at once: each address is bound on its own, so no overlap is refused.
  ServerConfig two =
      parse_config(with_quic("listen = [\"0.0.0.0:443\", \"[::]:443\"]\n"), "s.toml");
  EXPECT_EQ(two.quic_listen, (std::vector<std::string>{"0.0.0.0:443", "[::]:443"}));
}

TEST(ConfigQuic, ErrorsNameLineAndKey) {
  const std::pair<std::string, const char*> cases[] = {
      {with_quic(""), "s.toml:5:1: quic.listen: missing"},
      {with_quic("listen = \"vpn.example.com:443\"\n"),
       "s.toml:6:10: quic.listen: 'vpn.example.com:443' is not address:port"},
      {with_quic("listen = \"127.0.0.1:443\"\n"),
       "quic.listen: '127.0.0.1:443': only 0.0.0.0:PORT and [::]:PORT are supported"},
      {with_quic("listen = [\"0.0.0.0:443\", \"[::]:8443\"]\n"),
       "quic.listen: '[::]:8443': every entry must name the same port"},
      {with_quic("listen = \"0.0.0.0\"\n"), "quic.listen: '0.0.0.0' is not address:port"},
      {with_quic("listen = \"0.0.0.0:0\"\n"), "quic.listen: '0.0.0.0:0' is not address:port"},
      {with_quic("listen = \"0.0.0.0:70000\"\n"), "quic.listen: '0.0.0.0:70000' is not"},
      {with_quic("listen = 443\n"), "s.toml:6:10: quic.listen: must be an address:port or a list"},
      {with_quic("listen = []\n"), "quic.listen: must be an address:port or a list"},
      {with_quic("listen = [\"0.0.0.0:443\", 443]\n"), "quic.listen: must be an address:port"},
      {with_quic("listen = [\"0.0.0.0:443\", \"0.0.0.0:443\"]\n"),
       "quic.listen: '0.0.0.0:443' is listed twice"},
      {with_quic("listen = \"0.0.0.0:51820\"\n"),
       "quic.listen: '0.0.0.0:51820': the port must differ from interface.listen_port"},
      {with_quic("listen = \"0.0.0.0:3478\"\n", "[mesh]\nstun_port = 3478\n"),
       "quic.listen: '0.0.0.0:3478': the port must differ from the mesh STUN and relay ports"},
      {with_quic("listen = \"0.0.0.0:7444\"\n", "[mesh]\nrelay_port = 7444\n"),
       "quic.listen: '0.0.0.0:7444': the port must differ from the mesh STUN and relay ports"},
      {with_quic("listen = \"0.0.0.0:443\"\nport = 1\n"), "s.toml:7:1: quic.port: unknown key"},
      {"quic = 1\n[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = "
       "\"h:1\"\n",
       "s.toml:1:8: quic: must be a table"},
  };
  for (const auto& [text, expect] : cases) {
    try {
      (void)parse_config(text, "s.toml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos)
          << text << "\n -> " << e.what();
    }
  }
}

TEST(ConfigQuic, ReloadKeepsTheRunningListenerAndSaysARestartIsNeeded) {
  const ServerConfig off = parse_config(
      "[interface]\naddress_v4 = \"10.9.0.1/24\"\n[enrollment]\npublic_endpoint = "
      "\"h:1\"\n",
      "s.toml");
  const ServerConfig on = parse_config(with_quic("listen = \"0.0.0.0:443\"\n"), "s.toml");
  const ServerConfig moved = parse_config(with_quic("listen = \"0.0.0.0:8443\"\n"), "s.toml");

  ReloadPlan add = plan_reload(off, on);
  ASSERT_EQ(add.kept.size(), 1u);
  EXPECT_EQ(add.kept[0],
            "quic.listen: (no [quic]) -> 0.0.0.0:443 needs a restart; still (no [quic])");
  EXPECT_FALSE(add.next.quic());

  ReloadPlan move = plan_reload(on, moved);
  ASSERT_EQ(move.kept.size(), 1u);
  EXPECT_NE(move.kept[0].find("quic.listen: 0.0.0.0:443 -> 0.0.0.0:8443 needs a restart"),
            std::string::npos);
  EXPECT_EQ(move.next.quic_listen, on.quic_listen);

  ReloadPlan remove = plan_reload(on, off);
  ASSERT_EQ(remove.kept.size(), 1u);
  EXPECT_TRUE(remove.next.quic());

  EXPECT_FALSE(plan_reload(on, on).changed());
}

}  // namespace
}  // namespace warren::server
