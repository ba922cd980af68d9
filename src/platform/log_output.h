#pragma once
/// Where a daemon's log lines can go besides a terminal (platform/log.h writes them):
///
///   * the systemd journal: a service's stderr is a stream to journald, and systemd says so in
///     JOURNAL_STREAM="DEV:INODE" (systemd.exec(5)); the variable is inherited by children whose
///     stderr may be something else, so it counts only when stderr's device and inode match it.
///     Lines then carry the sd-daemon(3) priority prefix ("<3>" error, "<6>" info, "<7>" debug)
///     and no timestamp (the journal stamps every line).
///   * a size-capped file (LogFile): a backgrounded `warren up` outside systemd writes there.
///
/// No libsystemd: the prefix protocol is a few bytes on stderr.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace warren::platform {

/// A file's identity as JOURNAL_STREAM names it.
struct StreamIdentity {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
};

/// Parses JOURNAL_STREAM ("DEV:INODE", both decimal); nullopt when malformed.
std::optional<StreamIdentity> parse_journal_stream(std::string_view value);

/// Whether stderr is the journal: `journal_stream` (the variable's value, null when unset)
/// names `stderr_identity` (fstat of fd 2; an error when it is closed). Pure, for tests.
bool journal_connected(const char* journal_stream, const Result<StreamIdentity>& stderr_identity);

/// The device and inode of this process's stderr (fstat(2) of fd 2).
Result<StreamIdentity> stderr_identity();

/// journal_connected() for this process (the environment and its real stderr).
bool stderr_is_journal();

/// An append-only log file capped in size: when a line would take it past `max_bytes`, the
/// file is renamed to PATH.1 (replacing the previous one) and a new PATH is started, so at most
/// about 2 × max_bytes stay on disk and an external logrotate is not needed (one that moves the
/// file away is harmless: the next rotation or restart starts a new one).
///
/// Not thread-safe: platform/log.cc writes under its own lock.
class LogFile {
 public:
  virtual ~LogFile() = default;
  /// Appends `line` (one or more complete lines). Failures are swallowed: logging must not
  /// fail the caller; a full disk loses lines.
  virtual void write(std::string_view line) noexcept = 0;
  virtual const std::string& path() const = 0;
};

/// Opens (creating with exactly `mode` if missing) `path` for appending, in a trusted directory
/// (platform/files.h: root's or ours, not group/other-writable; EPERM naming the reason), never
/// through a symbolic link (ELOOP). A file already over `max_bytes` is rotated at once.
Result<std::unique_ptr<LogFile>> open_log_file(const std::string& path, unsigned mode,
                                               std::uint64_t max_bytes);

}  // namespace warren::platform
