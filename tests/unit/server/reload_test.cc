// Live reload: which config changes apply to a running server and which are reported and kept.

#include "server/reload.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace warren::server {
namespace {

constexpr const char* kBase = R"(
[interface]
name = "wsrv0"
listen_port = 51820
address_v4 = "10.8.0.1/24"
address_v6 = "fd00:8::1/64"

[pool]
strategy = "static-or-dynamic"
[pool.reservations]
alice = ["10.8.0.10"]

[clients]
routes = ["10.8.0.0/24"]
dns = ["10.8.0.1"]
persistent_keepalive = 25

[enrollment]
public_endpoint = "vpn.example.com:51820"
)";

ServerConfig parse(const std::string& text) {
  return parse_config(text, "/etc/warren/server.toml");
}

/// kBase with the first occurrence of `from` replaced by `to`.
ServerConfig changed(const std::string& from, const std::string& to) {
  std::string t = kBase;
  const auto at = t.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  t.replace(at, from.size(), to);
  return parse(t);
}

bool has(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

TEST(Reload, NothingChanged) {
  ReloadPlan p = plan_reload(parse(kBase), parse(kBase));
  EXPECT_FALSE(p.changed());
  EXPECT_FALSE(p.pool_changed || p.clients_changed || p.host_changed || p.metrics_changed ||
               p.log_changed || p.mtu_changed);
  EXPECT_EQ(describe(p), std::vector<std::string>{"no changes"});
}

TEST(Reload, ReservationsApplyLive) {
  ReloadPlan p = plan_reload(parse(kBase), changed(R"(alice = ["10.8.0.10"])",
                                                   "alice = [\"10.8.0.11\"]\nbob = [\"10.8.0.12\"]"));
  EXPECT_TRUE(p.pool_changed);
  EXPECT_FALSE(p.clients_changed);
  EXPECT_TRUE(p.kept.empty());
  EXPECT_TRUE(has(p.applied, "pool.reservations.bob: (none) -> [10.8.0.12]"));
  EXPECT_TRUE(has(p.applied, "pool.reservations.alice: [10.8.0.10] -> [10.8.0.11] (an enrolled "
                             "client moves when it re-joins)"));
  EXPECT_EQ(p.next.reservations.at("bob")[0].to_string(), "10.8.0.12");
  // And removed.
  ReloadPlan r = plan_reload(parse(kBase), changed(R"(alice = ["10.8.0.10"])", ""));
  EXPECT_TRUE(has(r.applied, "pool.reservations.alice: [10.8.0.10] -> (none)"));
  EXPECT_TRUE(r.next.reservations.empty());
}

TEST(Reload, ClientSettingsApplyLiveAndArePushed) {
  ReloadPlan p = plan_reload(
      parse(kBase), changed(R"(routes = ["10.8.0.0/24"])", R"(routes = ["10.8.0.0/24", "10.9.0.0/16"])"));
  EXPECT_TRUE(p.clients_changed);
  EXPECT_FALSE(p.pool_changed);
  EXPECT_TRUE(has(p.applied, "clients.routes: [10.8.0.0/24] -> [10.8.0.0/24, 10.9.0.0/16]"));
  EXPECT_EQ(p.next.routes.size(), 2u);
  EXPECT_TRUE(plan_reload(parse(kBase), changed("dns = [\"10.8.0.1\"]", "dns = []")).clients_changed);
  EXPECT_TRUE(plan_reload(parse(kBase), changed("persistent_keepalive = 25",
                                                "persistent_keepalive = 0"))
                  .clients_changed);
  ReloadPlan mtu = plan_reload(parse(kBase), changed("listen_port = 51820",
                                                     "listen_port = 51820\nmtu = 1380"));
  EXPECT_TRUE(mtu.clients_changed && mtu.mtu_changed);
  EXPECT_EQ(mtu.next.mtu, 1380u);
}

TEST(Reload, InterfacePortAndPrefixesAreKept) {
  const ServerConfig running = parse(kBase);
  std::string t = kBase;
  auto sub = [&](const std::string& a, const std::string& b) { t.replace(t.find(a), a.size(), b); };
  sub("name = \"wsrv0\"", "name = \"wsrv1\"");
  sub("listen_port = 51820", "listen_port = 51821");
  sub("address_v6 = \"fd00:8::1/64\"", "address_v6 = \"fd00:9::1/64\"");
  sub("persistent_keepalive = 25", "persistent_keepalive = 25\nclient_to_client = true");
  sub("routes = [\"10.8.0.0/24\"]", "routes = [\"10.8.0.0/25\"]");  // one live change among them
  ReloadPlan p = plan_reload(running, parse(t));
  EXPECT_TRUE(has(p.kept, "interface.name: wsrv0 -> wsrv1 needs a restart; still wsrv0"));
  EXPECT_TRUE(has(p.kept, "interface.listen_port: 51820 -> 51821 needs a restart; still 51820"));
  EXPECT_TRUE(has(p.kept, "interface.address_v6: fd00:8::1/64 -> fd00:9::1/64 needs a restart"));
  // The key file's default follows the interface name.
  EXPECT_TRUE(has(p.kept, "interface.private_key_file: /etc/warren/wsrv0.key -> "
                          "/etc/warren/wsrv1.key needs a restart"));
  EXPECT_EQ(p.kept.size(), 4u);
  // The running values stay; the live change goes through.
  EXPECT_EQ(p.next.interface, "wsrv0");
  EXPECT_EQ(p.next.listen_port, 51820);
  EXPECT_EQ(p.next.ipv6->prefix.to_string(), "fd00:8::/64");
  EXPECT_TRUE(p.clients_changed);
  EXPECT_EQ(p.next.routes[0].to_string(), "10.8.0.0/25");
  EXPECT_TRUE(has(describe(p), "not applied: interface.listen_port"));
  EXPECT_TRUE(has(describe(p), "applied: clients.routes"));
}

TEST(Reload, AReservationOutsideTheKeptPrefixIsLeftOut) {
  std::string t = kBase;
  t.replace(t.find("10.8.0.1/24"), 11, "10.7.0.1/24");
  t.replace(t.find("10.8.0.10"), 9, "10.7.0.10");
  t.replace(t.find("10.8.0.0/24"), 11, "10.7.0.0/24");
  ReloadPlan p = plan_reload(parse(kBase), parse(t));
  EXPECT_TRUE(has(p.kept, "interface.address_v4: 10.8.0.1/24 -> 10.7.0.1/24 needs a restart"));
  EXPECT_TRUE(has(p.kept, "pool.reservations.alice: [10.7.0.10] is outside the running prefixes"));
  EXPECT_EQ(p.next.reservations.count("alice"), 0u);
}

TEST(Reload, ClientToClientAppliesLiveWithTheForwardingSteps) {
  ReloadPlan p = plan_reload(parse(kBase), changed("persistent_keepalive = 25",
                                                   "persistent_keepalive = 25\nclient_to_client = true"));
  EXPECT_TRUE(p.isolation_changed);
  EXPECT_TRUE(p.host_changed);
  EXPECT_TRUE(p.next.client_to_client);
  EXPECT_TRUE(has(p.applied, "clients.client_to_client: false -> true"));
  EXPECT_TRUE(p.kept.empty());
}

TEST(Reload, NatMetricsAndLogLevel) {
  ReloadPlan nat = plan_reload(parse(kBase), parse(std::string(kBase) + "[nat]\nout_interface = \"eth0\"\n"));
  EXPECT_TRUE(nat.host_changed);
  EXPECT_TRUE(has(nat.applied, "nat.out_interface: (none) -> eth0"));
  ReloadPlan off = plan_reload(nat.next, parse(kBase));
  EXPECT_TRUE(off.host_changed);
  EXPECT_TRUE(has(off.applied, "nat.out_interface: eth0 -> (none)"));
  ReloadPlan m = plan_reload(parse(kBase),
                             parse(std::string(kBase) + "[metrics]\nlisten = \"127.0.0.1:9586\"\n"));
  EXPECT_TRUE(m.metrics_changed);
  EXPECT_FALSE(m.host_changed);
  ReloadPlan l = plan_reload(parse(kBase), parse(std::string(kBase) + "[log]\nlevel = \"debug\"\n"));
  EXPECT_TRUE(l.log_changed);
  EXPECT_EQ(l.next.log_level, "debug");
  EXPECT_TRUE(has(l.applied, "log.level: (none) -> debug"));
}

TEST(Config, LogLevelIsCheckedWithFileLineAndKey) {
  try {
    (void)parse(std::string(kBase) + "[log]\nlevel = \"loud\"\n");
    FAIL() << "accepted an unknown log level";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/etc/warren/server.toml:21:9: log.level: 'loud' is not "
                                         "one of error, verbose, debug, silent"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace warren::server
