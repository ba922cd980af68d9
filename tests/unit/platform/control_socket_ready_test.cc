// Regression (CI of stop 22, DaemonTest.ServesUapiAndExitsWhenInterfaceIsDeleted under ASan):
// the UAPI socket file appeared at bind(), before listen(), so a client that took the file's
// existence as "ready" (as `wg`, wg-quick and our tests do) could be refused. The listener is
// now bound under a private name and renamed into place once listening: the name appears by a
// rename (IN_MOVED_TO), never by a create, and nothing is left behind.

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "platform/control_socket.h"

namespace warren::platform {
namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr)
    return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      names.push_back(n);
  }
  ::closedir(d);
  return names;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/warren-ready.XXXXXX";
    if (::mkdtemp(t) != nullptr)
      path = t;
  }
  ~TempDir() {
    for (const auto& n : entries(path))
      ::unlink((path + "/" + n).c_str());
    ::rmdir(path.c_str());
  }
};

TEST(ControlListenerReady, TheNameAppearsOnlyOnceTheSocketListens) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(in, 0);
  ASSERT_GE(::inotify_add_watch(in, dir.path.c_str(), IN_CREATE | IN_MOVED_TO), 0);

  const std::string path = dir.path + "/wg0.sock";
  auto listener = listen_unix(path);
  ASSERT_TRUE(listener.ok()) << listener.message();

  bool created = false, moved = false;
  alignas(inotify_event) char buf[4096];
  ssize_t n = ::read(in, buf, sizeof buf);
  ASSERT_GT(n, 0) << std::strerror(errno);
  for (char* p = buf; p < buf + n;) {
    auto* ev = reinterpret_cast<inotify_event*>(p);
    std::string name = ev->len ? ev->name : "";
    if (name == "wg0.sock") {
      created |= (ev->mask & IN_CREATE) != 0;
      moved |= (ev->mask & IN_MOVED_TO) != 0;
    }
    p += sizeof(inotify_event) + ev->len;
  }
  ::close(in);
  EXPECT_FALSE(created) << "the socket was bound at its public name (connect may be refused)";
  EXPECT_TRUE(moved);
  EXPECT_EQ(entries(dir.path), std::vector<std::string>{"wg0.sock"}) << "a staging name is left";

  auto c = connect_unix(path);
  EXPECT_TRUE(c.ok()) << c.message();
}

TEST(ControlListenerReady, ASecondListenerFailsAndLeavesNoStagingFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string path = dir.path + "/wg1.sock";
  auto first = listen_unix(path);
  ASSERT_TRUE(first.ok()) << first.message();
  auto second = listen_unix(path);
  EXPECT_FALSE(second.ok());
  EXPECT_EQ(entries(dir.path), std::vector<std::string>{"wg1.sock"});
  auto c = connect_unix(path);
  EXPECT_TRUE(c.ok()) << "the first listener's socket must survive: " << c.message();
}

}  // namespace
}  // namespace warren::platform
