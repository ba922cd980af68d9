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

// The host steps' files: created, in place, appended, removed.
TEST_F(FilesTest, TrustedFilesWriteAppendAndRemove) {
  const std::string f = path("j");
  auto missing = read_trusted_file(f);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), ENOENT);
  EXPECT_NE(missing.message().find(f), std::string::npos);
  EXPECT_FALSE(append_trusted_file(f, "x").ok());  // append needs an existing file
  ASSERT_TRUE(write_trusted_file(f, "head\n", 0600, false).ok());
  EXPECT_EQ(file_info(f)->mode, 0600u);
  ASSERT_TRUE(append_trusted_file(f, "line").ok());
  EXPECT_EQ(read_trusted_file(f).value(), "head\nline\n");
  ASSERT_TRUE(write_trusted_file(f, "new\n", 0644, true).ok());
  EXPECT_EQ(read_trusted_file(f).value(), "new\n");
  EXPECT_EQ(file_info(f)->mode, 0600u) << "in place keeps the inode's mode";
  EXPECT_EQ(read_trusted_file(f, 3).code(), EFBIG);
  ASSERT_TRUE(remove_trusted_file(f).ok());
  EXPECT_TRUE(remove_trusted_file(f).ok());  // already gone
  EXPECT_FALSE(write_trusted_file(dir_ + "/no/such/dir", "x", 0600, false).ok());
  ASSERT_TRUE(replace_trusted_file(path("pid"), "1\n", 0644).ok());
  EXPECT_EQ(read_trusted_file(path("pid")).value(), "1\n");
}

// A symbolic link planted where root writes (the journal, the resolv.conf backup) is refused,
// and its target is left untouched.
TEST_F(FilesTest, TrustedFilesRefuseASymlink) {
  ASSERT_TRUE(create_file(path("target"), "precious\n", 0600));
  ASSERT_EQ(::symlink(path("target").c_str(), path("wg0.state").c_str()), 0);
  for (bool in_place : {false, true}) {
    auto w = write_trusted_file(path("wg0.state"), "evil\n", 0600, in_place);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.code(), ELOOP);
    EXPECT_NE(w.message().find(path("wg0.state") + ": it is a symbolic link"), std::string::npos)
        << w.message();
  }
  EXPECT_EQ(append_trusted_file(path("wg0.state"), "evil").code(), ELOOP);
  EXPECT_EQ(read_trusted_file(path("wg0.state")).code(), ELOOP);
  EXPECT_EQ(*read_file(path("target")), "precious\n");
  // replace_trusted_file renames over the link: the link goes, its target stays.
  ASSERT_TRUE(replace_trusted_file(path("wg0.state"), "mine\n", 0600).ok());
  EXPECT_EQ(*read_file(path("target")), "precious\n");
  EXPECT_EQ(*read_trusted_file(path("wg0.state")), "mine\n");
}

// A directory others can write (a world-writable state directory) is refused, naming it.
TEST_F(FilesTest, TrustedFilesRefuseAWritableDirectory) {
  const std::string d = path("state");
  ASSERT_TRUE(make_directory(d, 0700));
  ASSERT_TRUE(set_file_mode(d, 0777));
  auto s = write_trusted_file(d + "/wg0.state", "x\n", 0600, false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EPERM);
  EXPECT_NE(s.message().find("refusing to use " + d + ": it is writable by group or others (mode 0777)"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(file_info(d + "/wg0.state").code(), ENOENT) << "nothing was created";
  EXPECT_EQ(check_trusted_directory(d).code(), EPERM);
  EXPECT_EQ(read_trusted_file(d + "/wg0.state").code(), EPERM);
  EXPECT_EQ(remove_trusted_file(d + "/wg0.state").code(), EPERM);
  EXPECT_EQ(replace_trusted_file(d + "/wg0.pid", "1\n", 0644).code(), EPERM);
  ASSERT_TRUE(set_file_mode(d, 0755));
  EXPECT_TRUE(check_trusted_directory(d).ok());
  // A file that group or others can write is refused too (it may have been swapped in).
  ASSERT_TRUE(create_file(d + "/wg0.resolv.conf", "nameserver 10.0.0.1\n", 0666));
  auto r = read_trusted_file(d + "/wg0.resolv.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("writable by group or others (mode 0666)"), std::string::npos)
      << r.message();
}

// Owned by someone else (root tests only: chown needs it).
TEST_F(FilesTest, TrustedFilesRefuseAForeignOwner) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to chown";
  const std::string d = path("other");
  ASSERT_TRUE(make_directory(d, 0755));
  ASSERT_EQ(::chown(d.c_str(), 65534, 65534), 0);
  auto s = write_trusted_file(d + "/f", "x", 0600, false);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("refusing to use " + d + ": it is owned by uid 65534, not root"),
            std::string::npos)
      << s.message();
  ASSERT_TRUE(create_file(path("f"), "x", 0644));
  ASSERT_EQ(::chown(path("f").c_str(), 65534, 65534), 0);
  EXPECT_EQ(write_trusted_file(path("f"), "y", 0644, true).code(), EPERM);
  EXPECT_EQ(*read_file(path("f")), "x");
}

TEST_F(FilesTest, EffectiveUidIsOurs) {
  EXPECT_EQ(effective_uid(), static_cast<std::uint32_t>(::geteuid()));
}

}  // namespace
}  // namespace warren::platform
