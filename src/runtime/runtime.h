#pragma once
/// The daemon runtime shared by warren-wg, `warren server` and the client daemon (`warren up`,
/// `warren join`): everything about running a data plane that is not the program's own.
///
///   create():  fork-and-wait (background only; before any thread) ─► block SIGINT/SIGTERM/
///              SIGHUP (every later thread inherits the mask) ─► NOTIFY_SOCKET
///   start():   root check ─► WARREN_WORKERS, WARREN_OFFLOADS (settings.h) ─► "in use" probe
///              of the UAPI socket ─► TUN (one queue per worker, offloads) ─► [tun_created]
///              ─► link monitor ─► engine (UDP) ─► [configure] ─► bind UAPI socket ─► workers
///              ─► UAPI server ─► [started] ─► status socket (if the program has one)
///              ─► ready (report_ready()): parent exits 0, READY=1, stdio to /dev/null (or
///              the log file / kept for the journal: RuntimeOptions::log_file)
///   run():     event loop: SIGTERM/SIGINT stop; SIGHUP: RELOADING=1, [reload], READY=1;
///              the engine stopping (interface deleted, fatal error) stops; program timers
///   shutdown:  STOPPING=1 ─► status socket ─► [stopping] ─► UAPI socket (removed, so `wg`
///              stops seeing us before the TUN goes) ─► workers ─► [stopped] ─► engine, TUN
///
/// [hooks] are the program's: a failing hook fails start() with its message and everything
/// already started is undone in the shutdown order (`stopping` included, so it must cope with
/// a partial `started`). A failed start is reported once: to the waiting parent in the
/// background, on stderr in the foreground (report_failure()).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "control/status.h"
#include "dataplane/engine.h"
#include "platform/process.h"
#include "platform/service_notify.h"
#include "runtime/quic_transport.h"
#include "runtime/relay_policy.h"
#include "runtime/relay_transport.h"
#include "runtime/settings.h"
#include "runtime/stun_discovery.h"
#include "runtime/timers.h"
#include "runtime/transport_choice.h"
#include "runtime/udp_probe.h"

namespace warren::platform {
class EventLoop;
class LogFile;
class Notifier;
}  // namespace warren::platform
namespace warren::uapi {
class UapiServer;
}

namespace warren::runtime {

/// What a signal means to every daemon. SIGHUP is a reload (never a stop).
enum class SignalAction { kIgnore, kStop, kReload };
[[nodiscard]] SignalAction signal_action(platform::Signal s);

/// The start-up report to a waiting parent, and the service manager's notifications.
/// Either may be absent (foreground; no NOTIFY_SOCKET): then those calls do nothing.
class Readiness {
 public:
  Readiness() = default;
  Readiness(platform::StartupReport report, std::unique_ptr<platform::ServiceNotifier> notifier);

  /// True in the child of a fork-and-wait (stays true after ready()).
  bool background() const { return background_; }
  /// The parent exits 0; READY=1.
  void ready();
  /// The parent prints `message` and exits 1; in the foreground `message` goes to stderr.
  void failed(const std::string& message);
  /// RELOADING=1 (with MONOTONIC_USEC, as systemd's Type=notify-reload wants) / READY=1.
  void reloading();
  void reloaded();
  /// STOPPING=1.
  void stopping();

 private:
  void send(const std::string& state);
  platform::StartupReport report_;
  bool background_ = false;
  std::unique_ptr<platform::ServiceNotifier> notifier_;
};

/// Signal dispatch, apart from where signals come from (testable with any signal numbers).
class SignalDispatch {
 public:
  SignalDispatch(Readiness& readiness, std::function<void()> reload)
      : readiness_(readiness), reload_(std::move(reload)) {}
  /// Stop: remembers it (stop_requested()). Reload: RELOADING=1, the hook, READY=1.
  SignalAction dispatch(platform::Signal s);
  bool stop_requested() const { return stop_; }

