// platform/files.h against the real file system, in a private temporary directory.
#include "platform/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>

namespace warren::platform {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/warren-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    (void)!std::system(cmd.c_str());
  }
  std::string path(const char* name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// The mode is exactly what was asked for, whatever the umask would have allowed.
TEST_F(FilesTest, CreateFileSetsTheExactModeAndRefusesAnExistingFile) {
  const mode_t old = ::umask(077);  // would turn 0640 into 0600
  auto st = create_file(path("key"), "secret\n", 0640);
  ::umask(old);
  ASSERT_TRUE(st) << st.message();
  auto info = file_info(path("key"));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->mode, 0640u);
  EXPECT_FALSE(info->directory);
  EXPECT_EQ(*read_file(path("key")), "secret\n");

  auto again = create_file(path("key"), "other\n", 0600);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), EEXIST);
  EXPECT_EQ(*read_file(path("key")), "secret\n") << "an existing file must never be replaced";
}

TEST_F(FilesTest, MissingFilesSayEnoent) {
  EXPECT_EQ(file_info(path("nope")).code(), ENOENT);
  auto r = read_file(path("nope"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), ENOENT);
  EXPECT_NE(r.message().find("open"), std::string::npos) << r.message();
  EXPECT_EQ(set_file_mode(path("nope"), 0600).code(), ENOENT);
}

TEST_F(FilesTest, ReadFileRefusesMoreThanTheLimit) {
  ASSERT_TRUE(create_file(path("big"), std::string(100, 'x'), 0644));
  EXPECT_EQ(read_file(path("big"), 99).code(), EFBIG);
  auto exact = read_file(path("big"), 100);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->size(), 100u);
}

TEST_F(FilesTest, ReplaceFileSwapsContentsAndLeavesNoTemporary) {
  ASSERT_TRUE(replace_file(path("conf"), "one", 0600));
  ASSERT_TRUE(create_file(path("conf.tmp"), "stale", 0600));  // a crash's leftover
  ASSERT_TRUE(replace_file(path("conf"), "two", 0640));
  EXPECT_EQ(*read_file(path("conf")), "two");
  EXPECT_EQ(file_info(path("conf"))->mode, 0640u);
  EXPECT_EQ(file_info(path("conf.tmp")).code(), ENOENT);
}

TEST_F(FilesTest, EnsureFileNeverTruncates) {
  ASSERT_TRUE(ensure_file(path("db"), 0600));
  EXPECT_EQ(*read_file(path("db")), "");
  ASSERT_TRUE(set_file_mode(path("db"), 0644));
  ASSERT_TRUE(replace_file(path("db"), "data", 0644));
  ASSERT_TRUE(ensure_file(path("db"), 0600));
  EXPECT_EQ(*read_file(path("db")), "data");
  EXPECT_EQ(file_info(path("db"))->mode, 0644u);
}

TEST_F(FilesTest, DirectoriesAreMadeOnceAndListed) {
  ASSERT_TRUE(make_directory(path("d"), 0700));
  EXPECT_TRUE(make_directory(path("d"), 0700)) << "an existing directory is success";
  EXPECT_TRUE(file_info(path("d"))->directory);
  ASSERT_TRUE(create_file(path("f"), "", 0600));
  EXPECT_EQ(make_directory(path("f"), 0700).code(), ENOTDIR);
  ASSERT_TRUE(create_file(path("d/a.sock"), "", 0600));
  ASSERT_TRUE(create_file(path("d/b"), "", 0600));
  auto names = list_directory(path("d"));
  ASSERT_TRUE(names);
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"a.sock", "b"}));
  EXPECT_EQ(list_directory(path("none")).code(), ENOENT);
}

TEST_F(FilesTest, EffectiveUidIsOurs) {
  EXPECT_EQ(effective_uid(), static_cast<std::uint32_t>(::geteuid()));
}

}  // namespace
}  // namespace warren::platform
