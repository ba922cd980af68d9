// `warren pause` / `resume` (client/standby.h) over a real plan against the fake system: pause
// takes back routes, rules, sysctl, DNS, link and addresses and nothing else; resume puts back
// exactly that, journal included; both idempotent; a crash while paused replays cleanly.
#include "client/standby.h"

#include <gtest/gtest.h>

#include "client/plan.h"
#include "host/fake/fake_system.h"

namespace warren::client {
namespace {

using host::fake::FakeSystem;

constexpr const char* kPriv = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kPub = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
constexpr const char* kJournal = "/run/warren/wg0.state";
constexpr const char* kResolv = "/etc/resolv.conf";
constexpr const char* kSysctl = "/proc/sys/net/ipv4/conf/all/src_valid_mark";

ClientConfig full_tunnel() {
  return parse_config(std::string("[Interface]\nPrivateKey = ") + kPriv +
                          "\nAddress = 10.9.0.2/24, fd09::2/64\nDNS = 10.9.0.1, corp.example\n"
                          "MTU = 1380\n[Peer]\nPublicKey = " +
                          kPub +
                          "\nAllowedIPs = 0.0.0.0/0, ::/0, 10.30.0.0/16\n"
                          "Endpoint = 192.0.2.1:51820\n",
                      "/etc/wireguard/wg0.conf");
}

PlanOptions options() {
  PlanOptions o;
  o.dns = DnsMethod::kFile;
  o.resolv_conf = kResolv;
  o.state_dir = "/run/warren";
  return o;
}

struct Machine {
  FakeSystem sys;
  std::uint32_t tun = 0;
  std::unique_ptr<ActiveSetup> setup;
  Machine() {
    auto eth = sys.fake_net().add_link("eth0", 1500, true);
    (void)sys.fake_net().add_address(eth, *net::Prefix::parse("192.0.2.7/24"));
    (void)sys.fake_net().add_route(platform::RouteSpec{
        *net::Prefix::parse("0.0.0.0/0"), eth, 0, {}, net::IpAddress::parse("192.0.2.254")});
    tun = sys.fake_net().add_link("wg0", 1420, false);
    sys.files()[kResolv] = "nameserver 192.0.2.53\n";
    sys.files()[kSysctl] = "0\n";
  }
  void up() {
    auto r = bring_up(sys, full_tunnel(), tun, 1420, options(), kJournal);
    ASSERT_TRUE(r.ok()) << r.message();
    setup = std::move(*r);
  }
  // The state of the machine with only the TUN link's MTU changed.
  bool only_mtu_left() {
    const auto& st = sys.fake_net().state();
    for (const auto& r : st.routes)
      if (r.ifindex == tun)
        return false;
    for (const auto& a : st.addresses)
      if (a.first == tun)
        return false;
    return !st.links.at(tun).up && st.links.at(tun).mtu == 1380 && st.rules.empty() &&
           sys.files()[kResolv] == "nameserver 192.0.2.53\n" && sys.files()[kSysctl] == "0\n";
  }
};

std::string first_lines(const std::string& journal, int n) {
  std::size_t at = 0;
  for (int i = 0; i < n; ++i)
    at = journal.find('\n', at) + 1;
  return journal.substr(0, at);
}

TEST(Standby, PauseTakesBackAllButTheLinkAndResumePutsItBackExactly) {
  Machine m;
  const auto before = m.sys.state();
  m.up();
  const auto up = m.sys.state();
  const std::string journal = m.sys.files()[kJournal];
  ASSERT_EQ(standby_keep(*m.setup), 2u);  // the interface line and the MTU step

  Standby s;
  auto p = s.pause(*m.setup, PauseCause::kCommand);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_TRUE(*p);
  EXPECT_TRUE(s.paused());
  EXPECT_TRUE(m.only_mtu_left());
  // header, interface, mtu
  EXPECT_EQ(m.sys.files()[kJournal], first_lines(journal, 3));
  EXPECT_EQ(m.sys.files()[kJournal].find("dns-file"), std::string::npos);
  // Twice is once.
  const auto paused = m.sys.state();
  p = s.pause(*m.setup, PauseCause::kCommand);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(*p);
  EXPECT_EQ(m.sys.state(), paused);

  auto r = s.resume(*m.setup);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(*r);
  EXPECT_FALSE(s.paused());
  EXPECT_EQ(m.sys.state(), up);
  r = s.resume(*m.setup);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(m.sys.state(), up);

  // Pause and resume again work on the same steps; `down` after a pause restores everything.
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kLinkDown).ok());
  EXPECT_EQ(s.cause(), PauseCause::kLinkDown);
  ASSERT_TRUE(s.resume(*m.setup).ok());
  EXPECT_EQ(m.sys.state(), up);
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kCommand).ok());
  EXPECT_TRUE(m.setup->rollback().empty());
  s.forget();
  EXPECT_EQ(m.sys.state(), before);
}

