// The real client::System: rtnetlink through platform::NetConfig, POSIX files with fsync, and
// fork/exec for resolvconf / resolvectl.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "client/system.h"

namespace warren::client {
namespace {

constexpr const char* kSearchDirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin",        "/sbin",          "/bin"};

std::string errno_text(const std::string& what, const std::string& path, int e) {
  return what + " " + path + ": " + std::strerror(e);
}

std::string write_all(int fd, const std::string& data, const std::string& path) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno_text("write", path, errno);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)  // /proc files cannot fsync
    return errno_text("fsync", path, errno);
  return "";
}

class LinuxSystem final : public System {
 public:
  explicit LinuxSystem(std::unique_ptr<platform::NetConfig> net) : net_(std::move(net)) {}

  platform::NetConfig& net() override { return *net_; }

  bool read_file(const std::string& path, std::string& content, int& error) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      error = errno;
      return false;
    }
    content.clear();
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        error = errno;
        ::close(fd);
        return false;
      }
      if (n == 0)
        break;
      content.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return true;
  }

  std::string write_file(const std::string& path, const std::string& content, unsigned mode,
                         bool in_place) override {
    // In place: the same inode (bind mounts, /proc/sys); O_CREAT only if it did not exist.
    int flags = O_WRONLY | O_TRUNC | O_CLOEXEC | O_CREAT;
    int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
    if (fd < 0)
      return errno_text("open", path, errno);
    if (!in_place && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
      int e = errno;
      ::close(fd);
      return errno_text("chmod", path, e);
    }
    std::string e = write_all(fd, content, path);
    ::close(fd);
    return e;
  }

  std::string append_file(const std::string& path, const std::string& line) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
      return errno_text("open", path, errno);
    std::string e = write_all(fd, line + "\n", path);
    ::close(fd);
    return e;
  }

  std::string remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return errno_text("remove", path, errno);
    return "";
  }

  std::string run(const std::vector<std::string>& argv, const std::string& input) override {
    std::string exe = find_program(argv.at(0));
    if (exe.empty())
      return argv[0] + ": not found";
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0)
      return errno_text("pipe for", argv[0], errno);
    pid_t pid = ::fork();
    if (pid < 0) {
      int e = errno;
      ::close(pipefd[0]);
      ::close(pipefd[1]);
      return errno_text("fork for", argv[0], e);
    }
    if (pid == 0) {
      ::dup2(pipefd[0], 0);
      ::execv(exe.c_str(), args.data());
      ::_exit(127);
    }
    ::close(pipefd[0]);
    std::string werr = input.empty() ? "" : write_all(pipefd[1], input, argv[0]);
    ::close(pipefd[1]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string cmd;
    for (const auto& a : argv)
      cmd += (cmd.empty() ? "" : " ") + a;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
      return "";
    if (WIFEXITED(status))
      return "`" + cmd + "` exited with status " + std::to_string(WEXITSTATUS(status));
    return "`" + cmd + "` was killed by signal " + std::to_string(WTERMSIG(status));
  }

  bool program_exists(const std::string& name) override { return !find_program(name).empty(); }

  bool resolved_running() override {
    return ::access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0;
  }

  std::string netns_id() override {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0)
      return "unknown";
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }

 private:
  static std::string find_program(const std::string& name) {
    if (name.find('/') != std::string::npos)
      return ::access(name.c_str(), X_OK) == 0 ? name : "";
    for (const char* d : kSearchDirs) {
      std::string p = std::string(d) + "/" + name;
      if (::access(p.c_str(), X_OK) == 0)
        return p;
    }
    return "";
  }

  std::unique_ptr<platform::NetConfig> net_;
};

}  // namespace

std::unique_ptr<System> make_system() {
  auto net = platform::open_net_config();
  if (!net.ok())
    throw std::runtime_error("cannot open rtnetlink: " + net.message());
  return std::make_unique<LinuxSystem>(std::move(net.value));
}

}  // namespace warren::client
