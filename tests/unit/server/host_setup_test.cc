// The server's host changes (its nft table, FORWARD accepts, forwarding sysctls) against the
// fake system: the exact journal, rollback on failure at every step, crash recovery from the
// journal, idempotent replay, and refusal of a journal with steps the server would not take.
#include "server/host_setup.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "host/fake/fake_system.h"
#include "server/nft_ruleset.h"

namespace warren::server {
namespace {

using host::fake::FakeSystem;

constexpr const char* kJournal = "/var/lib/warren/wg-srv-host.journal";
constexpr const char* kFilter4 = "iptables -t filter";
constexpr const char* kFilter6 = "ip6tables -t filter";
constexpr const char* kTable = "inet warren_wg-srv";
const std::string kIn = "FORWARD -i wg-srv -j ACCEPT -m comment --comment warren:wg-srv";
const std::string kBack =
    "FORWARD -o wg-srv -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT -m comment "
    "--comment warren:wg-srv";

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

// A Docker-like machine: forwarding off, FORWARD policy DROP for both families with a rule of
// its own, an nft table of someone else, iptables and ip6tables installed.
struct Machine {
  FakeSystem sys;
  Machine() {
    sys.files()[kIpv4ForwardPath] = "0\n";
    sys.files()[kIpv6ForwardPath] = "0\n";
    sys.policies()["iptables FORWARD"] = "DROP";
    sys.policies()["ip6tables FORWARD"] = "DROP";
    sys.firewall()[kFilter4] = {"FORWARD -j DOCKER-USER"};
    sys.fake_nft().tables["inet filter"] = {"chain input {", "}"};
    sys.set_programs({"iptables", "ip6tables"});
  }
};

std::size_t count_rule(FakeSystem& sys, const char* key, const std::string& rule) {
  const auto& rules = sys.firewall()[key];
  return static_cast<std::size_t>(std::count(rules.begin(), rules.end(), rule));
}

// The table's lines as the fake keeps them (the definition without its outer braces).
std::vector<std::string> table_lines(const ServerConfig& c) {
  platform::fake::FakeNftables nft;
  EXPECT_TRUE(nft.run(nft_table_definition(c)).ok());
  return nft.tables.at(kTable);
}

TEST(ServerHost, SetUpThenStopRestoresExactly) {
  Machine m;
  const auto before = m.sys.state();
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  EXPECT_EQ(m.sys.files()[kIpv6ForwardPath], "1\n");
  EXPECT_EQ(m.sys.fake_nft().tables.at(kTable), table_lines(config()));
  EXPECT_EQ(m.sys.fake_nft().tables.count("inet filter"), 1u);
  // The accepts go to the top, before the chain's own rules.
  EXPECT_EQ(m.sys.firewall()[kFilter4],
            (std::vector<std::string>{kBack, kIn, "FORWARD -j DOCKER-USER"}));
  EXPECT_EQ(m.sys.firewall()[kFilter6], (std::vector<std::string>{kBack, kIn}));
  EXPECT_EQ(m.sys.files()[kJournal],
            "warren-state 1 netns=fake boot=boot-1\n"
            "nft-table inet warren_wg-srv\n"
            "firewall 4 filter " +
                kIn +
                "\n"
                "firewall 4 filter " +
                kBack +
                "\n"
                "firewall 6 filter " +
                kIn +
                "\n"
                "firewall 6 filter " +
                kBack +
                "\n"
                "sysctl /proc/sys/net/ipv4/ip_forward 1 0\n"
                "sysctl /proc/sys/net/ipv6/conf/all/forwarding 1 0\n");
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
  EXPECT_EQ(changed, before);  // no forwarding, no table, no accepts
  none->reset();
  // Client-to-client without NAT: forwarding and the accepts, no table.
  auto c2c = set_up_host(m.sys, config(false, true), kJournal);
  ASSERT_TRUE(c2c.ok()) << c2c.message();
  EXPECT_EQ(m.sys.files()[kIpv6ForwardPath], "1\n");
  EXPECT_EQ(count_rule(m.sys, kFilter4, kIn), 1u);
  EXPECT_EQ(m.sys.fake_nft().tables.count(kTable), 0u);
  c2c->reset();
  // NAT without client-to-client: both families forwarded (full tunnel is dual-stack).
  auto nat = set_up_host(m.sys, config(true, false), kJournal);
  ASSERT_TRUE(nat.ok()) << nat.message();
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  EXPECT_EQ(m.sys.files()[kIpv6ForwardPath], "1\n");
  EXPECT_EQ(m.sys.fake_nft().tables.count(kTable), 1u);
}

TEST(ServerHost, AcceptRulesOnlyWhereTheChainWouldDrop) {
  Machine m;
  m.sys.policies().clear();  // v4: ACCEPT with a rule; v6: ACCEPT and empty
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(count_rule(m.sys, kFilter4, kIn), 1u);
  EXPECT_EQ(m.sys.firewall().count(kFilter6), 0u);
  setup->reset();
  // No iptables at all: no chain that could drop, not an error.
  m.sys.set_programs({});
  auto bare = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(bare.ok()) << bare.message();
  EXPECT_EQ(m.sys.fake_nft().tables.count(kTable), 1u);
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
}

TEST(ServerHost, FailingNftTransactionLeavesNothing) {
  Machine m;
  const auto before = m.sys.state();
  m.sys.fake_nft().fail_next(EPERM);
  auto r = set_up_host(m.sys, config(), kJournal);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("nftables table inet warren_wg-srv"), std::string::npos)
      << r.message();
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
  ASSERT_GE(total, 12u);
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
// second replay finds nothing.
TEST(ServerHost, CrashThenReplayRestoresExactly) {
  for (std::size_t stop_after = 0; stop_after <= 7; ++stop_after) {
    SCOPED_TRACE("stopped after " + std::to_string(stop_after));
    Machine m;
    const auto before = m.sys.state();
    {
      auto plan = plan_host_steps(m.sys, config());
      ASSERT_TRUE(plan.ok());
      ASSERT_EQ(plan->steps.size(), 7u);
      auto crashed = host::ActiveSetup::open(m.sys, kJournal);
      ASSERT_TRUE(crashed.ok());
      for (std::size_t i = 0; i < stop_after; ++i)
        ASSERT_TRUE((*crashed)->apply(std::move(plan->steps[i])).ok());
      (*crashed)->abandon();  // kill -9: nothing undone
    }
    EXPECT_EQ(m.sys.fake_nft().tables.count(kTable), stop_after >= 1 ? 1u : 0u);
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
  EXPECT_EQ(count_rule(m.sys, kFilter4, kIn), 1u);
  EXPECT_EQ(m.sys.fake_nft().tables.at(kTable), table_lines(config()));
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");
  second->reset();
  // The old values, not the crashed run's "1": the journal kept what was there first.
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, LeftoverTableIsReplacedNotMergedInto) {
  // A table of ours without a journal (deleted by hand, or an old config's): apply replaces
  // it in the same transaction.
  Machine m;
  m.sys.fake_nft().tables[kTable] = {"chain stale {", "}"};
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok()) << setup.message();
  EXPECT_EQ(m.sys.fake_nft().tables.at(kTable), table_lines(config()));
  setup->reset();
  EXPECT_EQ(m.sys.fake_nft().tables.count(kTable), 0u);
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

TEST(ServerHost, JournalOfAnEarlierVersionRemovesItsNatRule) {
  Machine m;
  const auto before = m.sys.state();
  const std::string old_rule =
      "POSTROUTING -s 10.9.0.0/24 -o eth0 -j MASQUERADE -m comment --comment warren:wg-srv";
  m.sys.firewall()["iptables -t nat"] = {old_rule};
  m.sys.files()[kJournal] = "warren-state 1 netns=fake boot=boot-1\nfirewall 4 nat " + old_rule +
                            "\nsysctl /proc/sys/net/ipv4/ip_forward 1 0\n";
  m.sys.files()[kIpv4ForwardPath] = "1\n";
  auto r = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
  EXPECT_TRUE(r.errors.empty()) << r.errors.front().text();
  EXPECT_EQ(r.undone, 2u);
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, JournalWithAStepTheServerWouldNotTakeIsRefused) {
  for (const std::string bad :
       {"sysctl /proc/sys/kernel/core_pattern |/tmp/x core",
        "sysctl /proc/sys/net/ipv4/conf/all/rp_filter 0 1",
        "firewall 4 nat POSTROUTING -s 10.9.0.0/24 -o eth0 -j MASQUERADE -m comment --comment "
        "warren:other",
        "firewall 4 filter INPUT -j ACCEPT", "firewall 4 filter FORWARD -j ACCEPT",
        "firewall 6 filter FORWARD -i other -j ACCEPT -m comment --comment warren:wg-srv",
        "nft-table inet warren_other", "nft-table ip warren_wg-srv", "nft-table inet filter",
        "route 0.0.0.0/0 1 0 - -", "dns-file /etc/passwd /tmp/x"}) {
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
  m.sys.fake_nft().tables.erase(kTable);
  m.sys.firewall()[kFilter4] = {"FORWARD -j DOCKER-USER"};
  m.sys.firewall().erase(kFilter6);
  m.sys.files()[kIpv4ForwardPath] = "1\n";
  auto r = host::replay_journal(m.sys, kJournal, server_step_parser(config()));
  EXPECT_TRUE(r.stale);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(m.sys.files()[kIpv4ForwardPath], "1\n");  // not "restored" to the old 0
  EXPECT_FALSE(m.sys.files().count(kJournal));
}

TEST(ServerHost, RuleAlreadyPresentIsLeftAlone) {
  Machine m;
  m.sys.firewall()[kFilter4].push_back(kIn);  // e.g. added by hand, no journal
  const auto before = m.sys.state();
  auto setup = set_up_host(m.sys, config(), kJournal);
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(count_rule(m.sys, kFilter4, kIn), 1u);
  setup->reset();
  EXPECT_EQ(m.sys.state(), before);
}

TEST(ServerHost, JournalBesideTheDatabase) {
  auto c = config();
  EXPECT_EQ(host_journal_path(c), "/etc/warren/wg-srv-host.journal");
}

}  // namespace
}  // namespace warren::server
