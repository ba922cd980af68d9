// The generic host steps and their journal, against the fake system: the firewall step, the
// journal's header checks, torn and refused lines, the parser's limits.
#include "host/steps.h"

#include <gtest/gtest.h>

#include "host/fake/fake_system.h"

namespace warren::host {
namespace {

using fake::FakeSystem;

constexpr const char* kJournal = "/run/test.journal";
const std::vector<std::string> kRule{"POSTROUTING", "-s", "10.0.0.0/24", "-o", "eth0",
                                     "-j", "MASQUERADE"};

FakeSystem machine() {
  FakeSystem s;
  s.set_programs({"iptables", "ip6tables"});
  s.files()["/proc/sys/net/ipv4/ip_forward"] = "0\n";
  return s;
}

TEST(HostSteps, FirewallStepAddsAndRemovesItsRule) {
  FakeSystem sys = machine();
  auto step = make_firewall_step(net::Family::kV4, "nat", kRule);
  ASSERT_TRUE(step->apply(sys).ok());
  EXPECT_EQ(sys.commands().back(),
            "iptables -w 5 -t nat -I POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE");
  EXPECT_EQ(firewall_rule_present(sys, net::Family::kV4, "nat", kRule).value(), true);
  ASSERT_TRUE(step->undo(sys).ok());
  EXPECT_EQ(firewall_rule_present(sys, net::Family::kV4, "nat", kRule).value(), false);
  // Undo of a rule already gone succeeds (replay twice), and deletes nothing else.
  sys.firewall()["iptables -t nat"] = {"POSTROUTING -j ACCEPT"};
  ASSERT_TRUE(step->undo(sys).ok());
  EXPECT_EQ(sys.firewall()["iptables -t nat"].size(), 1u);
  auto v6 = make_firewall_step(net::Family::kV6, "filter", {"FORWARD", "-j", "ACCEPT"});
  ASSERT_TRUE(v6->apply(sys).ok());
  EXPECT_EQ(sys.firewall()["ip6tables -t filter"].size(), 1u);
}

TEST(HostSteps, NftTableStepReplacesAndDeletesItsTableAtomically) {
  FakeSystem sys = machine();
  sys.fake_nft().tables["inet other"] = {"chain c {", "}"};
  const auto before = sys.state();
  auto step =
      make_nft_table_step("inet", "warren_wg0", "table inet warren_wg0 {\n\tchain c {\n\t}\n}\n");
  ASSERT_TRUE(step->apply(sys).ok());
  EXPECT_EQ(sys.fake_nft().scripts.back(),
            "table inet warren_wg0\ndelete table inet warren_wg0\n"
            "table inet warren_wg0 {\n\tchain c {\n\t}\n}\n");
  EXPECT_EQ(sys.fake_nft().tables["inet warren_wg0"], (std::vector<std::string>{"chain c {", "}"}));
  ASSERT_TRUE(step->apply(sys).ok());  // again: replaced, not merged
  EXPECT_EQ(sys.fake_nft().tables["inet warren_wg0"].size(), 2u);
  ASSERT_TRUE(step->undo(sys).ok());
  EXPECT_EQ(sys.state(), before);
  ASSERT_TRUE(step->undo(sys).ok());  // already gone: still success
  EXPECT_EQ(sys.state(), before);
  // A failed transaction changes nothing and says which table.
  sys.fake_nft().fail_next(EPERM);
  auto s = step->apply(sys);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EPERM);
  EXPECT_EQ(sys.state(), before);
}

TEST(HostSteps, FirewallFailuresAreErrors) {
  FakeSystem sys = machine();
  sys.set_programs({});
  auto step = make_firewall_step(net::Family::kV4, "nat", kRule);
  auto s = step->apply(sys);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ENOENT);
  EXPECT_NE(s.message().find("iptables"), std::string::npos);
  // An undo that cannot check the rule fails rather than claiming it is gone.
  EXPECT_FALSE(step->undo(sys).ok());
}