 private:
  Readiness& readiness_;
  std::function<void()> reload_;
  bool stop_ = false;
};

struct Hooks {
  /// After the TUN exists, before the engine (server: the interface's addresses).
  std::function<Status(std::uint32_t ifindex)> tun_created;
  /// After the engine exists, before the UAPI socket and the workers (keys, peers, link up).
  std::function<Status(dataplane::Engine&)> configure;
  /// The status socket's content (`warren status`); none when unset. Runs on its thread.
  control::StatusProvider status;
  control::StatusServerOptions status_options;
  /// After the data plane runs, before readiness: the program's services (NAT, enrollment,
  /// journaled host set-up).
  std::function<Status()> started;
  /// First step of the shutdown: undo `started`. A failure makes the exit code 1.
  std::function<Status()> stopping;
  /// Last: the workers have stopped, the TUN is still there (final counters).
  std::function<void()> stopped;
  /// SIGHUP. Unset: logged and ignored.
  std::function<void()> reload;
  /// `warren server` with `[quic]`: the QUIC listener (runtime/quic_transport.h), added to the
  /// engine as a transport right after it is created (before `configure`); clients roam onto it by
  /// their authenticated packets.
  std::optional<QuicServerConfig> quic_server;
  /// `warren up` with a QuicEndpoint and Transport != wireguard: the QUIC connection to the
  /// server, and the choice between it and UDP (runtime/transport_choice.h), ticked once a
  /// second; `auto` probes the server's WireGuard port (runtime/udp_probe.h).
  struct QuicClient {
    QuicClientConfig config;
    TransportChoice::Mode mode = TransportChoice::Mode::kAuto;
    TransportChoice::Options choice;
  };
  std::optional<QuicClient> quic_client;
};

struct RuntimeOptions {
  Options data_plane;
  /// Fork and let the parent wait for readiness (wireguard-go style).
  bool background = false;
  /// Stop when the UAPI socket file is deleted (wireguard-go does; warren-wg follows).
  bool stop_when_socket_removed = false;
  /// Checked every second by the socket timer.
  Duration socket_check_interval = std::chrono::seconds(1);
  /// Background only: where the daemon logs once it is ready, at verbose, unless LOG_LEVEL is
  /// set (then, as wireguard-go, its stdout/stderr stay where the caller pointed them) or its
  /// stderr is the systemd journal (then it keeps logging there, with priorities). The
  /// directory is created (0750) if missing; the file is 0640 and capped (kLogFileMaxBytes,
  /// then PATH.1; see platform/log_output.h). Opened right
  /// after the fork, while stderr is still the terminal, which is told where the log is or
  /// why there is none. "" = as
  /// wireguard-go: stdio goes to /dev/null unless LOG_LEVEL is set.
  std::string log_file;
};

/// Size at which a daemon's log file (RuntimeOptions::log_file) is rotated to PATH.1.
inline constexpr std::uint64_t kLogFileMaxBytes = 4 << 20;

class Runtime {
 public:
  /// Forks when `background` (the parent never returns: it exits once the child is ready or
  /// failed), blocks the signals and opens NOTIFY_SOCKET. Call before any thread exists.
  /// Fails only when the fork itself fails; later problems are returned by start().
  [[nodiscard]] static Result<std::unique_ptr<Runtime>> create(RuntimeOptions options);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Everything up to readiness (see the top of this file). On failure all that started is
  /// undone; the caller adds its prefix and calls report_failure().
  [[nodiscard]] Status start(Hooks hooks);
  /// Reports readiness (parent exits, READY=1) and detaches stdio in the background.
  void report_ready();
  /// Reports a failed start (see Readiness::failed).
  void report_failure(const std::string& message);
  /// `fn` runs on the loop's thread every `interval` (first after one interval). Call before
  /// run() (usually after start()).
  void add_timer(Duration interval, std::function<void()> fn);
  /// The event loop until a stop; then the orderly shutdown. The exit code: 1 after a fatal
  /// engine error, a loop failure or a failing `stopping` hook, else 0.
  [[nodiscard]] int run();

