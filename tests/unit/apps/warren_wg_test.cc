// The warren-wg binary in a private network namespace (needs root): start-up, the UAPI socket,
// "in use" for a second daemon, clean exits on `ip link del`, SIGTERM and background mode, and
// sd_notify (READY=1 with the interface in place, STOPPING=1) with SIGHUP ignored.
// (Interop with wg/wg-quick is covered by tests/integration.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "platform/netlink.h"
#include "platform/unique_fd.h"
#include "unit/platform/netns_util.h"

namespace warren {
namespace {

using namespace std::chrono_literals;
using platform::UniqueFd;

std::string daemon_path() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "warren-wg").string();
}

// Unique per test process; the socket directory is shared by every network namespace.
std::string iface(const char* tag) {
  return std::string("wplt") + tag + std::to_string(::getpid() % 100000);
}

std::string socket_path(const std::string& name) {
  return "/var/run/wireguard/" + name + ".sock";
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A spawned process; killed and reaped on destruction if still running, so a failed
// assertion never leaves a daemon (and its namespace) behind.
struct Child {
  Child() = default;
  Child(Child&& o) noexcept : pid(std::exchange(o.pid, -1)), output(std::move(o.output)) {}
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  pid_t pid = -1;
  UniqueFd output;  // the child's stdout + stderr
};

Child spawn(const std::vector<std::string>& args, std::vector<std::string> env = {}) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {};
  std::vector<char*> argv;
  for (const auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  std::string level = "LOG_LEVEL=verbose";
  env.push_back(path);
  env.push_back(level);
  std::vector<char*> envp;
  for (auto& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Child c;
  c.pid = pid;
  c.output.reset(fds[0]);
  return c;
}

// Waits for the child to exit; returns its wait status, or -1 on timeout (the child is then
// killed).
int wait_exit(Child& c, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
      c.pid = -1;
      return status;
    }
    std::this_thread::sleep_for(10ms);
  }
  ::kill(c.pid, SIGKILL);
  ::waitpid(c.pid, &status, 0);
  c.pid = -1;
  return -1;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0)
      break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond())
      return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

// One UAPI exchange: sends `request` and reads until the blank line ending the reply.
std::string uapi(const std::string& name, const std::string& request) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = socket_path(name);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return "";
  if (::write(s.get(), request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    return "";
  }
  std::string reply;
  char buf[4096];
  while (reply.find("\n\n") == std::string::npos) {
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0)
      break;
    ssize_t n = ::read(s.get(), buf, sizeof(buf));
    if (n <= 0)
      break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  return reply;
}

#define REQUIRE_ROOT()                                      \
  if (!testing::is_root())                                  \
    GTEST_SKIP() << "needs root (TUN, network namespaces)"; \
  if (!exists(daemon_path()))                               \
  GTEST_SKIP() << "warren-wg not built next to the test"

void in_netns(const std::function<void()>& body) {
  std::string err = testing::run_in_new_netns(body);
  ASSERT_TRUE(err.empty()) << err;
}

