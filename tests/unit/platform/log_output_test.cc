// platform/log_output.h: the journal-stream check (with a fake environment and stderr), the
// journal prefixes of platform/log.h, and the capped log file in a private temporary directory.
#include "platform/log_output.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "platform/files.h"
#include "platform/log.h"

namespace warren::platform {
namespace {

TEST(JournalStream, ParsesDeviceAndInode) {
  auto id = parse_journal_stream("8:1234567");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->device, 8u);
  EXPECT_EQ(id->inode, 1234567u);
  for (const char* bad : {"", ":", "8:", ":5", "8", "8:5x", "x:5", "8:5:1", "-1:5", " 8:5"})
    EXPECT_FALSE(parse_journal_stream(bad)) << bad;
}

// systemd.exec(5): only when JOURNAL_STREAM names stderr's own device and inode; a child of a
// service whose stderr was redirected inherits the variable and must not use the prefixes.
TEST(JournalStream, ConnectedOnlyWhenItNamesStderr) {
  const Result<StreamIdentity> stderr_is{StreamIdentity{8, 4242}};
  EXPECT_TRUE(journal_connected("8:4242", stderr_is));
  EXPECT_FALSE(journal_connected(nullptr, stderr_is)) << "unset";
  EXPECT_FALSE(journal_connected("8:4243", stderr_is)) << "another inode";
  EXPECT_FALSE(journal_connected("9:4242", stderr_is)) << "another device";
  EXPECT_FALSE(journal_connected("garbage", stderr_is));
  EXPECT_FALSE(
      journal_connected("8:4242", Result<StreamIdentity>(Error::from_errno(EBADF, "fstat"))))
      << "stderr closed";
}

// The real check, in this process: a JOURNAL_STREAM naming our actual stderr connects, a stale
// one does not.
TEST(JournalStream, ChecksTheRealStderr) {
  auto id = stderr_identity();
  ASSERT_TRUE(id) << id.message();
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string keep = saved ? saved : "";
  const std::string mine = std::to_string(id->device) + ":" + std::to_string(id->inode);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  const std::string other = std::to_string(id->device) + ":" + std::to_string(id->inode + 1);
  ::setenv("JOURNAL_STREAM", other.c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
  if (saved)
    ::setenv("JOURNAL_STREAM", keep.c_str(), 1);
  else
    ::unsetenv("JOURNAL_STREAM");
}

class JournalLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_set_output([this](std::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    log_set_output({});
    log_set_journal(false);
    log_configure(LogLevel::kError, "");
  }
  std::vector<std::string> lines_;
};

TEST_F(JournalLogTest, PrefixesPriorityAndDropsTheTimestamp) {
  log_configure(LogLevel::kDebug, "wj0");
  log_set_journal(true);
  log_error("bad %d", 1);
  log_verbose("info %d", 2);
  log_debug("debug %d", 3);
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_EQ(lines_[0], "<3>ERROR: (wj0) bad 1\n");
  EXPECT_EQ(lines_[1], "<6>INFO: (wj0) info 2\n");
  EXPECT_EQ(lines_[2], "<7>DEBUG: (wj0) debug 3\n");
  log_set_journal(false);
  log_error("plain");
  ASSERT_EQ(lines_.size(), 4u);
  EXPECT_EQ(lines_[3].rfind("ERROR: (wj0) 20", 0), 0u) << "timestamp back: " << lines_[3];
}

// log_configure() turns journal mode on from the environment (the real stderr), and off again.
TEST_F(JournalLogTest, ConfigureDetectsTheJournal) {
  auto id = stderr_identity();
  ASSERT_TRUE(id);
  const std::string mine = std::to_string(id->device) + ":" + std::to_string(id->inode);
  ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
  log_configure(LogLevel::kError, "");
  EXPECT_TRUE(log_journal());
  ::unsetenv("JOURNAL_STREAM");
  log_configure(LogLevel::kError, "");
  EXPECT_FALSE(log_journal());
}

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/warren-logfile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    log_set_file(nullptr);
    log_configure(LogLevel::kError, "");
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)!std::system(cmd.c_str());
  }
  static std::string slurp(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(LogFileTest, AppendsWithExactModeAndRotatesAtTheCap) {
  const std::string p = dir_ + "/wl0.log";
  const mode_t old = ::umask(077);
  auto f = open_log_file(p, 0640, 100);
  ::umask(old);
  ASSERT_TRUE(f) << f.message();
  EXPECT_EQ(file_info(p)->mode, 0640u);
  const std::string line(40, 'a');
  (*f)->write(line + "\n");  // 41
  (*f)->write(line + "\n");  // 82
  EXPECT_EQ(slurp(p).size(), 82u);
  EXPECT_NE(file_info(p + ".1").code(), 0) << "no rotation yet";
  (*f)->write("b\n" + line + "\n");  // would be 125 > 100: rotated first
  EXPECT_EQ(slurp(p + ".1").size(), 82u);
  EXPECT_EQ(slurp(p), "b\n" + line + "\n");
  EXPECT_EQ(file_info(p)->mode, 0640u);
  f->reset();
  // Reopened: appends to what is there; already over the cap: rotated at once.
  auto again = open_log_file(p, 0640, 40);  // 42 bytes there
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ(slurp(p + ".1"), "b\n" + line + "\n");
  EXPECT_EQ(slurp(p), "");
  (*again)->write("c\n");
  EXPECT_EQ(slurp(p), "c\n");
}

TEST_F(LogFileTest, RefusesALinkAndAnUntrustedDirectory) {
  const std::string target = dir_ + "/target";
  ASSERT_TRUE(create_file(target, "", 0600));
  ASSERT_EQ(::symlink(target.c_str(), (dir_ + "/link.log").c_str()), 0);
  auto l = open_log_file(dir_ + "/link.log", 0640, 1000);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.code(), ELOOP) << l.message();
  const std::string open_dir = dir_ + "/world";
  ASSERT_TRUE(make_directory(open_dir, 0700));
  ASSERT_TRUE(set_file_mode(open_dir, 0777));
  auto w = open_log_file(open_dir + "/x.log", 0640, 1000);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.code(), EPERM) << w.message();
}

// log.h's file output: whole lines with timestamps (journal mode off), into the file.
TEST_F(LogFileTest, LogLinesGoToTheFile) {
  const std::string p = dir_ + "/wl1.log";
  auto f = open_log_file(p, 0640, 1 << 20);
  ASSERT_TRUE(f) << f.message();
  log_configure(LogLevel::kVerbose, "wl1");
  log_set_journal(true);
  log_set_file(std::move(*f));
  EXPECT_FALSE(log_journal());
  log_verbose("Interface %s is up", "wl1");
  log_debug("not at this level");
  const std::string text = slurp(p);
  EXPECT_EQ(text.rfind("INFO: (wl1) 20", 0), 0u) << text;
  EXPECT_NE(text.find(" Interface wl1 is up\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("not at this level"), std::string::npos);
}

}  // namespace
}  // namespace warren::platform
