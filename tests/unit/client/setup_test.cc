// Set-up, rollback and crash recovery against the fake system: a failure injected at every
// step in turn leaves exactly the state from before `up`.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "host/fake/fake_system.h"
#include "client/plan.h"
#include "client/steps.h"
#include "platform/files.h"

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

JournalScope scope() {
  return journal_scope(options(), "wg0");
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
        auto r = replay_journal(m.sys, kJournal, scope());
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
    auto r = replay_journal(m.sys, kJournal, scope());
    EXPECT_TRUE(r.found);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
    auto after = m.sys.state();
    EXPECT_EQ(after.net, before_net) << "stopped after " << stop_after;
    EXPECT_EQ(after.files, before.files) << "stopped after " << stop_after;
    // Replay again: nothing left to do, nothing found.
    EXPECT_FALSE(replay_journal(m.sys, kJournal, scope()).found);
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
  auto r = replay_journal(m.sys, kJournal, scope());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].text().find("another network namespace"), std::string::npos);
  EXPECT_EQ(m.sys.fake_net().state().rules, rules);
  EXPECT_TRUE(m.sys.files().count(kJournal));
}

// Power loss with the tunnel up: the reboot took the kernel's state (routes, rules, sysctls)
// but /etc/resolv.conf is on disk and still points into the tunnel. Replaying the journal of
// the earlier boot restores resolv.conf and leaves today's kernel settings alone.
TEST(ClientSetup, JournalFromAnEarlierBootRestoresResolvConfOnly) {
  Machine m;
  m.sys.set_netns_id("4:4026531833");
  const auto before = m.sys.state();
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, config("0.0.0.0/0"), m.tun, 1420, options(), kJournal).message(), "");
  up->abandon();
  ASSERT_NE(m.sys.files()[kResolv], before.files.at(kResolv));
  // The reboot: a new boot id, nsfs got another device number (the initial namespace keeps
  // its inode), and today's kernel settings differ from the journal's old values.
  m.sys.set_boot_id("boot-2");
  m.sys.set_netns_id("3:4026531833");
  m.sys.files()[kSysctl] = "2\n";
  const auto net_now = m.sys.state().net;
  auto r = replay_journal(m.sys, kJournal, scope());
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  EXPECT_TRUE(r.stale);
  EXPECT_EQ(r.undone, 1u);
  EXPECT_EQ(m.sys.files()[kResolv], before.files.at(kResolv));
  EXPECT_FALSE(m.sys.files().count("/run/warren/wg0.resolv.conf"));
  EXPECT_FALSE(m.sys.files().count(kJournal));
  EXPECT_EQ(m.sys.files()[kSysctl], "2\n") << "a sysctl of the earlier boot is not written back";
  EXPECT_EQ(m.sys.state().net, net_now) << "no rule or route of the earlier boot is touched";
  // resolvconf's records live under /run: nothing to undo after a reboot.
  Machine m2;
  ASSERT_EQ(up_into(up, m2.sys, config("10.20.0.0/16"), m2.tun, 1420, options(DnsMethod::kResolvconf),
                     kJournal).message(), "");
  up->abandon();
  m2.sys.set_boot_id("boot-2");
  const auto commands = m2.sys.commands().size();
  r = replay_journal(m2.sys, kJournal, scope());
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.undone, 0u);
  EXPECT_EQ(m2.sys.commands().size(), commands);
  // Another namespace (another inode) of an earlier boot is still refused.
  Machine m3;
  m3.sys.set_netns_id("4:4026532000");
  ASSERT_EQ(up_into(up, m3.sys, config("10.20.0.0/16"), m3.tun, 1420, options(), kJournal).message(), "");
  up->abandon();
  m3.sys.set_boot_id("boot-2");
  m3.sys.set_netns_id("4:4026531833");
  r = replay_journal(m3.sys, kJournal, scope());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_TRUE(m3.sys.files().count(kJournal));
  EXPECT_NE(m3.sys.files()[kResolv], "nameserver 192.0.2.53\n");
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
  steps.push_back(make_interface_step("wg0", 3));
  for (const auto& s : steps) {
    auto back = parse_step(s->journal_line());
    ASSERT_NE(back, nullptr) << s->journal_line();
    EXPECT_EQ(back->journal_line(), s->journal_line());
  }
  EXPECT_EQ(parse_step("route bogus"), nullptr);
  EXPECT_EQ(parse_step("rule 5 1 - - - 0"), nullptr);
  EXPECT_EQ(parse_step(""), nullptr);
}

