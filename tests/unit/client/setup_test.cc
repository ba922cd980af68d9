// Set-up, rollback and crash recovery against the fake system: a failure injected at every
// step in turn leaves exactly the state from before `up`.
#include <gtest/gtest.h>

#include "host/fake/fake_system.h"
#include "client/plan.h"
#include "client/steps.h"

namespace warren::client {
namespace {

using host::fake::FakeSystem;
namespace fake = host::fake;

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kJournal = "/run/warren/wg0.state";
constexpr const char* kResolv = "/etc/resolv.conf";
constexpr const char* kSysctl = "/proc/sys/net/ipv4/conf/all/src_valid_mark";

ClientConfig config(const std::string& allowed, const std::string& extra = "") {
  return parse_config(std::string("[Interface]\nPrivateKey = ") + kPriv +
                          "\nAddress = 10.9.0.2/24, fd09::2/64\nDNS = 10.9.0.1, corp.example\n"
                          "MTU = 1380\n" +
                          extra + "[Peer]\nPublicKey = " + kPub + "\nAllowedIPs = " + allowed +
                          "\nEndpoint = 192.0.2.1:51820\n",
                      "/etc/wireguard/wg0.conf");
}

PlanOptions options(DnsMethod dns = DnsMethod::kFile) {
  PlanOptions o;
  o.dns = dns;
  o.resolv_conf = kResolv;
  o.state_dir = "/run/warren";
  o.sysctl_dir = "/proc/sys";
  o.endpoints = {*net::IpAddress::parse("10.20.1.1")};  // inside 10.20.0.0/16 when routed
  return o;
}

// A machine with an uplink, a default route, one rule of its own and a resolv.conf; the
// tunnel link exists (the engine made the TUN).
struct Machine {
  FakeSystem sys;
  std::uint32_t tun = 0;
  Machine() {
    auto eth = sys.fake_net().add_link("eth0", 1500, true);
    (void)sys.fake_net().add_address(eth, *net::Prefix::parse("192.0.2.7/24"));
    (void)sys.fake_net().add_route(platform::RouteSpec{
        *net::Prefix::parse("0.0.0.0/0"), eth, 0, {}, net::IpAddress::parse("192.0.2.254")});
    platform::RuleSpec r;
    r.table = 100;
    r.fwmark = 7;
    (void)sys.fake_net().add_rule(r);
    tun = sys.fake_net().add_link("wg0", 1420, false);
    sys.files()[kResolv] = "nameserver 192.0.2.53\n";
    sys.files()[kSysctl] = "0\n";
    sys.set_programs({"resolvconf", "resolvectl"});
  }
};

// bring_up into `out`; the Status of it.
Status up_into(std::unique_ptr<ActiveSetup>& out, System& sys, const ClientConfig& c,
               std::uint32_t ifindex, std::uint32_t mtu, const PlanOptions& o,
               const std::string& journal) {
  auto r = bring_up(sys, c, ifindex, mtu, o, journal);
  if (!r)
    return r.error();
  out = std::move(*r);
  return ok();
}

void expect_restored_net(const fake::FakeSystemState& before, FakeSystem& sys) {
  EXPECT_EQ(sys.state().net, before.net);
}

TEST(ClientSetup, SplitTunnelPlan) {
  Machine m;
  ClientConfig c = config("10.9.0.0/24, 10.20.0.0/16, fd20::/48");
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, c, m.tun, 1420, options(), kJournal).message(), "");
  const auto& st = m.sys.fake_net().state();
  EXPECT_EQ(st.links.at(m.tun).mtu, 1380u);
  EXPECT_TRUE(st.links.at(m.tun).up);
  EXPECT_TRUE(st.addresses.count({m.tun, *net::Prefix::parse("10.9.0.2/24")}));
  // 10.9.0.0/24 is the address's own connected route: not added again.
  int on_tun = 0;
  for (const auto& r : st.routes)
    on_tun += r.ifindex == m.tun;
  EXPECT_EQ(on_tun, 2);
  EXPECT_TRUE(st.routes.count(
      platform::RouteSpec{*net::Prefix::parse("10.20.0.0/16"), m.tun, 254, {}, {}}));
  EXPECT_EQ(st.rules.size(), 1u);  // no policy routing for a split tunnel
  EXPECT_EQ(effective_fwmark(c), 0u);
  EXPECT_NE(m.sys.files()[kResolv].find("nameserver 10.9.0.1\nsearch corp.example\n"),
            std::string::npos);
  EXPECT_EQ(m.sys.files()["/run/warren/wg0.resolv.conf"], "nameserver 192.0.2.53\n");
  EXPECT_EQ(m.sys.files()[kSysctl], "0\n");
}