// kill -9 while paused: the journal names only what is still applied, and the replay restores
// the machine (`warren down` after a crash).
TEST(Standby, CrashWhilePausedReplaysCleanly) {
  Machine m;
  const auto before = m.sys.state();
  m.up();
  Standby s;
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kCommand).ok());
  m.setup->abandon();
  auto r = replay_journal(m.sys, kJournal, journal_scope(options(), "wg0"));
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.undone, 2u);
  EXPECT_EQ(m.sys.state(), before);
}

// An undo that fails mid-pause: what was taken back goes on again, the interface stays up.
TEST(Standby, FailedPauseLeavesTheInterfaceUp) {
  Machine m;
  m.up();
  const auto up = m.sys.state();
  Standby s;
  // DNS and the sysctl are undone first (files), then the first netlink change, the newest
  // rule's removal, fails.
  m.sys.fake_net().fail_mutation(1);
  auto p = s.pause(*m.setup, PauseCause::kCommand);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("undo "), std::string::npos) << p.message();
  EXPECT_FALSE(s.paused());
  EXPECT_EQ(m.sys.state(), up);
}

// A resume that fails half-way stays paused and the next one continues where it stopped.
TEST(Standby, FailedResumeContinuesOnTheNextOne) {
  Machine m;
  m.up();
  const auto up = m.sys.state();
  Standby s;
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kCommand).ok());
  m.sys.fail_op(1);  // the journal line of the first step taken back (an address)
  auto r = s.resume(*m.setup);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(s.paused());
  r = s.resume(*m.setup);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_TRUE(*r);
  EXPECT_EQ(m.sys.state(), up);
}

// A pause after a resume that stopped half-way takes back what that resume had applied.
TEST(Standby, PauseAfterAHalfResumeTakesItBack) {
  Machine m;
  m.up();
  const auto up = m.sys.state();
  Standby s;
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kCommand).ok());
  m.sys.fail_op(2);  // the first address goes on (its journal line is op 1); the second fails
  ASSERT_FALSE(s.resume(*m.setup).ok());
  EXPECT_FALSE(m.only_mtu_left());
  auto p = s.pause(*m.setup, PauseCause::kCommand);
  ASSERT_TRUE(p.ok()) << p.message();
  EXPECT_TRUE(*p);
  EXPECT_TRUE(m.only_mtu_left());
  ASSERT_TRUE(s.resume(*m.setup).ok());
  EXPECT_EQ(m.sys.state(), up);
}

TEST(Standby, LinkStateCallsForPauseOrResumeOnlyWhenItDisagrees) {
  Machine m;
  m.up();
  Standby s;
  EXPECT_EQ(s.on_link(true), Standby::LinkAction::kNone);
  EXPECT_EQ(s.on_link(false), Standby::LinkAction::kPause);
  ASSERT_TRUE(s.pause(*m.setup, PauseCause::kLinkDown).ok());
  EXPECT_EQ(s.on_link(false), Standby::LinkAction::kNone);
  EXPECT_EQ(s.on_link(true), Standby::LinkAction::kResume);
}

// #@warren ControlGroup: parsed, written back, and a bad name refused naming the line.
TEST(Standby, ControlGroupInTheConfig) {
  const std::string body = std::string("[Interface]\nPrivateKey = ") + kPriv + "\n";
  ClientConfig c = parse_config("#@warren ControlGroup = netdev\n" + body, "/x/wg0.conf");
  EXPECT_EQ(c.control_group, "netdev");
  EXPECT_NE(format_config(c).find("#@warren ControlGroup = netdev\n"), std::string::npos);
  EXPECT_EQ(parse_config(format_config(c), "/x/wg0.conf").control_group, "netdev");
  EXPECT_EQ(parse_config(body, "/x/wg0.conf").control_group, "");
  for (const char* bad : {"-x", "a b", "a;b", ""}) {
    try {
      (void)parse_config(std::string("#@warren ControlGroup = ") + bad + "\n" + body,
                         "/x/wg0.conf");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("/x/wg0.conf:1: ControlGroup: not a group name"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace warren::client