// A journal is a file root replays: a line this interface's `up` would never have written —
// a foreign path, another interface or link, a rule or sysctl not of ours — refuses the whole
// journal with an error naming the line, and nothing is undone.
TEST(ClientSetup, TamperedJournalEntryIsRefusedAndNothingUndone) {
  const std::vector<std::pair<std::string, std::string>> tampered = {
      {"dns-file /etc/shadow /run/warren/wg0.resolv.conf",
       "names /etc/shadow; the resolv.conf in use is /etc/resolv.conf"},
      {"dns-file /etc/resolv.conf /tmp/evil", "names /tmp/evil; wg0's resolv.conf backup is"},
      {"sysctl /proc/sys/kernel/modprobe /tmp/x /sbin/modprobe", "names /proc/sys/kernel/modprobe"},
      {"addr 1 192.0.2.7/24", "names link 1, but wg0 was link 2"},
      {"route 0.0.0.0/0 1 0 - 192.0.2.254", "a route on link 1 that is neither wg0's"},
      {"rule 4 100 - 7 - 0", "a rule warren up never adds"},
      {"dns-resolvconf eth0", "names interface eth0, but this is the journal of wg0"},
      {"interface wg0 2", "a second interface line"},
      {"firewall 4 filter INPUT -j ACCEPT", "not a step warren up takes"},
  };
  for (const auto& [line, why] : tampered) {
    SCOPED_TRACE(line);
    Machine m;
    std::unique_ptr<ActiveSetup> up;
    ASSERT_EQ(up_into(up, m.sys, config("0.0.0.0/0, ::/0"), m.tun, 1420, options(), kJournal).message(), "");
    up->abandon();  // kill -9
    m.sys.fake_net().remove_link(m.tun);
    // The tampered line goes in the middle: the steps around it would be undone otherwise.
    std::string& j = m.sys.files()[kJournal];
    const auto second = j.find('\n', j.find('\n') + 1);
    j.insert(second + 1, line + "\n");
    const auto before = m.sys.state();
    auto r = replay_journal(m.sys, kJournal, scope());
    ASSERT_EQ(r.errors.size(), 1u);
    const std::string e = r.errors[0].text();
    EXPECT_NE(e.find(std::string(kJournal) + ":3: refusing to replay '" + line + "'"), std::string::npos) << e;
    EXPECT_NE(e.find(why), std::string::npos) << e;
    EXPECT_EQ(r.undone, 0u);
    EXPECT_EQ(m.sys.state(), before) << "nothing undone, the journal kept";
  }
  // The journal of another interface (renamed into place) is refused too.
  Machine m;
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, config("0.0.0.0/0"), m.tun, 1420, options(), kJournal).message(), "");
  up->abandon();
  auto r = replay_journal(m.sys, kJournal, journal_scope(options(), "wg1"));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].text().find("names interface wg0, but this is the journal of wg1"),
            std::string::npos);
  // Its own journal replays.
  r = replay_journal(m.sys, kJournal, scope());
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
}

// The link index of a dead daemon's TUN may name another link by the time of the replay: its
// addresses are not ours to delete.
TEST(ClientSetup, ReplaySkipsALinkIndexThatNamesAnotherLinkNow) {
  Machine m;
  std::unique_ptr<ActiveSetup> up;
  ASSERT_EQ(up_into(up, m.sys, config("10.20.0.0/16"), m.tun, 1420, options(), kJournal).message(), "");
  up->abandon();
  m.sys.fake_net().remove_link(m.tun);
  // Pretend the journal named the uplink's index for the TUN (a reused index).
  std::string& j = m.sys.files()[kJournal];
  const std::string tun = std::to_string(m.tun);
  for (std::size_t p; (p = j.find(" " + tun + " ")) != std::string::npos;)
    j.replace(p, tun.size() + 2, " 1 ");
  for (const std::string line : {"up ", "interface wg0 "})
    for (std::size_t p; (p = j.find(line + tun + "\n")) != std::string::npos;)
      j.replace(p, line.size() + tun.size() + 1, line + "1\n");
  ASSERT_NE(j.find("interface wg0 1\n"), std::string::npos) << j;
  (void)m.sys.fake_net().add_address(1, *net::Prefix::parse("10.9.0.2/24"));
  const auto net_before = m.sys.state().net;
  auto r = replay_journal(m.sys, kJournal, scope());
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  EXPECT_EQ(m.sys.state().net, net_before) << "eth0 keeps its address, MTU and state";
}