TEST(HostSteps, JournalLinesRoundTrip) {
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(make_firewall_step(net::Family::kV4, "nat", kRule));
  steps.push_back(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0"));
  steps.push_back(make_mtu_step(3, 1380, 1420));
  steps.push_back(make_nft_table_step("inet", "warren_wg0", "table inet warren_wg0 {\n}\n"));
  for (const auto& s : steps) {
    auto back = parse_host_step(s->journal_line());
    ASSERT_NE(back, nullptr) << s->journal_line();
    EXPECT_EQ(back->journal_line(), s->journal_line());
  }
  // sysctl steps stay under /proc/sys.
  EXPECT_EQ(parse_host_step("sysctl /etc/shadow x y"), nullptr);
  EXPECT_EQ(parse_host_step("sysctl /proc/sys/../../etc/shadow x y"), nullptr);
  EXPECT_EQ(parse_host_step("firewall 5 nat X"), nullptr);
  EXPECT_EQ(parse_host_step("dns-file /etc/resolv.conf /tmp/x"), nullptr);
  EXPECT_EQ(parse_host_step("nft-table bridge warren_wg0"), nullptr);
  EXPECT_EQ(parse_host_step("nft-table inet a;flush"), nullptr);
  EXPECT_EQ(parse_host_step("nft-table inet warren_wg0 x"), nullptr);
}

TEST(HostSteps, RollbackUndoesInReverseAndRemovesTheJournal) {
  FakeSystem sys = machine();
  const auto before = sys.state();
  auto setup = ActiveSetup::open(sys, kJournal);
  ASSERT_TRUE(setup.ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
  ASSERT_TRUE((*setup)->apply(make_firewall_step(net::Family::kV4, "nat", kRule)).ok());
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "1\n");
  const std::string journal = sys.files()[kJournal];
  EXPECT_EQ(journal.substr(0, journal.find('\n')), "warren-state 1 netns=fake boot=boot-1");
  EXPECT_TRUE((*setup)->rollback().empty());
  EXPECT_EQ(sys.state(), before);
}

TEST(HostSteps, FailedStepNamesItselfAndIsNotKept) {
  FakeSystem sys = machine();
  auto setup = ActiveSetup::open(sys, kJournal);
  ASSERT_TRUE(setup.ok());
  sys.fail_op(2);  // the journal line goes through, the iptables call fails
  auto s = (*setup)->apply(make_firewall_step(net::Family::kV4, "nat", kRule));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("iptables -t nat -I POSTROUTING"), std::string::npos) << s.message();
  EXPECT_EQ((*setup)->applied(), 0u);
}

TEST(HostSteps, ReplayRefusesWholeJournalWithAnUnknownLine) {
  FakeSystem sys = machine();
  {
    auto setup = ActiveSetup::open(sys, kJournal);
    ASSERT_TRUE(setup.ok());
    ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
    (*setup)->abandon();
  }
  sys.files()[kJournal] += "something else\n";
  auto r = replay_journal(sys, kJournal, parse_host_step);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.undone, 0u);
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "1\n");  // nothing undone
  EXPECT_TRUE(sys.files().count(kJournal));
  // A torn last line (no newline: the crash came mid-write) is the step that never ran.
  std::string& j = sys.files()[kJournal];
  j = j.substr(0, j.size() - std::string("something else\n").size()) + "sysctl /proc/sy";
  r = replay_journal(sys, kJournal, parse_host_step);
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  EXPECT_EQ(r.undone, 1u);
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "0\n");
}

TEST(HostSteps, ReplayChecksNamespaceAndBoot) {
  FakeSystem sys = machine();
  {
    auto setup = ActiveSetup::open(sys, kJournal);
    ASSERT_TRUE(setup.ok());
    ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
    (*setup)->abandon();
  }
  sys.set_netns_id("other");
  auto r = replay_journal(sys, kJournal, parse_host_step);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "1\n");
  sys.set_netns_id("fake");
  sys.set_boot_id("boot-2");
  r = replay_journal(sys, kJournal, parse_host_step);
  EXPECT_TRUE(r.stale);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "1\n");
  EXPECT_FALSE(sys.files().count(kJournal));
}

