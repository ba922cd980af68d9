// warren-wg: the userspace WireGuard daemon, a drop-in for `wireguard-go IFNAME`.
//
//   warren-wg [-f|--foreground] INTERFACE-NAME
//
// Start-up order (protocol doc §2.1, wg-quick expects the socket when we return):
//   fork (unless foreground; before any thread exists)
//   └─ child: block signals ─► "in use" probe of the UAPI socket (before touching the TUN)
//             ─► create TUN (one queue per worker, MTU 1420) ─► link monitor ─► engine (UDP)
//             ─► bind UAPI socket ─► start workers + UAPI server ─► report "ready" (parent
//             exits 0)
//   then wait for SIGINT/SIGTERM, interface deletion or deletion of the socket file, and
//   shut down: UAPI server first (removes the socket), then the workers.
//
// Environment as wireguard-go: LOG_LEVEL=silent|error|verbose|debug, WG_PROCESS_FOREGROUND=1.
// WARREN_WORKERS=N overrides the worker count (default: one per CPU).
// WARREN_OFFLOADS=all|off|tun,gso,gro picks the kernel offloads (platform/offloads.h); a bad
// value is a start-up error.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "crypto/random.h"
#include "dataplane/engine.h"
#include "dataplane/workers.h"
#include "platform/clock.h"
#include "platform/control_socket.h"
#include "platform/event_loop.h"
#include "platform/log.h"
#include "platform/netlink.h"
#include "platform/notifier.h"
#include "platform/offloads.h"
#include "platform/process.h"
#include "platform/tun_device.h"
#include "platform/udp.h"
#include "uapi/server.h"
#include "wg/constants.h"

namespace {

using namespace warren;

constexpr const char* kVersion = "0.1.0";
constexpr std::size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1
constexpr auto kSocketCheckInterval = std::chrono::seconds(1);

void print_usage(const char* argv0) {
  std::printf("Usage: %s [-f/--foreground] INTERFACE-NAME\n", argv0);
}

void print_version() {
  std::printf(
      "warren-wg v%s\n\n"
      "Userspace WireGuard-compatible daemon for Linux.\n"
      "Speaks the cross-platform UAPI on /var/run/wireguard/INTERFACE-NAME.sock.\n",
      kVersion);
}

// The UAPI server needs its Handler when it binds the socket, which happens before the engine
// exists (so that a second daemon fails before it attaches to the TUN). The server serves no
// request before start(), which comes after the engine is set.
class EngineHandler final : public uapi::Handler {
 public:
  void set_engine(dataplane::Engine* e) { engine_ = e; }
  wg::ApplyError set(const wg::ConfigDelta& delta) override {
    if (!engine_)
      return wg::ApplyError{EIO, "device not ready"};
    return engine_->apply(delta);
  }
  wg::DeviceSnapshot get() override { return engine_ ? engine_->snapshot() : wg::DeviceSnapshot{}; }

