// The server's host changes (ip_forward, NAT) against the fake system: rollback on failure at
// every step, crash recovery from the journal, idempotent replay, and refusal of a journal
// with steps the server would not take.
#include "server/host_setup.h"

#include <gtest/gtest.h>

#include "host/fake/fake_system.h"

namespace warren::server {
namespace {

using host::fake::FakeSystem;

constexpr const char* kJournal = "/var/lib/warren/wg-srv-host.journal";
constexpr const char* kNatKey = "iptables -t nat";

ServerConfig config(bool nat = true, bool c2c = true) {
  std::string text =
      "[interface]\nname = \"wg-srv\"\naddress_v4 = \"10.9.0.1/24\"\naddress_v6 = "
      "\"fd09::1/64\"\n[enrollment]\npublic_endpoint = \"192.0.2.1:51820\"\n";
  if (c2c)
    text += "[clients]\nclient_to_client = true\n";
  if (nat)
    text += "[nat]\nout_interface = \"eth0\"\n";
  return parse_config(text, "/etc/warren/server.toml");
}

// A machine with forwarding off, one NAT rule of its own, and iptables installed.
struct Machine {
  FakeSystem sys;
  Machine() {
    sys.files()[kIpv4ForwardPath] = "0\n";
    sys.files()[kIpv6ForwardPath] = "0\n";
    sys.firewall()[kNatKey] = {"POSTROUTING -s 192.168.5.0/24 -o eth0 -j MASQUERADE"};
    sys.set_programs({"iptables"});
  }
};

std::string our_rule() {
  std::string r;
  for (const auto& w : nat_rule(config()))
    r += (r.empty() ? "" : " ") + w;
  return r;
}

std::size_t count_rule(FakeSystem& sys, const std::string& rule) {
  const auto& rules = sys.firewall()[kNatKey];
  return static_cast<std::size_t>(std::count(rules.begin(), rules.end(), rule));
}

TEST(ServerHost, SetUpThenStopRestoresExactly) {
  Machine m;
  const auto before = m.sys.state();
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  EXPECT_EQ(m.sys.files()[kIpv6ForwardPath], "1\n");
  EXPECT_EQ(count_rule(m.sys, our_rule()), 1u);
  EXPECT_TRUE(m.sys.files().count(kJournal));
  setup->reset();  // orderly shutdown
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, OnlyWhatTheConfigNeeds) {
  Machine m;
  const auto before = m.sys.state();
  auto none = set_up_host(m.sys, config(false, false), kJournal);
  ASSERT_TRUE(none.ok()) << none.message();
  auto changed = m.sys.state();
  changed.files.erase(kJournal);
  EXPECT_EQ(changed, before);  // no forwarding, no NAT
  none->reset();
  // NAT without client-to-client: IPv4 forwarding only.
  auto nat = set_up_host(m.sys, config(true, false), kJournal);
  ASSERT_TRUE(nat.ok()) << nat.message();
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  EXPECT_EQ(m.sys.files()[kIpv6ForwardPath], "0\n");
}

TEST(ServerHost, FailingNatStepRollsBackIpForward) {
  unsigned total = 0;
  {
    Machine probe;
    const unsigned o0 = probe.sys.ops();
    auto ok = set_up_host(probe.sys, config(), kJournal);
    ASSERT_TRUE(ok.ok()) << ok.message();
    total = probe.sys.ops() - o0;
    ASSERT_NE(probe.sys.commands().back().find(" -A POSTROUTING"), std::string::npos);
  }
  Machine m;
  const auto before = m.sys.state();
  m.sys.fail_op(total);  // the last operation: iptables -A
  auto r = set_up_host(m.sys, config(), kJournal);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("MASQUERADE"), std::string::npos) << r.message();
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "0\n");
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, FailureAtEveryOperationLeavesNothingBehind) {
  unsigned total = 0;
  {
    Machine probe;
    auto ok = set_up_host(probe.sys, config(), kJournal);
    ASSERT_TRUE(ok.ok());
    total = probe.sys.ops();
  }
  ASSERT_GE(total, 6u);
  for (unsigned n = 1; n <= total; ++n) {
    Machine m;
    const auto before = m.sys.state();
    m.sys.fail_op(n);
    auto r = set_up_host(m.sys, config(), kJournal);
    EXPECT_FALSE(r.ok()) << "op " << n;
    m.sys.fail_op(0);
    // A failure of the rollback itself leaves the journal for the next start to replay.
    if (m.sys.files().count(kJournal)) {
      auto again = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
      EXPECT_TRUE(again.errors.empty()) << "op " << n;
    }
    EXPECT_EQ(m.sys.state(), before) << "op " << n;
  }
}

