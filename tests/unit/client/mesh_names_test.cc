// DNS on a mesh node (client/mesh_names.h) against the fake system: the responder's service
// addresses, split DNS with each method and its exact undo (rollback, pause/resume, replay),
// and where forwarded names go.
#include "client/mesh_names.h"

#include <gtest/gtest.h>

#include "client/plan.h"
#include "client/standby.h"
#include "client/steps.h"
#include "host/fake/fake_system.h"

namespace warren::client {
namespace {

using host::fake::FakeSystem;

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kJournal = "/run/warren/mesh0.state";
constexpr const char* kHostResolv = "nameserver 192.0.2.53\nsearch home.example\n";

ClientConfig mesh_config(const std::string& extra = "", const std::string& iface_extra = "") {
  return parse_config(
      std::string("#@warren MeshPrefix4 = 100.64.0.0/10\n"
                  "#@warren MeshPrefix6 = 200::/7\n") +
          extra + "[Interface]\nPrivateKey = " + kPriv +
          "\nAddress = 100.110.184.96/32, 28f:33d4:267b:73bd:9730:1a5e:dd33:5216/128\n" +
          iface_extra + "[Peer]\nPublicKey = " + kPub +
          "\nAllowedIPs = 10.8.0.1/32\nEndpoint = 192.0.2.1:51820\n",
      "/etc/warren/mesh0.conf");
}

PlanOptions options(DnsMethod m) {
  PlanOptions o;
  o.dns = m;
  o.resolv_conf = "/etc/resolv.conf";
  o.state_dir = "/run/warren";
  return o;
}

struct Machine {
  FakeSystem sys;
  std::uint32_t eth = 0, tun = 0;
  Machine() {
    eth = sys.fake_net().add_link("eth0", 1500, true);
    (void)sys.fake_net().add_address(eth, *net::Prefix::parse("192.0.2.7/24"));
    tun = sys.fake_net().add_link("mesh0", 1420, false);
    sys.files()["/etc/resolv.conf"] = kHostResolv;
    sys.set_programs({"resolvconf", "resolvectl"});
  }
  Result<std::unique_ptr<ActiveSetup>> up(const ClientConfig& c, DnsMethod m) {
    return bring_up(sys, c, tun, 1420, options(m), kJournal);
  }
};

const net::Prefix kResponder4 = *net::Prefix::parse("100.64.0.1/32");
const net::Prefix kResponder6 = *net::Prefix::parse("200::53/128");

TEST(MeshNames, ResponderAddressesAreServiceAddressesAfterTheNodesOwn) {
  Machine m;
  auto steps = plan_steps(mesh_config(), m.tun, 1420, m.sys, options(DnsMethod::kFile));
  std::vector<std::string> lines;
  for (const auto& s : steps)
    lines.push_back(s->journal_line());
  auto at = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) - lines.begin();
  };
  const std::string tun = std::to_string(m.tun);
  ASSERT_LT(at("addr " + tun + " 100.64.0.1/32"), static_cast<long>(lines.size()));
  ASSERT_LT(at("addr " + tun + " 200::53/128"), static_cast<long>(lines.size()));
  EXPECT_GT(at("addr " + tun + " 100.64.0.1/32"), at("addr " + tun + " 100.110.184.96/32"));
  EXPECT_LT(at("addr " + tun + " 200::53/128"), at("up " + tun));

  auto setup = m.up(mesh_config(), DnsMethod::kFile);
  ASSERT_TRUE(setup.ok()) << setup.message();
  const auto& st = m.sys.fake_net().state();
  EXPECT_TRUE(st.service_addresses.count({m.tun, kResponder4}));
  EXPECT_TRUE(st.service_addresses.count({m.tun, kResponder6}));
  // The node's own addresses stay ordinary ones: they are its source addresses.
  EXPECT_FALSE(st.service_addresses.count({m.tun, *net::Prefix::parse("100.110.184.96/32")}));
}

