// `warren cleanup`: which journals of a state directory it replays (the real system, journals
// whose only step changes nothing, in a temporary state directory).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "client/daemon.h"
#include "platform/files.h"
#include "platform/host_io.h"
#include "platform/process.h"

namespace warren::client {
namespace {

class Cleanup : public ::testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/warren-cleanup.XXXXXX";
    ASSERT_NE(::mkdtemp(t), nullptr);
    dir_ = t;
    o_.state_dir = dir_ + "/lib";
    o_.run_dir = dir_ + "/run";
    ASSERT_TRUE(platform::make_directory(o_.state_dir, 0700).ok());
    ASSERT_TRUE(platform::make_directory(o_.run_dir, 0700).ok());
  }
  void TearDown() override { (void)!std::system(("rm -rf '" + dir_ + "'").c_str()); }
  // A journal of this namespace and boot for IFNAME, with `body` after the header.
  void journal(const std::string& ifname, const std::string& body) {
    const std::string header = "warren-state 1 netns=" + platform::netns_id() +
                               " boot=" + platform::boot_id() + "\n";
    ASSERT_TRUE(platform::create_file(journal_path(o_, ifname), header + body, 0600).ok());
  }
  bool exists(const std::string& ifname) {
    return platform::file_info(journal_path(o_, ifname)).ok();
  }
  std::string dir_;
  DaemonOptions o_;
};

TEST_F(Cleanup, AllReplaysEveryJournalAndKeepsARefusedOne) {
  if (!platform::has_net_admin())
    GTEST_SKIP() << "replay opens rtnetlink as root";
  journal("wga0", "interface wga0 999999\n");
  journal("wgb0", "interface wgb0 999998\n");
  journal("wgc0", "interface wgc0 999997\ndns-file /etc/shadow " + o_.state_dir + "/x\n");
  ASSERT_TRUE(platform::create_file(o_.state_dir + "/wga0.resolv.conf.tmp", "", 0600).ok());
  EXPECT_EQ(run_cleanup({}, true, o_), 1) << "the refused journal fails the run";
  EXPECT_FALSE(exists("wga0"));
  EXPECT_FALSE(exists("wgb0"));
  EXPECT_TRUE(exists("wgc0")) << "a refused journal is kept";
  EXPECT_TRUE(platform::file_info(o_.state_dir + "/wga0.resolv.conf.tmp").ok())
      << "other files are not journals";
  // By name: only that one; nothing left is success.
  journal("wgd0", "interface wgd0 999996\n");
  EXPECT_EQ(run_cleanup({"wgd0"}, false, o_), 0);
  EXPECT_FALSE(exists("wgd0"));
  EXPECT_TRUE(exists("wgc0"));
  EXPECT_EQ(run_cleanup({"wge0"}, false, o_), 0) << "no journal: nothing to do";
  EXPECT_EQ(run_cleanup({"bad/name"}, false, o_), 1);
}

}  // namespace
}  // namespace warren::client
