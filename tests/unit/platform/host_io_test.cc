// platform/host_io.h on the real system: programs (exit status, output, stdin, not installed,
// a background child that keeps the output pipe open). Its files are in files_test.cc.
#include "platform/host_io.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace warren::platform {
namespace {

TEST(HostIo, ProgramStatusOutputAndInput) {
  auto r = run_program({"sh", "-c", "echo out; echo err >&2; exit 3"}, "");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 3);
  EXPECT_EQ(r->output, "out\nerr\n");
  auto cat = run_program({"cat"}, "nameserver 10.0.0.1\n");
  ASSERT_TRUE(cat.ok()) << cat.message();
  EXPECT_EQ(cat->status, 0);
  EXPECT_EQ(cat->output, "nameserver 10.0.0.1\n");
  auto none = run_program({"warren-no-such-program"}, "");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ENOENT);
  EXPECT_FALSE(program_exists("warren-no-such-program"));
  EXPECT_TRUE(program_exists("sh"));
}

TEST(HostIo, BackgroundChildHoldingTheOutputDoesNotBlock) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_program({"sh", "-c", "sleep 5 & echo started"}, "");
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 0);
  EXPECT_EQ(r->output, "started\n");
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(HostIo, Identity) {
  EXPECT_NE(netns_id(), "unknown");
  EXPECT_EQ(boot_id().size(), 36u);  // a UUID
}

}  // namespace
}  // namespace warren::platform
