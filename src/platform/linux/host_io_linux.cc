// platform/host_io.h on Linux: POSIX files with fsync, fork/exec with a pipe for stdin and one
// for the output.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "platform/host_io.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

constexpr const char* kSearchDirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                       "/usr/bin",        "/sbin",          "/bin"};
constexpr std::size_t kMaxOutput = 4096;

warren::Error file_error(const char* what, const std::string& path, int e) {
  return warren::Error(e, std::string(what) + " " + path + ": " + std::strerror(e));
}

warren::Status write_all(int fd, const std::string& data, const std::string& path, bool sync) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return file_error("write", path, errno);
    }
    off += static_cast<std::size_t>(n);
  }
  if (sync && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)  // /proc cannot fsync
    return file_error("fsync", path, errno);
  return warren::ok();
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? name : "";
  for (const char* d : kSearchDirs) {
    std::string p = std::string(d) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0)
      return p;
  }
  return "";
}

}  // namespace

warren::Result<ProgramExit> run_program(const std::vector<std::string>& argv,
                                        const std::string& input) {
  if (argv.empty())
    return warren::Error(EINVAL, "run_program: empty argv");
  const std::string exe = find_program(argv[0]);
  if (exe.empty())
    return warren::Error(ENOENT, argv[0] + ": not found (is it installed?)");
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0)
    return file_error("pipe for", argv[0], errno);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0)
    return file_error("pipe for", argv[0], errno);
  UniqueFd out_r(out[0]), out_w(out[1]);
  const pid_t pid = ::fork();
  if (pid < 0)
    return file_error("fork for", argv[0], errno);
  if (pid == 0) {
    // Only async-signal-safe calls until exec: the parent may have threads.
    ::dup2(in_r.get(), 0);
    ::dup2(out_w.get(), 1);
    ::dup2(out_w.get(), 2);
    ::execv(exe.c_str(), args.data());
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  // The inputs are a few lines (a resolv.conf), far below a pipe's buffer, so writing all of
  // it before reading the output cannot deadlock.
  (void)write_all(in_w.get(), input, argv[0], false);
  in_w.reset();
  // Read the output until EOF, or until the program has exited: something it started in the
  // background (a resolvconf hook restarting a daemon) may keep the pipe open for good.
  ProgramExit r;
  char buf[1024];
  int status = 0;
  bool exited = false;
  for (;;) {
    if (!exited) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w < 0 && errno != EINTR)
        return file_error("waitpid for", argv[0], errno);
      exited = w == pid;
    }
    pollfd p{out_r.get(), POLLIN, 0};
    const int n = ::poll(&p, 1, exited ? 0 : 50);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (exited)
        break;  // exited, and nothing more to read now
      continue;
    }
    const ssize_t got = ::read(out_r.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0) {
      if (exited)
        break;
      // EOF before the exit: wait for it.
      while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
          return file_error("waitpid for", argv[0], errno);
      }
      break;
    }
    if (r.output.size() < kMaxOutput)
      r.output.append(buf, static_cast<std::size_t>(got));
  }
  if (WIFSIGNALED(status))
    return warren::Error(EINTR, argv[0] + " was killed by signal " +
                                    std::to_string(WTERMSIG(status)));
  r.status = WEXITSTATUS(status);
  if (r.status == 127 && r.output.empty())
    return warren::Error(ENOEXEC, "cannot execute " + exe);
  return r;
}

bool program_exists(const std::string& name) {
  return !find_program(name).empty();
}

bool resolved_running() {
  return ::access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0;
}

std::string netns_id() {
  struct stat st {};
  if (::stat("/proc/self/ns/net", &st) != 0)
    return "unknown";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

std::string boot_id() {
  std::string id;
  {
    UniqueFd fd(::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC));
    char buf[64];
    ssize_t n = fd.valid() ? ::read(fd.get(), buf, sizeof buf) : -1;
    if (n <= 0)
      return "unknown";
    id.assign(buf, static_cast<std::size_t>(n));
  }
  while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
    id.pop_back();
  return id.empty() ? "unknown" : id;
}

}  // namespace warren::platform
