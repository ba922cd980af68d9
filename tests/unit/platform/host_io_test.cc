// platform/host_io.h on the real system: files (create, in place, append, remove) in a temp
// directory, and programs (exit status, output, stdin, not installed, a background child that
// keeps the output pipe open).
#include "platform/host_io.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

namespace warren::platform {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/warren-host-io.XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(HostIo, Files) {
  TempDir d;
  const std::string f = d.path + "/j";
  auto missing = read_file(f);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.message().find(f), std::string::npos);
  EXPECT_FALSE(append_file(f, "x").ok());  // append needs an existing file
  ASSERT_TRUE(write_file(f, "head\n", 0600, false).ok());
  EXPECT_EQ(std::filesystem::status(f).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  ASSERT_TRUE(append_file(f, "line").ok());
  EXPECT_EQ(read_file(f).value(), "head\nline\n");
  ASSERT_TRUE(write_file(f, "new\n", 0644, true).ok());
  EXPECT_EQ(read_file(f).value(), "new\n");
  ASSERT_TRUE(remove_file(f).ok());
  EXPECT_TRUE(remove_file(f).ok());  // already gone
  EXPECT_FALSE(write_file(d.path + "/no/such/dir", "x", 0600, false).ok());
}

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
