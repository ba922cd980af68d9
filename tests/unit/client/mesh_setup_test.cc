// `warren up` of a mesh node against the fake system: the /32 and /128, the two prefix routes
// (idempotent), the CGNAT conflict check and its override, and a clean rollback.
#include <gtest/gtest.h>

#include "client/plan.h"
#include "client/steps.h"
#include "host/fake/fake_system.h"

namespace warren::client {
namespace {

using host::fake::FakeSystem;

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kJournal = "/run/warren/mesh0.state";

ClientConfig mesh_config(const std::string& extra = "") {
  return parse_config(std::string("#@warren MeshPrefix4 = 100.64.0.0/10\n"
                                  "#@warren MeshPrefix6 = 200::/7\n") +
                          extra + "[Interface]\nPrivateKey = " + kPriv +
                          "\nAddress = 100.110.184.96/32, 28f:33d4:267b:73bd:9730:1a5e:dd33:5216/128\n"
                          "[Peer]\nPublicKey = " +
                          kPub + "\nAllowedIPs = 10.8.0.1/32\nEndpoint = 192.0.2.1:51820\n",
                      "/etc/warren/mesh0.conf");
}

PlanOptions options() {
  PlanOptions o;
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
    sys.files()["/etc/resolv.conf"] = "nameserver 192.0.2.53\n";
  }
};

Status up(Machine& m, const ClientConfig& c, std::unique_ptr<ActiveSetup>& out) {
  auto r = bring_up(m.sys, c, m.tun, 1420, options(), kJournal);
  if (!r)
    return r.error();
  out = std::move(*r);
  return ok();
}

platform::RouteSpec on_tun(const Machine& m, const char* prefix) {
  return platform::RouteSpec{*net::Prefix::parse(prefix), m.tun, 254, {}, {}};
}

TEST(MeshSetup, AddressesAndPrefixRoutes) {
  Machine m;
  const auto before = m.sys.state();
  std::unique_ptr<ActiveSetup> setup;
  ASSERT_EQ(up(m, mesh_config(), setup).message(), "");
  const auto& st = m.sys.fake_net().state();
  EXPECT_TRUE(st.links.at(m.tun).up);
  EXPECT_TRUE(st.addresses.count({m.tun, *net::Prefix::parse("100.110.184.96/32")}));
  EXPECT_TRUE(st.addresses.count(
      {m.tun, *net::Prefix::parse("28f:33d4:267b:73bd:9730:1a5e:dd33:5216/128")}));
  EXPECT_TRUE(st.routes.count(on_tun(m, "100.64.0.0/10")));
  EXPECT_TRUE(st.routes.count(on_tun(m, "200::/7")));
  EXPECT_TRUE(st.routes.count(on_tun(m, "10.8.0.1/32")));  // the coordinator's routes, as ever
  for (const auto& e : setup->rollback())
    ADD_FAILURE() << e.text();
  setup.reset();
  EXPECT_EQ(m.sys.state().net, before.net);
}

TEST(MeshSetup, PrefixRouteAfterLinkUpAndIdempotent) {
  Machine m;
  auto steps = plan_steps(mesh_config(), m.tun, 1420, m.sys, options());
  std::size_t link_up = 0, v6_route = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (steps[i]->journal_line().rfind("up ", 0) == 0)
      link_up = i;
    if (steps[i]->journal_line().rfind("route 200::/7 ", 0) == 0)
      v6_route = i;
  }
  EXPECT_GT(v6_route, link_up);
  // The identical route exists already (put there by someone, or a second `up` of the plan
  // after a crash): not an error.
  ASSERT_TRUE(m.sys.fake_net().add_route(on_tun(m, "200::/7")).ok());
  std::unique_ptr<ActiveSetup> setup;
  EXPECT_EQ(up(m, mesh_config(), setup).message(), "");
  EXPECT_TRUE(m.sys.fake_net().state().routes.count(on_tun(m, "200::/7")));
}

