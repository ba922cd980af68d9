#pragma once
/// Local control sockets: a stream listener at a filesystem path (the UAPI socket
/// /var/run/wireguard/<if>.sock, and later the `warren status` socket) and its connections.
///
///   listen_unix(path) ──► ControlListener ──accept()──► ControlConnection ──read/write_all
///   connect_unix(path) ─────────────────────────────────► ControlConnection   (clients, tests)
///
/// Every wait has a timeout or an interrupt, so a server built on these never hangs on a silent
/// client and can always be stopped promptly. (Linux: AF_UNIX SOCK_STREAM; see
/// linux/control_socket_linux.cc.)

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"
#include "platform/unique_fd.h"

namespace warren::platform {

/// One connected stream. Owned by one thread, which calls read()/write_all()/close();
/// shutdown() may be called from any other thread while the owner is blocked, and makes the
/// owner's pending and later calls return (end of file / EPIPE). shutdown() and close() are
/// serialised, so shutdown() never touches a descriptor number that close() has released.
class ControlConnection {
 public:
  ControlConnection() = default;
  /// Takes a connected stream socket. The connection puts it in non-blocking mode.
  explicit ControlConnection(UniqueFd fd);
  ControlConnection(ControlConnection&& o) noexcept;
  ControlConnection& operator=(ControlConnection&& o) noexcept;
  ~ControlConnection() = default;

  bool valid() const { return fd_.valid(); }

  /// Reads up to out.size() bytes, waiting at most `timeout` for the first one. Returns the
  /// count, 0 at end of file (also after shutdown()), ETIMEDOUT when nothing arrived in time.
  Result<std::size_t> read(std::span<char> out, std::chrono::milliseconds timeout);

  /// Writes all of `data`, waiting at most `timeout` each time the peer's buffer is full
  /// (ETIMEDOUT). EPIPE when the peer has gone or after shutdown(). Never raises SIGPIPE.
  Status write_all(std::span<const char> data, std::chrono::milliseconds timeout);

  /// The connecting process's user id (SO_PEERCRED), or nullopt if it cannot be read.
  std::optional<std::uint32_t> peer_uid() const;
  /// Whether the connecting process has group `gid`, as its primary group (SO_PEERCRED) or
  /// among its supplementary groups (SO_PEERGROUPS, as they were at connect()). False when
  /// they cannot be read.
  bool peer_in_group(std::uint32_t gid) const;

  /// Ends both directions without releasing the descriptor (wakes a blocked owner).
  void shutdown() noexcept;
  /// Releases the descriptor. Idempotent.
  void close() noexcept;

 private:
  std::mutex close_mutex_;  // orders shutdown() against close()
  UniqueFd fd_;
};

struct ListenOptions {
  unsigned directory_mode = 0755;  ///< missing parent directories are created with this mode
  unsigned socket_mode = 0700;     ///< srwx------: only the owner (root) may connect
  /// Set: the socket file's group becomes this one after bind() (then socket_mode, which may
  /// then give the group access: bind() itself always runs under umask 077).
  std::optional<std::uint32_t> socket_group;
  int backlog = 64;
};

/// A listening socket bound to a path, which it removes when closed if the path still names
/// the socket it bound. accept() runs on one thread; interrupt() and path_is_ours() may be
/// called from any thread.
class ControlListener {
 public:
  ControlListener(UniqueFd listen_fd, UniqueFd wake_fd, std::string path, std::uint64_t device,
                  std::uint64_t inode);
  ~ControlListener();
  ControlListener(const ControlListener&) = delete;
  ControlListener& operator=(const ControlListener&) = delete;

  const std::string& path() const { return path_; }

  /// Waits for the next client. ECANCELED once interrupt() has been called (then and for every
  /// later call). Transient failures (EMFILE, ENFILE, ENOBUFS, ENOMEM) are returned as they are;
  /// callers should back off briefly before retrying. Out of descriptors (EMFILE/ENFILE), the
  /// waiting client is still taken off the queue and closed at once (through a descriptor held
  /// in reserve for that), so it sees the connection end instead of hanging in the backlog.
  Result<ControlConnection> accept();

  /// Makes a blocked accept() and all later ones return ECANCELED. Thread-safe, idempotent.
  void interrupt() noexcept;

  /// True while `path()` exists and is the very socket this listener bound (same device and
  /// inode). False once somebody deleted or replaced it: wireguard-go exits then, and the
  /// daemon can poll this to do the same.
  bool path_is_ours() const;

  /// Stops listening and unlinks path() if path_is_ours(). Idempotent; also done on destruction.
  /// Must not run while another thread is inside accept(): interrupt() and join it first.
  void close() noexcept;

 private:
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  std::string path_;
  std::uint64_t device_;
  std::uint64_t inode_;
  UniqueFd spare_fd_;  // /dev/null, given up to refuse a client when out of descriptors
};

/// Binds a listening stream socket at `path`:
///   * creates missing parent directories (options.directory_mode);
///   * if `path` exists: a non-socket is left alone (EEXIST); a socket somebody still accepts
///     on means EADDRINUSE ("in use by another process"); a stale socket (connection refused)
///     is unlinked and replaced;
///   * the socket file is created with options.socket_mode (and under umask 077 while binding,
///     so it is never more open than that, even for an instant);
///   * ENAMETOOLONG if `path` does not fit a socket address.
Result<std::unique_ptr<ControlListener>> listen_unix(const std::string& path,
                                                     const ListenOptions& options = {});

/// Connects to the stream socket at `path` without blocking: ECONNREFUSED for a stale socket,
/// ENOENT if there is none, EAGAIN if the listener's backlog is full.
Result<ControlConnection> connect_unix(const std::string& path);

}  // namespace warren::platform
