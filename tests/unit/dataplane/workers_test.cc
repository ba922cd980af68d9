#include "dataplane/workers.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <optional>
#include <string>
#include <thread>

namespace warren::dataplane {
namespace {

// Sets WARREN_WORKERS for one test and puts the previous value back.
class WorkersEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = getenv("WARREN_WORKERS"))
      saved_ = v;
  }
  void TearDown() override {
    if (saved_)
      setenv("WARREN_WORKERS", saved_->c_str(), 1);
    else
      unsetenv("WARREN_WORKERS");
  }
  static std::size_t per_cpu() {
    unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
  }
  std::optional<std::string> saved_;
};

TEST_F(WorkersEnv, DefaultIsOnePerCpu) {
  unsetenv("WARREN_WORKERS");
  EXPECT_EQ(worker_count_from_environment(), per_cpu());
  EXPECT_GE(worker_count_from_environment(), 1u);
}

TEST_F(WorkersEnv, ValidOverrideWins) {
  for (const char* v : {"1", "3", "17", "64"}) {
    setenv("WARREN_WORKERS", v, 1);
    EXPECT_EQ(worker_count_from_environment(), std::stoul(v)) << v;
  }
}

TEST_F(WorkersEnv, InvalidOverrideFallsBackToPerCpu) {
  for (const char* v : {"0", "65", "1000", "4x", "x4", "", "-2"}) {
    setenv("WARREN_WORKERS", v, 1);
    EXPECT_EQ(worker_count_from_environment(), per_cpu()) << "'" << v << "'";
  }
}

}  // namespace
}  // namespace warren::dataplane