TEST(ClientSetup, FullTunnelAsWgQuick) {
  Machine m;
  ClientConfig c = config("0.0.0.0/0, ::/0");
  EXPECT_EQ(effective_fwmark(c), kDefaultFullTunnelTable);
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, c, m.tun, 1420, options(), kJournal).message(), "");
  const auto& st = m.sys.fake_net().state();
  EXPECT_TRUE(
      st.routes.count(platform::RouteSpec{*net::Prefix::parse("0.0.0.0/0"), m.tun, 51820, {}, {}}));
  EXPECT_TRUE(
      st.routes.count(platform::RouteSpec{*net::Prefix::parse("::/0"), m.tun, 51820, {}, {}}));
  ASSERT_EQ(st.rules.size(), 5u);
  for (net::Family f : {net::Family::kV4, net::Family::kV6}) {
    bool not_mark = false, suppress = false;
    for (const auto& r : st.rules) {
      if (r.family != f)
        continue;
      not_mark |= r.invert && r.fwmark == 51820u && r.table == 51820u;
      suppress |= r.table == 254 && r.suppress_prefixlength == 0u && !r.invert;
    }
    EXPECT_TRUE(not_mark && suppress);
  }
  EXPECT_EQ(m.sys.files()[kSysctl], "1\n");
  // The main table's default route is untouched (suppressed by the rule, not replaced).
  EXPECT_TRUE(st.routes.count(platform::RouteSpec{
      *net::Prefix::parse("0.0.0.0/0"), 1, 254, {}, net::IpAddress::parse("192.0.2.254")}));
}