 private:
  dataplane::Engine* engine_ = nullptr;
};

// LOG_LEVEL=debug: one line of the engine's counters and every non-zero drop counter (the
// operator's and the flood tests' view of what was received and why it was dropped). Numbers
// only: nothing here can carry key material. Logged when something changed, and at shutdown.
void log_stats(dataplane::Engine& engine, std::string& last) {
  const auto c = engine.counters();
  std::string line = "stats: udp_received=" + std::to_string(c.udp_received) +
                     " udp_sent=" + std::to_string(c.udp_sent) +
                     " tun_read=" + std::to_string(c.tun_read) +
                     " tun_written=" + std::to_string(c.tun_written) +
                     " send_errors=" + std::to_string(c.send_errors) + " drops:";
  std::uint64_t total = 0;
  for (int i = 1; i < static_cast<int>(wg::Drop::kCount); ++i) {
    const auto d = static_cast<wg::Drop>(i);
    const std::uint64_t n = engine.device().drop_count(d);
    total += n;
    if (n != 0)
      line += std::string(" ") + wg::drop_name(d) + "=" + std::to_string(n);
  }
  // Handshake messages dropped on arrival by a full lane of a worker's handshake queue.
  for (std::size_t l = 0; l < wg::kHandshakeLanes; ++l) {
    total += c.handshakes_dropped[l];
    if (c.handshakes_dropped[l] != 0) {
      line += std::string(" queue_full_") + wg::lane_name(static_cast<wg::Lane>(l)) + "=" +
              std::to_string(c.handshakes_dropped[l]);
    }
  }
  line += " total=" + std::to_string(total) +
          " handshakes_handled=" + std::to_string(c.handshakes_handled);
  if (line != last) {
    platform::log_debug("%s", line.c_str());
    last = std::move(line);
  }
}

std::string tun_error_message(const std::string& name, const platform::Status& s) {
  std::string m = "Failed to create TUN device " + name + ": " + s.message();
  if (s.error == EPERM || s.error == EACCES) {
    m += " (run as root or with CAP_NET_ADMIN)";
  } else if (s.error == ENOENT || s.error == ENODEV || s.error == ENXIO) {
    m += " (is the tun driver available? /dev/net/tun is needed)";
  } else if (s.error == EBUSY) {
    m += " (the interface is in use by another program)";
  }
  return m;
}

int run(const std::string& name, bool foreground, platform::StartupReport& report) {
  auto fail = [&](const std::string& message) {
    if (report.active()) {
      report.report_error(message);  // the waiting parent prints it
    } else if (platform::log_enabled(platform::LogLevel::kError)) {
      platform::log_error("%s", message.c_str());
    } else {
      std::fprintf(stderr, "%s\n", message.c_str());  // silent log level: still say why
    }
    return 1;
  };

  // Signals arrive through a descriptor; blocked here so every later thread inherits the mask.
  std::unique_ptr<platform::TerminationSignals> signals;
  try {
    signals = std::make_unique<platform::TerminationSignals>();
  } catch (const std::exception& e) {
    return fail(std::string("Failed to set up signal handling: ") + e.what());
  }

  if (!platform::has_net_admin()) {
    return fail("Creating interface " + name +
                " requires root or CAP_NET_ADMIN (Operation not permitted)");
  }

  EngineHandler handler;
  uapi::UapiServer server(name, handler);
  // A live daemon for this name answers on its socket: refuse before attaching to the TUN,
  // which would otherwise hand us queues of the other daemon's multi-queue device. (The UAPI
  // bind below repeats the check authoritatively.)
  if (auto probe = platform::connect_unix(server.socket_path());
      probe.ok() || probe.would_block()) {
    return fail("Failed to open UAPI socket: interface " + name +
                " is already in use by another process (" + server.socket_path() + ")");
  }

  const platform::OffloadsParse offloads = platform::offloads_from_environment();
  if (!offloads.ok) {
    return fail("Invalid WARREN_OFFLOADS: unknown offload \"" + offloads.bad_word +
                "\" (use all, off, or a comma-separated list of tun, gso, gro)");
  }

  const std::size_t workers = dataplane::worker_count_from_environment();
  auto tun = platform::create_tun(platform::TunOptions{
      .name = name, .queues = workers, .vnet_hdr = offloads.offloads.tun, .mtu = wg::kDefaultMtu});
  if (!tun.ok())
    return fail(tun_error_message(name, tun.status()));
  platform::log_verbose("Offloads requested: %s; TUN offloads in use: %s",
                        offloads.offloads.to_string().c_str(),
                        tun.value->offloads().to_string().c_str());
  const std::uint32_t ifindex = tun.value->ifindex();

  auto monitor = platform::open_link_monitor(ifindex);
  if (!monitor.ok())
    return fail("Failed to open link monitor: " + monitor.message());

  platform::SystemClock clock;
  auto binds = platform::make_system_bind_factory();
  auto created = dataplane::Engine::create(
      std::move(tun.value), *binds, clock, crypto::SystemRandom::instance(),
      std::move(monitor.value), dataplane::EngineOptions{.offloads = offloads.offloads});
  if (!created.ok())
    return fail("Failed to bind UDP socket: " + created.message());
  dataplane::Engine& engine = *created.value;

  // The socket appears last, so whoever sees it (wg, scripts polling for it) also finds the
  // interface and the UDP port in place.
  if (uapi::ServerError e = server.bind())
    return fail("Failed to open UAPI socket: " + e.message);

  platform::Notifier engine_stopped;
  engine.set_on_stop([&](dataplane::StopReason) { engine_stopped.set(); });
  handler.set_engine(&engine);

  auto loop_result = platform::make_event_loop();
  if (!loop_result.ok())
    return fail("Failed to create event loop: " + loop_result.message());
  platform::EventLoop& loop = *loop_result.value;

  try {
    engine.start();
  } catch (const std::exception& e) {
    return fail(std::string("Failed to start workers: ") + e.what());
  }
  if (uapi::ServerError e = server.start()) {
    engine.stop();
    return fail("Failed to start UAPI listener: " + e.message);
  }

  platform::log_verbose("Device started (%zu worker(s), UDP port %u)", engine.worker_count(),
                        static_cast<unsigned>(engine.port()));
  report.report_ready();
  if (!foreground) {
    // wireguard-go keeps stdout/stderr only when LOG_LEVEL asks for logs.
    const char* level = std::getenv("LOG_LEVEL");
    const bool keep = level && platform::log_level() != platform::LogLevel::kSilent;
    (void)platform::redirect_stdio(keep);
  }

  bool done = false;
  if (!loop.add(signals->poll_fd(), platform::kReadable,
                [&](std::uint32_t) {
                  if (auto sig = signals->read()) {
                    platform::log_verbose("Received signal %d, shutting down", *sig);
                    done = true;
                  }
                })
           .ok() ||
      !loop.add(engine_stopped.fd(), platform::kReadable,
                [&](std::uint32_t) {
                  engine_stopped.clear();
                  platform::log_verbose("Shutting down: %s",
                                        dataplane::stop_reason_name(engine.stop_reason()));
                  done = true;
                })
           .ok()) {
    server.stop();
    engine.stop();
    return 1;
  }
  std::string last_stats;
  const bool debug = platform::log_enabled(platform::LogLevel::kDebug);
  // The loop has one timer: the socket check, which also logs the counters at debug level.
  std::function<void()> check_socket = [&] {
    if (debug)
      log_stats(engine, last_stats);
    if (!server.socket_file_present()) {
      platform::log_verbose("UAPI socket %s was removed, shutting down",
                            server.socket_path().c_str());
      done = true;
      return;
    }
    (void)loop.set_timer(clock.now().mono + kSocketCheckInterval, check_socket);
  };
  (void)loop.set_timer(clock.now().mono + kSocketCheckInterval, check_socket);

  while (!done) {
    auto r = loop.run_once(kNoTimeout);
    if (!r.ok()) {
      platform::log_error("Event loop failed: %s", r.message().c_str());
      break;
    }
  }
  server.stop();  // removes the socket first, so `wg` stops seeing us before the TUN goes
  engine.stop();
  if (debug)
    log_stats(engine, last_stats);
  if (engine.tun().vnet_hdr()) {
    const platform::TunOffloadStats st = engine.tun().offload_stats();
    platform::log_verbose(
        "TUN offloads: read %llu super-packets (%llu packets), wrote %llu (%llu packets), "
        "dropped %llu malformed",
        static_cast<unsigned long long>(st.super_packets_read),
        static_cast<unsigned long long>(st.segments_read),
        static_cast<unsigned long long>(st.super_packets_written),
        static_cast<unsigned long long>(st.segments_written),
        static_cast<unsigned long long>(st.malformed_dropped));
  }
  platform::log_verbose("Shut down");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool foreground = false;
  std::string name;
  if (argc == 2 &&
      (std::string_view(argv[1]) == "--version" || std::string_view(argv[1]) == "-v")) {
    print_version();
    return 0;
  }
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    print_usage(argv[0]);
    return 0;
  }
  if (argc == 3 &&
      (std::string_view(argv[1]) == "-f" || std::string_view(argv[1]) == "--foreground")) {
    foreground = true;
    name = argv[2];
  } else if (argc == 2 && argv[1][0] != '-') {
    name = argv[1];
  } else {
    print_usage(argv[0]);
    return 1;
  }
  if (const char* env = std::getenv("WG_PROCESS_FOREGROUND"); env && std::string_view(env) == "1") {
    foreground = true;
  }
  if (name.empty() || name.size() > kMaxInterfaceName || name == "." || name == ".." ||
      name.find('/') != std::string::npos) {
    std::fprintf(stderr, "Invalid interface name: %s\n", name.c_str());
    return 1;
  }

  platform::log_configure(platform::log_level_from_env(), name);

  platform::StartupReport report;
  if (!foreground) {
    auto d = platform::daemonize();  // the parent exits inside, once the child reports
    if (!d.ok()) {
      std::fprintf(stderr, "Failed to start the daemon: %s\n", d.message().c_str());
      return 1;
    }
    report = std::move(d.value);
  }
  return run(name, foreground, report);
}