TEST(MeshNames, FileMethodPointsAtTheResponderAndRollbackRestoresExactly) {
  Machine m;
  const auto before = m.sys.state();
  auto setup = m.up(mesh_config(), DnsMethod::kFile);
  ASSERT_TRUE(setup.ok()) << setup.message();
  const std::string text = m.sys.files().at("/etc/resolv.conf");
  EXPECT_NE(text.find("nameserver 100.64.0.1\nnameserver 200::53\nsearch warren\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("192.0.2.53"), std::string::npos) << text;  // the responder forwards
  for (const auto& e : (*setup)->rollback())
    ADD_FAILURE() << e.text();
  EXPECT_EQ(m.sys.state(), before);
}

TEST(MeshNames, ResolvedRoutesOnlyTheMeshDomain) {
  Machine m;
  m.sys.set_programs({"resolvectl"});
  auto setup = m.up(mesh_config("#@warren MeshDomain = corp.mesh\n"), DnsMethod::kResolved);
  ASSERT_TRUE(setup.ok()) << setup.message();
  const std::vector<std::string> got = m.sys.state().resolved.at("mesh0");
  ASSERT_EQ(got.size(), 2u + 1u + 64u + 2u) << ::testing::PrintToString(got);
  EXPECT_EQ(std::vector<std::string>(got.begin(), got.begin() + 4),
            (std::vector<std::string>{"dns:100.64.0.1", "dns:200::53", "domain:~corp.mesh",
                                      "domain:~64.100.in-addr.arpa"}));
  EXPECT_EQ(got[2 + 64], "domain:~127.100.in-addr.arpa");
  EXPECT_EQ(got[2 + 65], "domain:~2.0.ip6.arpa");
  EXPECT_EQ(got[2 + 66], "domain:~3.0.ip6.arpa");
  EXPECT_EQ(std::count(got.begin(), got.end(), "domain:~."), 0);  // not the default route
  EXPECT_EQ(m.sys.files().at("/etc/resolv.conf"), kHostResolv);   // untouched
  for (const auto& e : (*setup)->rollback())
    ADD_FAILURE() << e.text();
  EXPECT_TRUE(m.sys.state().resolved.empty());
}

TEST(MeshNames, ResolvconfMakesTheResponderTheOnlyNameserver) {
  Machine m;
  auto setup = m.up(mesh_config(), DnsMethod::kResolvconf);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(m.sys.state().resolvconf.at("tun.mesh0"),
            "nameserver 100.64.0.1\nnameserver 200::53\nsearch warren\n");
  EXPECT_EQ(m.sys.commands().back(), "resolvconf -a tun.mesh0 -m 0 -x");
  for (const auto& e : (*setup)->rollback())
    ADD_FAILURE() << e.text();
  EXPECT_TRUE(m.sys.state().resolvconf.empty());
}

TEST(MeshNames, PauseTakesBackAddressesAndDnsAndResumePutsThemBack) {
  Machine m;
  auto setup = m.up(mesh_config(), DnsMethod::kFile);
  ASSERT_TRUE(setup.ok()) << setup.message();
  const auto up_state = m.sys.state();
  Standby standby;
  auto p = standby.pause(**setup, PauseCause::kCommand);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_FALSE(m.sys.fake_net().state().addresses.count({m.tun, kResponder4}));
  EXPECT_FALSE(m.sys.fake_net().state().addresses.count({m.tun, kResponder6}));
  EXPECT_EQ(m.sys.files().at("/etc/resolv.conf"), kHostResolv);
  auto r = standby.resume(**setup);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(m.sys.state(), up_state);  // service addresses again (not plain ones), DNS again
}

TEST(MeshNames, ReplayAfterACrashRemovesTheResponderAndRestoresDns) {
  Machine m;
  const auto before = m.sys.state();
  {
    auto setup = m.up(mesh_config(), DnsMethod::kFile);
    ASSERT_TRUE(setup.ok()) << setup.message();
    (*setup)->abandon();  // kill -9
  }
  auto r = replay_journal(m.sys, kJournal, journal_scope(options(DnsMethod::kFile), "mesh0"));
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  EXPECT_EQ(m.sys.state().net.addresses, before.net.addresses);
  EXPECT_EQ(m.sys.files().at("/etc/resolv.conf"), kHostResolv);
}

TEST(MeshNames, ConfigDnsIsNotListedButForwardedTo) {
  Machine m;
  const ClientConfig c = mesh_config("", "DNS = 10.8.0.53, corp.example\n");
  auto setup = m.up(c, DnsMethod::kFile);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(m.sys.files().at("/etc/resolv.conf").find("10.8.0.53"), std::string::npos);
  EXPECT_NE(m.sys.files().at("/etc/resolv.conf").find("search warren corp.example\n"),
            std::string::npos)
      << m.sys.files().at("/etc/resolv.conf");
  const auto plan = *mesh::AddressPlan::create(c.mesh->prefix_v4, c.mesh->prefix_v6);
  EXPECT_EQ(mesh_upstreams(c, kHostResolv, plan),
            (std::vector<net::Endpoint>{*net::Endpoint::parse("10.8.0.53:53")}));
}

TEST(MeshNames, UpstreamsAreTheHostsResolversWithoutTheResponder) {
  const ClientConfig c = mesh_config();
  const auto plan = *mesh::AddressPlan::create(c.mesh->prefix_v4, c.mesh->prefix_v6);
  // A resolv.conf that is already ours (a second `up` after a crash that was not replayed):
  // the responder is never its own upstream.
  const std::string text =
      "nameserver 100.64.0.1\nnameserver 192.0.2.53\nnameserver 200::53\nnameserver 2001:db8::1\n";
  EXPECT_EQ(mesh_upstreams(c, text, plan),
            (std::vector<net::Endpoint>{*net::Endpoint::parse("192.0.2.53:53"),
                                        *net::Endpoint::parse("[2001:db8::1]:53")}));
  EXPECT_EQ(upstreams_file(DnsMethod::kResolved, "/etc/resolv.conf"),
            "/run/systemd/resolve/resolv.conf");
  EXPECT_EQ(upstreams_file(DnsMethod::kFile, "/etc/resolv.conf"), "/etc/resolv.conf");
}

TEST(MeshNames, ReverseZonesCoverExactlyThePrefix) {
  auto zones = [](const char* p) { return reverse_zones(*net::Prefix::parse(p)); };
  EXPECT_EQ(zones("10.99.1.0/24"), (std::vector<std::string>{"1.99.10.in-addr.arpa"}));
  EXPECT_EQ(zones("10.99.1.7/23"),  // host bits ignored
            (std::vector<std::string>{"0.99.10.in-addr.arpa", "1.99.10.in-addr.arpa"}));
  const auto cgnat = zones("100.64.0.0/10");
  ASSERT_EQ(cgnat.size(), 64u);
  EXPECT_EQ(cgnat.front(), "64.100.in-addr.arpa");
  EXPECT_EQ(cgnat.back(), "127.100.in-addr.arpa");
  EXPECT_EQ(zones("200::/7"), (std::vector<std::string>{"2.0.ip6.arpa", "3.0.ip6.arpa"}));
  EXPECT_EQ(zones("fd12:3456:7890::/48"),
            (std::vector<std::string>{"0.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa"}));
  // /46: 11 whole nibbles, then 2 bits of the 12th (c = 11|00): c, d, e, f.
  EXPECT_EQ(zones("fd12:3456:789c::/46"),
            (std::vector<std::string>{
                "c.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa", "d.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa",
                "e.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa", "f.9.8.7.6.5.4.3.2.1.d.f.ip6.arpa"}));
}

TEST(MeshNames, PlainClientsKeepTheirDns) {
  Machine m;
  ClientConfig c = mesh_config("", "DNS = 10.8.0.53\n");
  c.mesh.reset();
  auto setup = m.up(c, DnsMethod::kFile);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_NE(m.sys.files().at("/etc/resolv.conf").find("nameserver 10.8.0.53\n"), std::string::npos);
  EXPECT_TRUE(m.sys.fake_net().state().service_addresses.empty());
}

}  // namespace
}  // namespace warren::client
