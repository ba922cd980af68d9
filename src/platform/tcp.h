#pragma once
/// TCP streams with deadlines: the enrollment control channel (TLS on top, src/control) and the
/// local metrics endpoint.
///
///   tcp_listen("0.0.0.0:7443") ──► TcpListener ──accept()──► TcpConnection
///   tcp_connect(host, port, deadline) ─────────────────────► TcpConnection
///
/// Sockets are non-blocking and every wait is bounded by a deadline, so a silent or trickling
/// peer costs one thread for a bounded time. A TLS library that does its own socket I/O gets
/// the descriptor through native_handle() (OpenSSL's SSL_set_fd) and waits through wait().
/// Errors are warren::Error with the errno value (ETIMEDOUT at a deadline, ECANCELED after
/// interrupt()). (Linux: linux/tcp_linux.cc.)

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "net/ip_address.h"
#include "platform/unique_fd.h"

namespace warren::platform {

using StreamDeadline = std::chrono::steady_clock::time_point;

/// One connected TCP stream. Owned by one thread; shutdown() may be called from any other
/// thread while the owner is blocked and makes the owner's calls fail or see end of stream.
class TcpConnection {
 public:
  enum class Ready { kRead, kWrite };

  TcpConnection() = default;
  /// Takes a connected stream socket and puts it in non-blocking mode.
  explicit TcpConnection(UniqueFd fd);
  ~TcpConnection() = default;
  TcpConnection(TcpConnection&& o) noexcept;
  TcpConnection& operator=(TcpConnection&& o) noexcept;

  bool valid() const { return fd_.valid(); }
  /// The descriptor, for a library that performs the socket I/O itself. Stays owned here.
  int native_handle() const { return fd_.get(); }

  /// Waits until the stream is readable / writable, or has an error or hang-up to report on
  /// the next call. ETIMEDOUT when the deadline passes first.
  warren::Status wait(Ready what, StreamDeadline deadline);
  /// Reads at most out.size() bytes, waiting until the deadline for the first: the count, or 0
  /// at end of stream.
  warren::Result<std::size_t> read_some(std::span<char> out, StreamDeadline deadline);
  /// Reads until `terminator` has arrived, `max_bytes` are read or the stream ends; returns
  /// what was read (possibly without the terminator). ETIMEDOUT at the deadline.
  warren::Result<std::string> read_until(std::string_view terminator, std::size_t max_bytes,
                                         StreamDeadline deadline);
  /// Writes all of `data` by the deadline. Never raises SIGPIPE (EPIPE instead).
  warren::Status write_all(std::string_view data, StreamDeadline deadline);

  /// Ends both directions without releasing the descriptor (wakes a blocked owner). Any thread.
  void shutdown() noexcept;
  /// Releases the descriptor. Idempotent.
  void close() noexcept;

 private:
  std::mutex close_mutex_;  // orders shutdown() against close()
  UniqueFd fd_;
};

/// Resolves `host` (a name or an address literal), then connects to each address in
/// getaddrinfo's order until one answers; each attempt gets an equal share of the time left
/// before the deadline, so an address that never answers does not use up the others' time.
/// The connection has TCP_NODELAY set. The error has the code of the last failure and names
/// every address with its failure (EAI_* resolution failures are reported as EHOSTUNREACH
/// with the resolver's message).
warren::Result<TcpConnection> tcp_connect(std::string_view host, std::uint16_t port,
                                          StreamDeadline deadline);

/// A connection taken from a listener without waiting, with the address it came from.
struct AcceptedTcp {
  TcpConnection connection;
  net::IpAddress peer;  ///< IPv4-mapped IPv6 addresses come back as IPv4
};

/// A listening TCP socket. accept() runs on one thread; interrupt() on any.
class TcpListener {
 public:
  TcpListener(UniqueFd listen_fd, UniqueFd wake_read, UniqueFd wake_write, std::uint16_t port);
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  /// The bound port (useful after listening on port 0).
  std::uint16_t port() const { return port_; }
  /// Waits for the next connection (non-blocking, close-on-exec). ECANCELED once interrupt()
  /// was called, then and for every later call. Transient failures (EMFILE, ENOBUFS, ...) are
  /// returned as they are; callers back off briefly before retrying.
  warren::Result<TcpConnection> accept();
  /// Makes a blocked accept() and all later ones return ECANCELED. Thread-safe, idempotent.
  void interrupt() noexcept;

  /// For an event loop: the listening descriptor (readable when a connection is pending) and
  /// a non-blocking accept. EAGAIN when nothing is pending; ECONNABORTED and friends as they
  /// are (try again); EMFILE/ENFILE/ENOBUFS/ENOMEM mean "out of resources, back off".
  int native_handle() const { return fd_.get(); }
  warren::Result<AcceptedTcp> try_accept();

 private:
  UniqueFd fd_;
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  std::uint16_t port_;
};

/// Binds and listens on "ip:port" or "[ipv6]:port" (an address literal; port 0 picks a free
/// port). EINVAL with a message when `address` is not of that form. "[::]:PORT" is dual-stack
/// (IPV6_V6ONLY off: IPv4 clients arrive as IPv4-mapped addresses, which try_accept reports
/// as IPv4); any other IPv6 address listens for IPv6 only.
warren::Result<std::unique_ptr<TcpListener>> tcp_listen(std::string_view address);

/// Makes the process ignore SIGPIPE (idempotent). A TLS library writes with write(2), which
/// raises SIGPIPE when the peer has gone; a peer hanging up must never kill the process.
void ignore_sigpipe();

}  // namespace warren::platform
