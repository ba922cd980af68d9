#pragma once
/// Process plumbing for the daemon: going to the background with a start-up report, and
/// termination signals as a pollable descriptor.
///
///   parent ──fork──► child: setsid, set-up ... report_ready() / report_error("msg")
///     │                                              │
///     └──── waits on the pipe ◄──────────────────────┘   exit 0 / print msg, exit 1
///
/// The fork must happen before the process creates any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "platform/unique_fd.h"

namespace warren::platform {

/// The child's end of the start-up pipe.
class StartupReport {
 public:
  StartupReport() = default;
  explicit StartupReport(UniqueFd fd) : fd_(std::move(fd)) {}

  /// True in a child created by daemonize(); false in foreground mode (reports are no-ops).
  bool active() const { return fd_.valid(); }
  /// Tells the waiting parent to exit 0. Later calls do nothing.
  void report_ready() noexcept;
  /// Tells the waiting parent to print `message` and exit 1. Later calls do nothing.
  void report_error(std::string_view message) noexcept;

 private:
  UniqueFd fd_;
};

/// Forks. The parent never returns: it waits for the child's report and exits 0 on "ready",
/// or prints the child's message to stderr and exits 1 (also when the child dies silently).
/// The child returns its StartupReport after setsid(). Fails (in the original process) only if
/// the pipe or the fork cannot be created.
Result<StartupReport> daemonize();

/// Points stdin at /dev/null, and stdout/stderr too unless `keep_output`.
Status redirect_stdio(bool keep_output);

/// The signals a daemon acts on, without the OS's numbers (they stay in src/platform/linux).
enum class Signal : std::uint8_t {
  kInterrupt,  ///< SIGINT
  kTerminate,  ///< SIGTERM
  kHangup,     ///< SIGHUP
  kOther,      ///< anything else delivered (not acted on)
};
const char* signal_name(Signal s);

/// SIGINT/SIGTERM (and SIGHUP) delivered through a descriptor instead of handlers. Creating it
/// blocks those signals in the calling thread, so create it before starting threads (they
/// inherit the mask). It also ignores SIGPIPE process-wide.
class TerminationSignals {
 public:
  /// Throws std::system_error on failure (start-up only).
  TerminationSignals();
  int poll_fd() const { return fd_.get(); }
  /// The pending signal, or nullopt if none.
  std::optional<Signal> read() noexcept;

 private:
  UniqueFd fd_;
};

/// True if the effective user may administer network interfaces (root or CAP_NET_ADMIN).
bool has_net_admin();

/// Makes this process non-dumpable (prctl PR_SET_DUMPABLE 0): no core file, no ptrace
/// attach and no /proc/PID/mem by other unprivileged users, so session and static keys in the
/// daemon's memory do not end up on disk or in another process. Every daemon calls it first.
warren::Status disable_core_dumps();
/// Whether this process is dumpable (tests).
bool core_dumps_enabled();

/// An exclusive advisory lock on `path` (created 0600 if missing), held until the object is
/// destroyed; EWOULDBLOCK at once when another process (or another open of it) holds it.
class FileLock {
 public:
  static warren::Result<FileLock> acquire(const std::string& path);
  /// Whether another open of `path` holds a lock that acquire() would wait for, without
  /// creating or changing the file: false when it does not exist. Takes a shared lock for an
  /// instant (an acquire() in that instant sees EWOULDBLOCK), so a checker that runs while no
  /// server starts (`warren server check`) disturbs nobody.
  static warren::Result<bool> held(const std::string& path);
  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

/// This process's id.
int current_process_id();
/// True while process `pid` exists (also when it belongs to another user).
bool process_exists(int pid);
/// Its argv as the kernel shows it (/proc/PID/cmdline): arguments separated by '\0'. ENOENT
/// when it is gone.
warren::Result<std::string> process_command_line(int pid);
/// Asks process `pid` to stop (SIGTERM).
warren::Status terminate_process(int pid);

}  // namespace warren::platform