// Real files: a link planted where the client writes as root, and a state directory others can
// write, are refused (platform/files.h trusted files) — through the real host::System.
class ClientFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/warren-client-files.XXXXXX";
    ASSERT_NE(::mkdtemp(t), nullptr);
    dir_ = t;
    state_ = dir_ + "/state";
    ASSERT_TRUE(platform::make_directory(state_, 0700).ok());
    ASSERT_TRUE(platform::create_file(dir_ + "/resolv.conf", "nameserver 192.0.2.53\n", 0644).ok());
    ASSERT_TRUE(platform::create_file(dir_ + "/target", "precious\n", 0600).ok());
    auto sys = host::make_system();
    if (!sys)
      GTEST_SKIP() << "no rtnetlink: " << sys.message();
    sys_ = std::move(*sys);
  }
  void TearDown() override { (void)!std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string read(const std::string& p) { return platform::read_file(p).value(); }
  std::string dir_, state_;
  std::unique_ptr<System> sys_;
};

TEST_F(ClientFiles, SymlinkAtTheBackupPathIsRefused) {
  const std::string backup = state_ + "/wg0.resolv.conf";
  ASSERT_EQ(::symlink((dir_ + "/target").c_str(), backup.c_str()), 0);
  auto dns = make_dns_step(DnsMethod::kFile, "wg0", DnsSettings{{*net::IpAddress::parse("10.9.0.1")}, {}},
                           dir_ + "/resolv.conf", backup);
  auto s = dns->apply(*sys_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(backup + ": it is a symbolic link"), std::string::npos) << s.message();
  EXPECT_EQ(read(dir_ + "/target"), "precious\n");
  EXPECT_EQ(read(dir_ + "/resolv.conf"), "nameserver 192.0.2.53\n") << "resolv.conf untouched";
}

TEST_F(ClientFiles, SymlinkAtTheJournalPathIsRefused) {
  const std::string journal = state_ + "/wg0.state";
  ASSERT_EQ(::symlink((dir_ + "/target").c_str(), journal.c_str()), 0);
  auto setup = ActiveSetup::open(*sys_, journal);
  ASSERT_FALSE(setup.ok());
  EXPECT_NE(setup.message().find(journal + ": it is a symbolic link"), std::string::npos)
      << setup.message();
  auto r = replay_journal(*sys_, journal, JournalScope{"wg0", dir_ + "/resolv.conf",
                                                       state_ + "/wg0.resolv.conf", "/proc/sys"});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].text().find("symbolic link"), std::string::npos) << r.errors[0].text();
  EXPECT_EQ(read(dir_ + "/target"), "precious\n");
}

TEST_F(ClientFiles, WorldWritableStateDirectoryIsRefusedNamingIt) {
  ASSERT_EQ(::chmod(state_.c_str(), 0777), 0);
  auto setup = ActiveSetup::open(*sys_, state_ + "/wg0.state");
  ASSERT_FALSE(setup.ok());
  EXPECT_NE(setup.message().find("refusing to use " + state_ +
                                 ": it is writable by group or others (mode 0777)"),
            std::string::npos)
      << setup.message();
  EXPECT_FALSE(platform::file_info(state_ + "/wg0.state").ok()) << "no journal was written";
  auto dns = make_dns_step(DnsMethod::kFile, "wg0", DnsSettings{{*net::IpAddress::parse("10.9.0.1")}, {}},
                           dir_ + "/resolv.conf", state_ + "/wg0.resolv.conf");
  auto s = dns->apply(*sys_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refusing to use " + state_), std::string::npos) << s.message();
  EXPECT_EQ(read(dir_ + "/resolv.conf"), "nameserver 192.0.2.53\n");
}

}  // namespace
}  // namespace warren::client