// take_back (warren pause): the newer steps are undone, the journal lists only what stays, and
// applying the handed-back steps again gives the same state and the same journal.
TEST(HostSteps, TakeBackUndoesTheNewerStepsAndRewritesTheJournal) {
  FakeSystem sys = machine();
  sys.files()["/proc/sys/net/a"] = "0\n";
  sys.files()["/proc/sys/net/b"] = "0\n";
  const auto before = sys.state();
  auto setup = ActiveSetup::open(sys, kJournal);
  ASSERT_TRUE(setup.ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/a", "1", "0")).ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/b", "1", "0")).ok());
  const auto up = sys.state();
  const std::string journal = sys.files()[kJournal];

  auto taken = (*setup)->take_back(1);
  ASSERT_FALSE(taken.error) << taken.error->text();
  ASSERT_EQ(taken.steps.size(), 2u);
  EXPECT_EQ(taken.steps[0]->journal_line(), "sysctl /proc/sys/net/a 1 0");  // oldest first
  EXPECT_EQ((*setup)->applied(), 1u);
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "1\n");
  EXPECT_EQ(sys.files()["/proc/sys/net/a"], "0\n");
  EXPECT_EQ(sys.files()["/proc/sys/net/b"], "0\n");
  EXPECT_EQ(sys.files()[kJournal], journal.substr(0, journal.find("sysctl /proc/sys/net/a")));
  // Twice is once: nothing more to take back.
  auto again = (*setup)->take_back(1);
  EXPECT_TRUE(again.steps.empty());
  EXPECT_FALSE(again.error);

  for (auto& step : taken.steps)
    ASSERT_TRUE((*setup)->apply(std::move(step)).ok());
  EXPECT_EQ(sys.state(), up);
  EXPECT_EQ(sys.files()[kJournal], journal);
  EXPECT_TRUE((*setup)->rollback().empty());
  EXPECT_EQ(sys.state(), before);
}

// A crash after take_back: replay undoes only what is still applied.
TEST(HostSteps, JournalAfterTakeBackReplaysWhatStayed) {
  FakeSystem sys = machine();
  sys.files()["/proc/sys/net/a"] = "0\n";
  auto setup = ActiveSetup::open(sys, kJournal);
  ASSERT_TRUE(setup.ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/a", "1", "0")).ok());
  auto taken = (*setup)->take_back(1);
  ASSERT_EQ(taken.steps.size(), 1u);
  // Somebody else sets it meanwhile: the replay must not touch what the journal no longer names.
  sys.files()["/proc/sys/net/a"] = "7\n";
  (*setup)->abandon();
  auto r = replay_journal(sys, kJournal, parse_host_step);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.undone, 1u);
  EXPECT_EQ(sys.files()["/proc/sys/net/ipv4/ip_forward"], "0\n");
  EXPECT_EQ(sys.files()["/proc/sys/net/a"], "7\n");
}

// An undo that fails stops the take-back there: that step stays applied and journaled.
TEST(HostSteps, TakeBackStopsAtAFailedUndo) {
  FakeSystem sys = machine();
  sys.files()["/proc/sys/net/a"] = "0\n";
  auto setup = ActiveSetup::open(sys, kJournal);
  ASSERT_TRUE(setup.ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/ipv4/ip_forward", "1", "0")).ok());
  ASSERT_TRUE((*setup)->apply(make_sysctl_step("/proc/sys/net/a", "1", "0")).ok());
  const std::string journal = sys.files()[kJournal];
  sys.fail_op(1);
  auto taken = (*setup)->take_back(0);
  ASSERT_TRUE(taken.error);
  EXPECT_NE(taken.error->text().find("undo set"), std::string::npos) << taken.error->text();
  EXPECT_TRUE(taken.steps.empty());
  EXPECT_EQ((*setup)->applied(), 2u);
  EXPECT_EQ(sys.files()[kJournal], journal);
}

}  // namespace
}  // namespace warren::host