TEST(MeshSetup, CoordinatorRoutesNamingThePrefixAreNotAddedTwice) {
  Machine m;
  ClientConfig c = mesh_config();
  c.peers[0].allowed_ips.push_back(*net::Prefix::parse("100.64.0.0/10"));
  std::unique_ptr<ActiveSetup> setup;
  EXPECT_EQ(up(m, c, setup).message(), "");
}

TEST(MeshSetup, CgnatConflictRefusedNamingTheInterface) {
  for (const char* conflicting : {"100.64.5.5/32", "100.100.1.2/10", "203:1::5/64"}) {
    Machine m;
    auto ts = m.sys.fake_net().add_link("tailscale0", 1280, true);
    ASSERT_TRUE(m.sys.fake_net().add_address(ts, *net::Prefix::parse(conflicting)).ok());
    const auto before = m.sys.state();
    std::unique_ptr<ActiveSetup> setup;
    Status s = up(m, mesh_config(), setup);
    ASSERT_FALSE(s.ok()) << conflicting;
    EXPECT_EQ(s.code(), EADDRINUSE);
    EXPECT_NE(s.message().find("interface tailscale0 already has the address " +
                               std::string(conflicting)),
              std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("MeshAllowOverlap"), std::string::npos);
    EXPECT_EQ(m.sys.state().net, before.net);  // nothing applied
    EXPECT_EQ(m.sys.files().count(kJournal), 0u);
  }
}

TEST(MeshSetup, OverrideAndUnrelatedAddresses) {
  Machine m;
  auto ts = m.sys.fake_net().add_link("cgnat0", 1500, true);
  ASSERT_TRUE(m.sys.fake_net().add_address(ts, *net::Prefix::parse("100.64.5.5/32")).ok());
  std::unique_ptr<ActiveSetup> setup;
  EXPECT_EQ(up(m, mesh_config("#@warren MeshAllowOverlap = true\n"), setup).message(), "");
  // Just outside both prefixes, and our own interface's addresses: no conflict.
  Machine n;
  auto other = n.sys.fake_net().add_link("eth1", 1500, true);
  ASSERT_TRUE(n.sys.fake_net().add_address(other, *net::Prefix::parse("100.128.0.1/24")).ok());
  ASSERT_TRUE(n.sys.fake_net().add_address(other, *net::Prefix::parse("400::1/64")).ok());
  ASSERT_TRUE(n.sys.fake_net().add_address(n.tun, *net::Prefix::parse("100.64.9.9/32")).ok());
  EXPECT_TRUE(check_mesh_overlap(n.sys.fake_net(), mesh_config(), n.tun).ok());
  // Not a mesh config: never checked.
  ClientConfig plain = mesh_config();
  plain.mesh.reset();
  auto bad = n.sys.fake_net().add_link("ts1", 1500, true);
  ASSERT_TRUE(n.sys.fake_net().add_address(bad, *net::Prefix::parse("100.64.1.1/32")).ok());
  EXPECT_TRUE(check_mesh_overlap(n.sys.fake_net(), plain, n.tun).ok());
  EXPECT_FALSE(check_mesh_overlap(n.sys.fake_net(), mesh_config(), n.tun).ok());
}

TEST(MeshSetup, JournalReplayRemovesTheMeshRoutes) {
  Machine m;
  const auto before = m.sys.state();
  {
    std::unique_ptr<ActiveSetup> setup;
    ASSERT_EQ(up(m, mesh_config(), setup).message(), "");
    setup->abandon();  // kill -9
  }
  auto r = replay_journal(m.sys, kJournal, journal_scope(options(), "mesh0"));
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  auto after = m.sys.state().net;
  EXPECT_EQ(after.routes, before.net.routes);
  EXPECT_EQ(after.addresses, before.net.addresses);
}

}  // namespace
}  // namespace warren::client
