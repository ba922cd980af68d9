// platform/process.h: the process-level protections every daemon takes, and process queries.
#include "platform/process.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "platform/files.h"

namespace warren::platform {
namespace {

// Issue 12 (8): a daemon's memory holds keys; it must not be dumped or attached to.
TEST(Process, CoreDumpsCanBeTurnedOff) {
  ASSERT_EQ(::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
  ASSERT_TRUE(core_dumps_enabled());
  ASSERT_TRUE(disable_core_dumps().ok());
  EXPECT_FALSE(core_dumps_enabled());
  ASSERT_EQ(::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);  // leave the test process as it was
}

// Issue 12 (8): two servers on one database refuse each other through this lock.
TEST(Process, FileLockIsExclusiveUntilReleased) {
  char tmpl[] = "/tmp/warren-lock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/state.db.lock";
  {
    auto first = FileLock::acquire(path);
    ASSERT_TRUE(first.ok()) << first.message();
    auto second = FileLock::acquire(path);  // another open file description: refused at once
    ASSERT_FALSE(second.ok());
    EXPECT_TRUE(second.would_block()) << second.message();
    auto info = file_info(path);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->mode, 0600u);
  }
  EXPECT_TRUE(FileLock::acquire(path).ok()) << "released with its owner";
  (void)!std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
}

// `warren server check`: whether a server holds the lock, asked without creating the file.
TEST(Process, FileLockHeldReportsAHolderAndCreatesNothing) {
  char tmpl[] = "/tmp/warren-lock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/state.db.lock";
  auto missing = FileLock::held(path);
  ASSERT_TRUE(missing.ok()) << missing.message();
  EXPECT_FALSE(*missing);
  EXPECT_EQ(file_info(path).code(), ENOENT) << "held() must not create the lock file";
  {
    auto lock = FileLock::acquire(path);
    ASSERT_TRUE(lock.ok()) << lock.message();
    auto held = FileLock::held(path);
    ASSERT_TRUE(held.ok()) << held.message();
    EXPECT_TRUE(*held);
  }
  auto free = FileLock::held(path);
  ASSERT_TRUE(free.ok()) << free.message();
  EXPECT_FALSE(*free);
  EXPECT_TRUE(FileLock::acquire(path).ok()) << "held() left no lock behind";
  (void)!std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
}

TEST(Process, ProcessQueries) {
  EXPECT_EQ(current_process_id(), static_cast<int>(::getpid()));
  EXPECT_TRUE(process_exists(current_process_id()));
  EXPECT_FALSE(process_exists(0));
  auto cmd = process_command_line(current_process_id());
  ASSERT_TRUE(cmd.ok()) << cmd.message();
  EXPECT_NE(cmd->find("test_platform"), std::string::npos);
  EXPECT_FALSE(process_command_line(999'999'999).ok());
}

}  // namespace
}  // namespace warren::platform
