#pragma once
/// UapiServer: serves the cross-platform UAPI on <socket_dir>/<interface>.sock, the socket
/// `wg` and `wg-quick` look for (wireguard.com/xplatform "Interface").
///
///   client ──get=1/set=1──► connection thread ──RequestReader/parse_set──► Handler::set/get
///                           ◄──── key=value ... errno=N\n\n ─────────────────┘
///
/// * Several operations per connection, until the client closes it.
/// * `set` is all-or-nothing (see uapi/protocol.h): the Handler sees only complete, valid
///   deltas; a malformed request or a client that hangs up mid-request changes nothing.
/// * One thread per connection, at most `max_connections` at a time (more are closed at once);
///   a client silent for `read_timeout` is disconnected, so a hanging client holds one slot
///   for a bounded time and never blocks the others.
/// * stop() returns promptly: it wakes the accept thread and shuts down every connection,
///   then joins all threads (waiting only for a Handler call already in progress).
/// * Start-up as wireguard-go: the directory is created (0755); an existing socket that still
///   accepts connections means "in use by another process"; a stale one is replaced; the new
///   socket is srwx------ (bound under umask 077). stop() removes it if it is still ours.

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"
#include "platform/control_socket.h"
#include "uapi/protocol.h"
#include "wg/config.h"
#include "wg/device.h"

namespace warren::uapi {

/// The device side of the UAPI. The server serialises calls: at most one Handler call runs at a
/// time, on one of the server's threads. Exceptions escaping a call are answered with EIO.
class Handler {
 public:
  virtual ~Handler() = default;
  /// Applies a whole, already validated delta, or nothing. A non-zero (positive) errno_value is
  /// sent to the client negated (EINVAL => errno=-22, EADDRINUSE for a busy listen_port =>
  /// errno=-98, ...). The message is logged: it must not contain key material.
  virtual Status set(const wg::ConfigDelta& delta) = 0;
  /// The current state, for format_get.
  virtual wg::DeviceSnapshot get() = 0;
};

inline constexpr std::string_view kDefaultSocketDir = "/var/run/wireguard";

struct ServerOptions {
  /// A connection on which nothing arrives for this long is closed.
  std::chrono::milliseconds read_timeout{30'000};
  /// A reply the client does not read for this long ends the connection.
  std::chrono::milliseconds write_timeout{10'000};
  std::size_t max_connections = 16;
  std::size_t max_request_bytes = kMaxRequestBytes;
};

/// Thread-safety: bind/start/stop/socket_file_present belong to the owning thread;
/// connection_count() may be called from anywhere. The Handler must outlive the server.
class UapiServer {
 public:
  UapiServer(std::string interface_name, Handler& handler,
             const std::string& socket_dir = std::string(kDefaultSocketDir),
             ServerOptions options = {});
  ~UapiServer();
  UapiServer(const UapiServer&) = delete;
  UapiServer& operator=(const UapiServer&) = delete;

  /// Creates the socket (directory, stale-socket replacement, permissions) without starting any
  /// thread, so a daemon can bind before it reports success and start serving later. EADDRINUSE
  /// with "interface NAME is already in use by another process" when a live process serves
  /// the path; EINVAL for an interface name that cannot be a file name. Idempotent.
  [[nodiscard]] Status bind();

  /// bind() if needed, then serves on background threads until stop().
  [[nodiscard]] Status start();

  /// Stops accepting, disconnects every client, joins all threads and removes the socket file
  /// if it still is ours. Idempotent; the destructor calls it.
  void stop();

  const std::string& socket_path() const { return socket_path_; }

  /// False once the socket file has been deleted or replaced by somebody else (or before
  /// bind()). wireguard-go exits when its socket is deleted; the daemon polls this to do the
  /// same.
  bool socket_file_present() const;

  /// Connections being served right now.
  std::size_t connection_count() const;

 private:
  struct Connection {
    platform::ControlConnection conn;
    std::thread thread;
    bool done = false;  // guarded by mutex_; set as the thread's last action
  };

  void accept_loop();
  void serve(Connection& c);
  /// Handles one request; false when the connection must be closed.
  bool handle(const Request& request, platform::ControlConnection& conn);
  std::string run_get();
  std::string run_set(const std::string& body);
  void reap_finished();

  std::string interface_name_;
  std::string socket_path_;
  Handler& handler_;
  ServerOptions options_;

  std::unique_ptr<platform::ControlListener> listener_;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  std::list<Connection> connections_;  // guarded by mutex_; nodes never move while running

  std::mutex handler_mutex_;  // serialises Handler calls
};

}  // namespace warren::uapi
