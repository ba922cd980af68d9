// warren-wg: the userspace WireGuard daemon, a drop-in for `wireguard-go IFNAME`.
//
//   warren-wg [-f|--foreground] INTERFACE-NAME
//
// Everything about running the data plane — fork-and-wait, signals, the "in use" probe, the
// TUN with its offloads, workers, link monitor, engine, UAPI socket, sd_notify, the event loop
// and the orderly shutdown — is the shared runtime's (runtime/runtime.h). This file keeps what
// is warren-wg's own: the command line (as wireguard-go's) and the stats line at debug level.
//
// Like wireguard-go, it stops when its UAPI socket file is deleted. SIGHUP is logged and
// ignored: all configuration comes through the UAPI (`wg setconf`), there is nothing to reload.
//
// Environment as wireguard-go: LOG_LEVEL=silent|error|verbose|debug, WG_PROCESS_FOREGROUND=1.
// WARREN_STUN=ADDR:PORT[,...] turns on mesh endpoint discovery (runtime/stun_discovery.h).
// WARREN_WORKERS=N overrides the worker count (default: one per CPU); WARREN_OFFLOADS=all|off|
// tun,gso,gro picks the kernel offloads (platform/offloads.h); a bad value of either is a
// start-up error. NOTIFY_SOCKET (systemd Type=notify, with -f) gets READY=1 and STOPPING=1.

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "dataplane/engine.h"
#include "platform/log.h"
#include "runtime/runtime.h"
#include "wg/constants.h"

namespace {

using namespace warren;

constexpr const char* kVersion = "0.1.0";
constexpr std::size_t kMaxInterfaceName = 15;  // IFNAMSIZ - 1

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

int run(const std::string& name, bool foreground) {
  runtime::RuntimeOptions options;
  options.data_plane.interface = name;
  options.data_plane.mtu = wg::kDefaultMtu;
  options.background = !foreground;
  options.stop_when_socket_removed = true;
  auto created = runtime::Runtime::create(std::move(options));
  if (!created) {
    std::fprintf(stderr, "Failed to start the daemon: %s\n", created.message().c_str());
    return 1;
  }
  runtime::Runtime& rt = **created;

  std::string last_stats;
  const bool debug = platform::log_enabled(platform::LogLevel::kDebug);
  runtime::Hooks hooks;
  hooks.stopped = [&] {
    if (debug)
      log_stats(rt.engine(), last_stats);
  };
  // hooks.reload stays unset: SIGHUP is logged and ignored (see the top of this file).
  if (auto s = rt.start(std::move(hooks)); !s) {
    std::string m = s.message();
    if (!m.empty())
      m[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(m[0])));
    rt.report_failure(m);
    return 1;
  }
  rt.report_ready();
  if (debug)
    rt.add_timer(std::chrono::seconds(1), [&] { log_stats(rt.engine(), last_stats); });
  const int rc = rt.run();
  platform::log_verbose("Shut down");
  return rc;
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

  return run(name, foreground);
}