// kill -9 after any number of steps: replay (cleanup) restores exactly the old values; a
// second replay finds nothing; a restart replays first and applies once.
TEST(ServerHost, CrashThenReplayRestoresExactly) {
  for (std::size_t stop_after = 0; stop_after <= 3; ++stop_after) {
    SCOPED_TRACE("stopped after " + std::to_string(stop_after));
    Machine m;
    const auto before = m.sys.state();
    {
      auto plan = plan_host_steps(m.sys, config());
      ASSERT_TRUE(plan.ok());
      ASSERT_EQ(plan->steps.size(), 3u);
      auto crashed = host::ActiveSetup::open(m.sys, kJournal);
      ASSERT_TRUE(crashed.ok());
      for (std::size_t i = 0; i < stop_after; ++i)
        ASSERT_TRUE((*crashed)->apply(std::move(plan->steps[i])).ok());
      (*crashed)->abandon();  // kill -9: nothing undone
    }
    if (stop_after == 3) {
      EXPECT_EQ(count_rule(m.sys, our_rule()), 1u);
    }
    auto r = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
    EXPECT_TRUE(r.found);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
    EXPECT_EQ(r.undone, stop_after);
    EXPECT_EQ(m.sys.state(), before);
    auto again = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
    EXPECT_FALSE(again.found);
    EXPECT_EQ(m.sys.state(), before);
  }
}

TEST(ServerHost, RestartAfterCrashReplaysThenAppliesOnce) {
  Machine m;
  const auto before = m.sys.state();
  auto first = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(first.ok());
  (*first)->abandon();  // kill -9
  auto second = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(second.ok()) << second.message();
  EXPECT_EQ(count_rule(m.sys, our_rule()), 1u);
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  second->reset();
  // The old values, not the crashed run's "1": the journal kept what was there first.
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, ReplayIsIdempotentWhenStepsAreAlreadyUndone) {
  Machine m;
  const auto before = m.sys.state();
  auto first = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(first.ok());
  (*first)->abandon();
  const std::string journal = m.sys.files()[kJournal];
  auto r = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
  ASSERT_TRUE(r.errors.empty());
  // The same journal again (a crash right after the undo, before the file went away).
  m.sys.files()[kJournal] = journal;
  auto again = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
  EXPECT_TRUE(again.errors.empty()) << again.errors.front().text();
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, JournalWithAStepTheServerWouldNotTakeIsRefused) {
  for (const std::string bad :
       {"sysctl /proc/sys/kernel/core_pattern |/tmp/x core",
        "sysctl /proc/sys/net/ipv4/conf/all/rp_filter 0 1",
        "firewall 4 nat POSTROUTING -s 10.9.0.0/24 -o eth0 -j MASQUERADE -m comment --comment "
        "warren:other",
        "firewall 4 filter INPUT -j ACCEPT", "route 0.0.0.0/0 1 0 - -",
        "dns-file /etc/passwd /tmp/x"}) {
    SCOPED_TRACE(bad);
    Machine m;
    auto first = set_up_host(m.sys, config(), kJournal);
    ASSERT_TRUE(first.ok());
    (*first)->abandon();
    m.sys.files()[kJournal] += bad + "\n";
    const auto crashed = m.sys.state();
    auto r = set_up_host(m.sys, config(), kJournal);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.message().find("refusing"), std::string::npos) << r.message();
    EXPECT_EQ(m.sys.state(), crashed);  // nothing undone, journal kept
  }
}

TEST(ServerHost, JournalFromBeforeARebootIsDiscarded) {
  Machine m;
  auto first = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(first.ok());
  (*first)->abandon();
  // The reboot reset the kernel's settings; an admin then set forwarding on for good.
  m.sys.set_boot_id("boot-2");
  m.sys.firewall().erase(kNatKey);
  m.sys.files()[kIpv4ForwardPath] = "1\n";
  auto r = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
  EXPECT_TRUE(r.stale);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");  // not "restored" to the old 0
  EXPECT_FALSE(m.sys.files().count(kJournal));
}

TEST(ServerHost, RuleAlreadyPresentIsLeftAlone) {
  Machine m;
  m.sys.firewall()[kNatKey].push_back(our_rule());  // e.g. added by hand, no journal
  const auto before = m.sys.state();
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(count_rule(m.sys, our_rule()), 1u);
  setup->reset();
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, MissingIptablesIsAClearError) {
  Machine m;
  m.sys.set_programs({});
  const auto before = m.sys.state();
  auto r = set_up_host(m.sys, config(), kJournal);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("install the iptables package"), std::string::npos) << r.message();
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, JournalBesideTheDatabase) {
  auto c = config();
  EXPECT_EQ(host_journal_path(c), "/etc/warren/wg-srv-host.journal");
}

}  // namespace
}  // namespace warren::server