TEST(DaemonTest, ServesUapiAndExitsWhenInterfaceIsDeleted) {
  REQUIRE_ROOT();
  in_netns([] {
    const std::string name = iface("a");
    Child d = spawn({daemon_path(), "-f", name});
    ASSERT_GT(d.pid, 0);
    ASSERT_TRUE(wait_for([&] { return exists(socket_path(name)); }, 5s))
        << read_all(d.output.get());
    struct stat st;
    ASSERT_EQ(::stat(socket_path(name).c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);

    auto cfg = std::move(platform::open_net_config().value());
    auto link = cfg->link_by_name(name);
    ASSERT_TRUE(link.ok()) << link.message();
    EXPECT_EQ(link->mtu, 1420u);

    std::string get = uapi(name, "get=1\n\n");
    EXPECT_NE(get.find("listen_port="), std::string::npos) << get;
    EXPECT_NE(get.find("errno=0\n\n"), std::string::npos) << get;
    std::string set = uapi(name, "set=1\nlisten_port=0\nfwmark=0\n\n");
    EXPECT_EQ(set, "errno=0\n\n");

    // wg-quick's teardown is `ip link delete`; the daemon must notice and go.
    ASSERT_TRUE(cfg->delete_link(link->ifindex).ok());
    int status = wait_exit(d, 5s);
    ASSERT_NE(status, -1) << "daemon did not exit after the interface was deleted";
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_FALSE(exists(socket_path(name)));
  });
}

TEST(DaemonTest, SecondDaemonIsRefusedAndSigtermCleansUp) {
  REQUIRE_ROOT();
  in_netns([] {
    const std::string name = iface("b");
    Child first = spawn({daemon_path(), "-f", name});
    ASSERT_TRUE(wait_for([&] { return exists(socket_path(name)); }, 5s));

    Child second = spawn({daemon_path(), "-f", name});
    int status = wait_exit(second, 5s);
    ASSERT_NE(status, -1);
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::string out = read_all(second.output.get());
    EXPECT_NE(out.find("in use"), std::string::npos) << out;
    EXPECT_TRUE(exists(socket_path(name))) << "the loser must not remove the winner's socket";

    ASSERT_EQ(::kill(first.pid, SIGTERM), 0);
    status = wait_exit(first, 5s);
    ASSERT_NE(status, -1);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_FALSE(exists(socket_path(name)));
    auto cfg = std::move(platform::open_net_config().value());
    EXPECT_EQ(cfg->link_by_name(name).code(), ENODEV) << "the TUN goes with its last queue";
  });
}

// A test-owned NOTIFY_SOCKET: the datagrams systemd would get.
struct NotifySocket {
  NotifySocket() : path("/tmp/warren-notify-" + std::to_string(::getpid()) + ".sock") {
    ::unlink(path.c_str());
    fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~NotifySocket() { ::unlink(path.c_str()); }
  // The next datagram, "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
      return "";
    char buf[512];
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }
  std::string path;
  UniqueFd fd;
  bool bound = false;
};

TEST(DaemonTest, NotifiesReadyWithTheInterfaceUpIgnoresSighupAndNotifiesStopping) {
  REQUIRE_ROOT();
  in_netns([] {
    const std::string name = iface("n");
    NotifySocket notify;
    ASSERT_TRUE(notify.bound);
    Child d = spawn({daemon_path(), "-f", name}, {"NOTIFY_SOCKET=" + notify.path});
    ASSERT_EQ(notify.next(5s), "READY=1");
    // When READY=1 arrives, the interface, the UAPI socket and the UDP port are in place.
    auto cfg = std::move(platform::open_net_config().value());
    EXPECT_TRUE(cfg->link_by_name(name).ok());
    EXPECT_NE(uapi(name, "get=1\n\n").find("listen_port="), std::string::npos);

    // SIGHUP: warren-wg has nothing to reload; it keeps running and tells nobody.
    ASSERT_EQ(::kill(d.pid, SIGHUP), 0);
    EXPECT_EQ(notify.next(300ms), "");
    EXPECT_EQ(::waitpid(d.pid, nullptr, WNOHANG), 0) << "SIGHUP must not stop the daemon";
    EXPECT_NE(uapi(name, "get=1\n\n").find("errno=0"), std::string::npos);

    ASSERT_EQ(::kill(d.pid, SIGTERM), 0);
    EXPECT_EQ(notify.next(5s), "STOPPING=1");
    const int status = wait_exit(d, 5s);
    ASSERT_NE(status, -1);
    EXPECT_EQ(WEXITSTATUS(status), 0);
    const std::string out = read_all(d.output.get());
    EXPECT_NE(out.find("SIGHUP: nothing to reload, ignored"), std::string::npos) << out;
  });
}

TEST(DaemonTest, BackgroundModeReturnsOnceTheSocketIsReady) {
  REQUIRE_ROOT();
  in_netns([] {
    const std::string name = iface("c");
    // The daemon is not our child: if an assertion fails, deleting its interface makes it go.
    struct DeleteLinkOnExit {
      std::string name;
      ~DeleteLinkOnExit() {
        auto cfg = platform::open_net_config();
        if (!cfg.ok())
          return;
        if (auto l = (*cfg)->link_by_name(name); l.ok()) {
          (void)(*cfg)->delete_link(l->ifindex);
        }
      }
    } guard{name};
    Child launcher = spawn({daemon_path(), name});
    int status = wait_exit(launcher, 5s);
    ASSERT_NE(status, -1);
    EXPECT_EQ(WEXITSTATUS(status), 0) << read_all(launcher.output.get());
    // No waiting: wg-quick runs `wg setconf` right after the daemon returns.
    EXPECT_TRUE(exists(socket_path(name)));
    EXPECT_NE(uapi(name, "get=1\n\n").find("errno=0"), std::string::npos);

    auto cfg = std::move(platform::open_net_config().value());
    auto link = cfg->link_by_name(name);
    ASSERT_TRUE(link.ok());
    ASSERT_TRUE(cfg->delete_link(link->ifindex).ok());
    EXPECT_TRUE(wait_for([&] { return !exists(socket_path(name)); }, 5s));
  });
}

TEST(DaemonTest, UsageAndBadNames) {
  if (!exists(daemon_path()))
    GTEST_SKIP() << "warren-wg not built next to the test";
  Child c = spawn({daemon_path()});
  EXPECT_EQ(WEXITSTATUS(wait_exit(c, 5s)), 1);
  EXPECT_NE(read_all(c.output.get()).find("Usage:"), std::string::npos);
  Child v = spawn({daemon_path(), "--version"});
  EXPECT_EQ(WEXITSTATUS(wait_exit(v, 5s)), 0);
  EXPECT_NE(read_all(v.output.get()).find("warren-wg v"), std::string::npos);
  Child bad = spawn({daemon_path(), "-f", "this-name-is-far-too-long"});
  EXPECT_EQ(WEXITSTATUS(wait_exit(bad, 5s)), 1);
}

}  // namespace
}  // namespace warren