TEST(ClientSetup, EndpointInsideRoutedPrefixGetsAHostRoute) {
  Machine m;
  PlanOptions o = options();
  o.endpoints = {*net::IpAddress::parse("192.0.2.1"), *net::IpAddress::parse("198.51.100.1")};
  ClientConfig c = config("0.0.0.0/1, 128.0.0.0/1");
  const auto before = m.sys.state();
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, c, m.tun, 1420, o, kJournal).message(), "");
  // Both endpoints lie inside 128.0.0.0/1: each is pinned to its current path (the uplink).
  int pinned = 0;
  for (const auto& route : m.sys.fake_net().state().routes)
    pinned += route.metric == kEndpointRouteMetric && route.ifindex == 1 &&
              route.gateway == net::IpAddress::parse("192.0.2.254") &&
              route.destination.length == 32;
  EXPECT_EQ(pinned, 2);
  auto r = m.sys.fake_net().route_get(*net::IpAddress::parse("198.51.100.1"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ifindex, 1u) << "the endpoint still leaves by eth0";
  EXPECT_EQ(r->gateway, net::IpAddress::parse("192.0.2.254"));
  auto other = m.sys.fake_net().route_get(*net::IpAddress::parse("198.51.100.2"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->ifindex, m.tun) << "everything else goes into the tunnel";
  up.reset();
  expect_restored_net(before, m.sys);
  // Without overlap there is no host route.
  Machine m2;
  std::unique_ptr<ActiveSetup> up2;
  ASSERT_EQ(up_into(up2, m2.sys, config("10.20.0.0/16"), m2.tun, 1420, o, kJournal).message(), "");
  for (const auto& route : m2.sys.fake_net().state().routes)
    EXPECT_NE(route.metric, kEndpointRouteMetric);
}

TEST(ClientSetup, ExplicitTableAndOff) {
  Machine m;
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(
      up_into(up, m.sys, config("0.0.0.0/0", "Table = 1234\n"), m.tun, 1420, options(), kJournal).message(),
      "");
  EXPECT_TRUE(m.sys.fake_net().state().routes.count(
      platform::RouteSpec{*net::Prefix::parse("0.0.0.0/0"), m.tun, 1234, {}, {}}));
  EXPECT_EQ(m.sys.fake_net().state().rules.size(), 1u);
  up.reset();
  Machine m2;
  std::unique_ptr<ActiveSetup> up2;  // after m2: destroyed (rolled back) before it
  const auto before = m2.sys.fake_net().state().routes;
  ASSERT_EQ(up_into(up2, m2.sys, config("0.0.0.0/0, 10.1.0.0/16", "Table = off\n"), m2.tun, 1420,
                     options(), kJournal).message(),
            "");
  EXPECT_EQ(m2.sys.fake_net().state().routes, before);
}

void expect_restored(const fake::FakeSystemState& before, const FakeSystem& sys,
                     const std::string& what) {
  auto after = sys.state();
  // The link itself goes with the engine; its admin state and MTU must be back too.
  EXPECT_EQ(after.net, before.net) << what;
  EXPECT_EQ(after.files, before.files) << what;
  EXPECT_EQ(after.resolvconf, before.resolvconf) << what;
  EXPECT_EQ(after.resolved, before.resolved) << what;
}

// Every rtnetlink mutation and every file/program operation fails once, in turn.
void fail_everywhere(DnsMethod dns, const std::string& allowed) {
  SCOPED_TRACE(std::string(dns_method_name(dns)) + " " + allowed);
  unsigned net_ops = 0, sys_ops = 0;
  {
    Machine m;
    std::unique_ptr<ActiveSetup> up;
    const unsigned n0 = m.sys.fake_net().mutations(), s0 = m.sys.ops();
    ASSERT_EQ(up_into(up, m.sys, config(allowed), m.tun, 1420, options(dns), kJournal).message(), "");
    net_ops = m.sys.fake_net().mutations() - n0;
    sys_ops = m.sys.ops() - s0;
    const auto before_down = m.sys.state();
    EXPECT_NE(before_down.net, Machine().sys.state().net);
  }
  ASSERT_GE(net_ops, 5u);
  ASSERT_GE(sys_ops, 3u);
  for (int kind = 0; kind < 2; ++kind) {
    const unsigned count = kind == 0 ? net_ops : sys_ops;
    for (unsigned n = 1; n <= count; ++n) {
      Machine m;
      const auto before = m.sys.state();
      if (kind == 0)
        m.sys.fake_net().fail_mutation(n);
      else
        m.sys.fail_op(n);
      std::unique_ptr<ActiveSetup> up;
      const std::string e =
          up_into(up, m.sys, config(allowed), m.tun, 1420, options(dns), kJournal).message();
      const std::string what = (kind == 0 ? "netlink op " : "system op ") + std::to_string(n);
      EXPECT_NE(e, "") << what;
      EXPECT_EQ(up, nullptr) << what;
      m.sys.fake_net().fail_mutation(0);
      m.sys.fail_op(0);
      // A failure during rollback itself (the journal removal) leaves the journal for replay.
      if (m.sys.files().count(kJournal)) {
        auto r = replay_journal(m.sys, kJournal);
        EXPECT_TRUE(r.errors.empty()) << what;
      }
      expect_restored(before, m.sys, what);
    }
  }
}

TEST(ClientSetup, FailureAtEveryStepLeavesNothingBehind) {
  fail_everywhere(DnsMethod::kFile, "0.0.0.0/0, ::/0, 10.20.0.0/16");
  fail_everywhere(DnsMethod::kResolvconf, "0.0.0.0/0, 10.20.0.0/16");
  fail_everywhere(DnsMethod::kResolved, "::/0, 10.20.0.0/16, fd20::/48");
}

TEST(ClientSetup, DownRestoresExactly) {
  for (DnsMethod dns : {DnsMethod::kFile, DnsMethod::kResolvconf, DnsMethod::kResolved}) {
    Machine m;
    const auto before = m.sys.state();
    std::unique_ptr<ActiveSetup> up;
    ASSERT_EQ(up_into(up, m.sys, config("0.0.0.0/0, ::/0, 10.20.0.0/16"), m.tun, 1420, options(dns), kJournal).message(),
              "");
    EXPECT_NE(m.sys.state(), before);
    EXPECT_TRUE(m.sys.files().count(kJournal));
    EXPECT_TRUE(up->rollback().empty());
    expect_restored(before, m.sys, dns_method_name(dns));
    EXPECT_FALSE(m.sys.files().count(kJournal));
  }
}

TEST(ClientSetup, ResolvconfAndResolvedCalls) {
  Machine m;
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, config("10.20.0.0/16"), m.tun, 1420, options(DnsMethod::kResolvconf), kJournal).message(),
            "");
  EXPECT_EQ(m.sys.state().resolvconf.at("tun.wg0"), "nameserver 10.9.0.1\nsearch corp.example\n");
  EXPECT_EQ(m.sys.commands().back(), "resolvconf -a tun.wg0 -m 0 -x");
  up.reset();  // RAII: destruction rolls back
  EXPECT_TRUE(m.sys.state().resolvconf.empty());
  ASSERT_EQ(up_into(up, m.sys, config("10.20.0.0/16"), m.tun, 1420, options(DnsMethod::kResolved), kJournal).message(),
            "");
  EXPECT_EQ(m.sys.state().resolved.at("wg0"),
            (std::vector<std::string>{"dns:10.9.0.1", "domain:~.", "domain:corp.example"}));
  up.reset();
  EXPECT_TRUE(m.sys.state().resolved.empty());
}

TEST(ClientSetup, DetectDnsMethod) {
  FakeSystem s;
  EXPECT_EQ(detect_dns_method(s), DnsMethod::kFile);
  s.set_resolved_running(true);
  EXPECT_EQ(detect_dns_method(s), DnsMethod::kResolved);
  s.set_programs({"resolvconf"});
  EXPECT_EQ(detect_dns_method(s), DnsMethod::kResolvconf);
}

