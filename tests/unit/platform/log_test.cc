#include "platform/log.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace warren::platform {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_set_output([this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    });
  }
  void TearDown() override {
    log_set_output({});
    log_configure(LogLevel::kError, "");
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

TEST(LogLevelTest, ParsesWireguardGoNames) {
  EXPECT_EQ(parse_log_level("silent"), LogLevel::kSilent);
  EXPECT_EQ(parse_log_level("error"), LogLevel::kError);
  EXPECT_EQ(parse_log_level("verbose"), LogLevel::kVerbose);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("loud"), std::nullopt);
}

TEST_F(LogTest, FiltersByLevelAndPrefixesInterface) {
  log_configure(LogLevel::kError, "wplt0");
  log_error("bind failed: %s", "Address already in use");
  log_verbose("hidden");
  log_debug("hidden too");
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].rfind("ERROR: (wplt0) ", 0), 0u) << l[0];
  EXPECT_NE(l[0].find("bind failed: Address already in use\n"), std::string::npos);

  log_set_level(LogLevel::kDebug);
  log_verbose("v");
  log_debug("d");
  EXPECT_EQ(lines().size(), 3u);

  log_set_level(LogLevel::kSilent);
  log_error("nothing");
  EXPECT_EQ(lines().size(), 3u);
}

TEST_F(LogTest, LongMessagesAreTruncatedNotOverflowed) {
  log_configure(LogLevel::kError, "x");
  std::string big(5000, 'a');
  log_error("%s", big.c_str());
  auto l = lines();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_LE(l[0].size(), 1024u);
  EXPECT_EQ(l[0].back(), '\n');
}

TEST_F(LogTest, ConcurrentLinesStayWhole) {
  log_configure(LogLevel::kError, "c");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i)
        log_error("thread %d line %d end", t, i);
    });
  }
  for (auto& th : threads)
    th.join();
  auto l = lines();
  ASSERT_EQ(l.size(), 800u);
  for (const auto& line : l)
    EXPECT_NE(line.find(" end\n"), std::string::npos) << line;
}

}  // namespace
}  // namespace warren::platform
