#pragma once
/// `warren up` and `warren down`: the client daemon around one dataplane::Engine.
///
///   up:   recover a crashed run's journal ─► [runtime: fork (unless foreground), signals]
///         ─► PID file ─► [runtime: TUN with offloads, engine] ─► peers ─► [UAPI socket,
///         workers] ─► bring_up (addresses, MTU, link, routes, rules, DNS; journaled)
///         ─► [status socket, ready] ─► loop: signals (SIGHUP re-resolves the peers' endpoint
///         names), interface deletion, reconnect watch every second ─► rollback everything
///         ─► [UAPI socket, engine and TUN go]
///   ([...] is the shared runtime's part, runtime/runtime.h.)
///   down: SIGTERM to the daemon of the PID file, wait until it has exited (it rolls back
///         first), then replay whatever journal is left (a daemon that died by kill -9)
///
/// Files under `state_dir` (default /var/run/warren, 0700): IFNAME.pid, IFNAME.state (the
/// journal), IFNAME.resolv.conf (the resolv.conf backup).

#include <functional>
#include <optional>
#include <string>

#include "base/time.h"
#include "client/config.h"
#include "client/steps.h"
#include "wg/config.h"

namespace warren::client {

struct DaemonOptions {
  std::string state_dir = "/var/run/warren";
  bool foreground = false;
  /// A peer that sent nothing for this long is prodded (see reconnect.h).
  Duration dead_after = std::chrono::seconds{135};
  std::optional<DnsMethod> dns;  ///< unset = detect (WARREN_DNS_BACKEND in the command)
};

std::string pid_path(const DaemonOptions& o, const std::string& ifname);
std::string journal_path(const DaemonOptions& o, const std::string& ifname);

/// The PID of a live `warren up` daemon for `ifname`, or 0.
int running_daemon(const DaemonOptions& o, const std::string& ifname);

/// The whole configuration as one engine delta (replace_peers; endpoints from `resolved`,
/// one entry per peer, unset where a name did not resolve).
wg::ConfigDelta make_delta(const ClientConfig& config,
                           const std::vector<std::optional<net::Endpoint>>& resolved);

/// Runs `warren up` for a loaded config; returns the exit code (0 when the daemon is up, or,
/// in the foreground, when it stopped cleanly). Messages go to stderr.
int run_up(const ClientConfig& config, const DaemonOptions& options);

/// `warren down IFNAME`; returns the exit code.
int run_down(const std::string& ifname, const DaemonOptions& options);

}  // namespace warren::client