// kill -9 at any point: the journal holds every step that may have taken effect; the kernel
// drops the TUN with its routes and addresses; replay restores the rest.
TEST(ClientSetup, CrashRecoveryFromJournal) {
  for (unsigned stop_after = 0;; ++stop_after) {
    Machine m;
    const auto before = m.sys.state();
    std::unique_ptr<ActiveSetup> up;
    // Simulate the crash: let `stop_after` mutations through, then the process "dies" (the
    // setup object is leaked, never rolled back).
    unsigned total = 0;
    {
      Machine probe;
      std::unique_ptr<ActiveSetup> p;
      ASSERT_EQ(up_into(p, probe.sys, config("0.0.0.0/0, ::/0, 10.20.0.0/16"), probe.tun, 1420,
                         options(), kJournal).message(),
                "");
      total = probe.sys.fake_net().mutations() + probe.sys.ops();
    }
    if (stop_after > total)
      break;
    m.sys.fake_net().fail_mutation(0);
    std::string e;
    {
      std::unique_ptr<ActiveSetup> crashed;
      auto opened = ActiveSetup::open(m.sys, kJournal);
      ASSERT_TRUE(opened.ok()) << opened.message();
      crashed = std::move(*opened);
      auto steps =
          plan_steps(config("0.0.0.0/0, ::/0, 10.20.0.0/16"), m.tun, 1420, m.sys, options());
      unsigned done = 0;
      for (auto& s : steps) {
        if (done++ >= stop_after)
          break;
        ASSERT_EQ(crashed->apply(std::move(s)).message(), "");
      }
      crashed->abandon();  // kill -9: nothing is undone
    }
    m.sys.fake_net().remove_link(m.tun);  // the kernel deletes the TUN with its process
    auto before_net = before.net;
    before_net.links.erase(m.tun);
    auto r = replay_journal(m.sys, kJournal);
    EXPECT_TRUE(r.found);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
    auto after = m.sys.state();
    EXPECT_EQ(after.net, before_net) << "stopped after " << stop_after;
    EXPECT_EQ(after.files, before.files) << "stopped after " << stop_after;
    // Replay again: nothing left to do, nothing found.
    EXPECT_FALSE(replay_journal(m.sys, kJournal).found);
    if (stop_after > 20)
      break;
  }
}

TEST(ClientSetup, JournalFromAnotherNamespaceIsNotReplayed) {
  Machine m;
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, config("0.0.0.0/0"), m.tun, 1420, options(), kJournal).message(), "");
  up->abandon();
  const auto rules = m.sys.fake_net().state().rules;
  m.sys.set_netns_id("other");
  auto r = replay_journal(m.sys, kJournal);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].text().find("another network namespace"), std::string::npos);
  EXPECT_EQ(m.sys.fake_net().state().rules, rules);
  EXPECT_TRUE(m.sys.files().count(kJournal));
}

TEST(ClientSetup, StepsRoundTripThroughJournalLines) {
  platform::RuleSpec rule;
  rule.family = net::Family::kV6;
  rule.table = 51820;
  rule.fwmark = 51820;
  rule.invert = true;
  platform::RouteSpec route{*net::Prefix::parse("10.0.0.0/8"), 3, 7, 100u,
                            net::IpAddress::parse("10.0.0.1")};
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(host::make_rule_step(rule));
  steps.push_back(host::make_route_step(route));
  steps.push_back(host::make_address_step(3, *net::Prefix::parse("fd00::2/64")));
  steps.push_back(host::make_mtu_step(3, 1380, 1420));
  steps.push_back(host::make_link_up_step(3));
  steps.push_back(host::make_sysctl_step("/proc/sys/net/x", "1", "0"));
  steps.push_back(make_dns_step(DnsMethod::kFile, "wg0", {}, "/etc/resolv.conf",
                                "/run/warren/wg0.resolv.conf"));
  steps.push_back(make_dns_step(DnsMethod::kResolvconf, "wg0", {}, "", ""));
  steps.push_back(make_dns_step(DnsMethod::kResolved, "wg0", {}, "", ""));
  for (const auto& s : steps) {
    auto back = parse_step(s->journal_line());
    ASSERT_NE(back, nullptr) << s->journal_line();
    EXPECT_EQ(back->journal_line(), s->journal_line());
  }
  EXPECT_EQ(parse_step("route bogus"), nullptr);
  EXPECT_EQ(parse_step("rule 5 1 - - - 0"), nullptr);
  EXPECT_EQ(parse_step(""), nullptr);
}

}  // namespace
}  // namespace warren::client
