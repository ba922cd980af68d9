// Daemonisation and signals. The start-up protocol on the pipe is one message from the child:
// "R" (ready) or "E" followed by the error text; EOF without a message means the child died.
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "platform/process.h"

namespace warren::platform {
namespace {

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

[[noreturn]] void parent_wait(int read_fd, pid_t child) {
  std::string message;
  char buf[512];
  for (;;) {
    ssize_t r = ::read(read_fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    message.append(buf, static_cast<std::size_t>(r));
    if (!message.empty() && message[0] == 'R')
      break;
  }
  if (!message.empty() && message[0] == 'R')
    std::_Exit(0);
  if (!message.empty() && message[0] == 'E') {
    std::fprintf(stderr, "%s\n", message.c_str() + 1);
  } else {
    // No report: the child crashed or was killed before finishing set-up.
    int status = 0;
    ::waitpid(child, &status, WNOHANG);
    std::fprintf(stderr, "The daemon exited during start-up\n");
  }
  std::fflush(stderr);
  std::_Exit(1);
}

}  // namespace

void StartupReport::report_ready() noexcept {
  if (!fd_)
    return;
  write_all(fd_.get(), "R", 1);
  fd_.reset();
}

void StartupReport::report_error(std::string_view message) noexcept {
  if (!fd_)
    return;
  std::string m = "E";
  m.append(message);
  write_all(fd_.get(), m.data(), m.size());
  fd_.reset();
}

Result<StartupReport> daemonize() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return Error::from_errno(errno, "pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0)
    return Error::from_errno(errno, "fork");
  if (pid > 0) {
    write_end.reset();
    parent_wait(read_end.get(), pid);
  }
  read_end.reset();
  // A new session: no controlling terminal, so the shell's hang-up or Ctrl-C do not reach us.
  ::setsid();
  // Nothing the launcher had open (a shell's pipes, a supervisor's sockets, files) lives on in
  // the daemon: only stdio and the report pipe are kept. (A held pipe would also keep a
  // caller's `$(...)` or `| tee` waiting until the daemon exits.)
  const unsigned keep = static_cast<unsigned>(write_end.get());
  if (keep > 3)
    (void)::close_range(3, keep - 1, 0);
  (void)::close_range(keep + 1, ~0U, 0);
  return StartupReport(std::move(write_end));
}

Status redirect_stdio(bool keep_output) {
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null)
    return Error::from_errno(errno, "open(/dev/null)");
  if (::dup2(null.get(), STDIN_FILENO) < 0)
    return Error::from_errno(errno, "dup2");
  if (!keep_output) {
    if (::dup2(null.get(), STDOUT_FILENO) < 0)
      return Error::from_errno(errno, "dup2");
    if (::dup2(null.get(), STDERR_FILENO) < 0)
      return Error::from_errno(errno, "dup2");
  }
  return {};
}

TerminationSignals::TerminationSignals() {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    throw std::system_error(err, std::generic_category(), "pthread_sigmask");
  }
  fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd_)
    throw std::system_error(errno, std::generic_category(), "signalfd");
}

std::optional<Signal> TerminationSignals::read() noexcept {
  signalfd_siginfo info;
  ssize_t r = ::read(fd_.get(), &info, sizeof(info));
  if (r != static_cast<ssize_t>(sizeof(info)))
    return std::nullopt;
  switch (info.ssi_signo) {
    case SIGINT:
      return Signal::kInterrupt;
    case SIGTERM:
      return Signal::kTerminate;
    case SIGHUP:
      return Signal::kHangup;
    default:
      return Signal::kOther;
  }
}

const char* signal_name(Signal s) {
  switch (s) {
    case Signal::kInterrupt:
      return "SIGINT";
    case Signal::kTerminate:
      return "SIGTERM";
    case Signal::kHangup:
      return "SIGHUP";
    case Signal::kOther:
      break;
  }
  return "another signal";
}

warren::Status disable_core_dumps() {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return warren::Error::from_errno(errno, "prctl(PR_SET_DUMPABLE)");
  return {};
}

bool core_dumps_enabled() {
  return ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1;
}

warren::Result<FileLock> FileLock::acquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd)
    return warren::Error::from_errno(errno, "open");
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0)
    return warren::Error::from_errno(errno, "flock");
  return FileLock(std::move(fd));
}

warren::Result<bool> FileLock::held(const std::string& path) {
  // O_RDONLY without O_CREAT: a missing lock file is nobody's lock, and stays missing.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT)
      return false;
    return warren::Error::from_errno(errno, "open");
  }
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return true;
    return warren::Error::from_errno(errno, "flock");
  }
  return false;  // closing the descriptor drops the shared lock
}

int current_process_id() {
  return static_cast<int>(::getpid());
}

bool process_exists(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

warren::Result<std::string> process_command_line(int pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/cmdline";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return warren::Error::from_errno(errno, "open(/proc/PID/cmdline)");
  std::string out;
  char buf[4096];
  for (;;) {  // a proc file announces no size: read to its end, bounded
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return warren::Error::from_errno(errno, "read(/proc/PID/cmdline)");
    if (n == 0 || out.size() > (1u << 20))
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

warren::Status terminate_process(int pid) {
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0)
    return warren::Error::from_errno(pid <= 0 ? ESRCH : errno, "kill(SIGTERM)");
  return {};
}

bool has_net_admin() {
  if (::geteuid() == 0)
    return true;
  // capget directly: libcap is not a dependency for one bit.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capget, &header, data) != 0)
    return false;
  return (data[CAP_NET_ADMIN / 32].effective >> (CAP_NET_ADMIN % 32)) & 1u;
}

}  // namespace warren::platform