  dataplane::Engine& engine() { return *engine_; }
  /// Mesh endpoint discovery, when WARREN_STUN or Options::stun_servers asked for it (else null).
  const StunDiscovery* stun() const { return stun_.get(); }
  /// `fn` runs on the loop's thread whenever `fd` is readable (level-triggered), until
  /// unwatch(fd) or the shutdown. From the `started` hook on (the loop exists then).
  [[nodiscard]] Status watch_readable(int fd, std::function<void()> fn);
  void unwatch(int fd);
  std::uint32_t ifindex() const { return ifindex_; }
  const Settings& settings() const { return settings_; }
  /// The QUIC transport when RuntimeOptions asked for one (else null); owned by the engine.
  QuicTransport* quic() { return quic_; }
  /// The engine's tag of the QUIC transport (0 when none).
  std::uint8_t quic_tag() const { return quic_tag_; }
  /// The QUIC transport's part of the status (nullopt without one). Any thread.
  std::optional<control::QuicTransportStatus> quic_status() const;

 private:
  explicit Runtime(RuntimeOptions options);
  [[nodiscard]] Status start_steps();
  /// Background with a log file: journal or the file (see RuntimeOptions::log_file).
  void open_log_output();
  /// Where log lines go once ready: a file's path, "journal", "stderr" or "none".
  std::string describe_log_output(bool background) const;
  /// WARREN_RELAY set: the relay transport and its policy (docs/MESH.md, "Relay path of a
  /// node"); a bad value fails start-up naming it.
  [[nodiscard]] Status add_relay_transport();
  /// The status socket's `relay_path` (any thread: the engine's snapshot is thread-safe).
  control::RelayPathStatus relay_path_status() const;
  /// Once a second: the policy's endpoint changes applied to the engine.
  void relay_tick();
  /// RuntimeOptions::quic_server / quic_client: the QUIC transport (and the client's probe).
  [[nodiscard]] Status add_quic_transport();
  /// Client, once a second: TransportChoice's decision applied to the server peer.
  void quic_tick();
  /// The carrier of each peer in the status ("wireguard", "quic", "relay").
  void describe_transports(control::InterfaceStatus& st) const;

  /// Undoes whatever start() did, in reverse. Returns false when `stopping` failed.
  bool shutdown();

  RuntimeOptions options_;
  Hooks hooks_;
  Settings settings_;
  Readiness readiness_;
  Status pending_;  ///< a problem create() met after the fork, returned by start()
  // Declaration order is the reverse of destruction: the engine refers to the clock, the
  // binds and the stop notifier; the UAPI server to the engine (its handler).
  std::unique_ptr<platform::TerminationSignals> signals_;
  std::unique_ptr<platform::Clock> clock_;
  std::unique_ptr<platform::BindFactory> binds_;
  std::unique_ptr<platform::Notifier> engine_stopped_;
  std::unique_ptr<StunDiscovery> stun_;  // the engine's STUN sink: outlives its workers
  std::unique_ptr<dataplane::Engine> engine_;
  RelayTransport* relay_ = nullptr;  // owned by the engine; stopped before it goes
  std::uint8_t relay_tag_ = 0;
  std::unique_ptr<RelayPolicy> relay_policy_;
  QuicTransport* quic_ = nullptr;  // owned by the engine; stopped before it goes
  std::uint8_t quic_tag_ = 0;
  std::unique_ptr<UdpProbe> quic_probe_;  // the engine's STUN sink (client, auto)
  std::unique_ptr<TransportChoice> quic_choice_;
  std::optional<net::Endpoint> quic_udp_endpoint_;  // the server peer's last UDP endpoint
  std::int64_t quic_seen_handshake_ = 0;            // last_handshake_sec seen by quic_tick
  std::optional<MonoTime> quic_last_udp_handshake_;
  bool quic_applied_ = false;  // the first decision was applied
  std::uint64_t quic_connects_seen_ = 0;
  std::unique_ptr<uapi::UapiServer> uapi_;
  std::unique_ptr<control::StatusServer> status_;
  std::unique_ptr<platform::EventLoop> loop_;
  TimerSet timers_;
  std::uint32_t ifindex_ = 0;
  bool started_hook_ran_ = false;
  bool shut_down_ = false;
  // Background only: the log output taken over at report_ready() (options_.log_file).
  std::unique_ptr<platform::LogFile> log_file_;
  bool log_to_journal_ = false;
  std::string log_destination_;  ///< describe_log_output(), set in create(); read by any thread
};

}  // namespace warren::runtime
