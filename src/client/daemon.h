#pragma once
/// `warren up` and `warren down`: the client daemon around one dataplane::Engine.
///
///   up:   recover a crashed run's journal ─► [runtime: fork (unless foreground), signals]
///         ─► PID file ─► [runtime: TUN with offloads, engine] ─► peers ─► [UAPI socket,
///         workers] ─► bring_up (addresses, MTU, link, routes, rules, DNS; journaled)
///         ─► [status socket, ready] ─► loop: signals (SIGHUP re-resolves the peers' endpoint
///         names), interface deletion, reconnect watch every second, `warren pause`/`resume`
///         and link down/up from outside (standby.h) ─► rollback everything
///         ─► [UAPI socket, engine and TUN go]
///   ([...] is the shared runtime's part, runtime/runtime.h.)
///   down: SIGTERM to the daemon of the PID file, wait until it has exited (it rolls back
///         first), then replay whatever journal is left (a daemon that died by kill -9)
///   cleanup: replay the journal of every interface whose daemon is not running (at boot:
///         all of them; a power loss left resolv.conf pointing into the tunnel)
///
/// Files under `state_dir` (default /var/lib/warren, 0700, persistent: /etc/resolv.conf is on
/// disk, so what restores it must be too): IFNAME.state (the journal), IFNAME.resolv.conf (the
/// resolv.conf backup). Under `run_dir` (default /var/run/warren, gone at reboot with the
/// daemon it names): IFNAME.pid. Under `log_dir` (default /var/log/warren, 0750): IFNAME.log
/// (and IFNAME.log.1), the log of a daemon in the background outside the journal.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/time.h"
#include "client/config.h"
#include "client/steps.h"
#include "wg/config.h"

namespace warren::client {

struct DaemonOptions {
  std::string state_dir = "/var/lib/warren";  ///< journal and resolv.conf backup (persistent)
  std::string run_dir = "/var/run/warren";    ///< PID file (runtime only)
  /// The backgrounded daemon's log, IFNAME.log (unless its stderr is the journal; see
  /// runtime::RuntimeOptions::log_file). Unused in the foreground: stderr is the log there.
  std::string log_dir = "/var/log/warren";
  bool foreground = false;
  /// A peer that sent nothing for this long is prodded (see reconnect.h).
  Duration dead_after = std::chrono::seconds{135};
  std::optional<DnsMethod> dns;  ///< unset = detect (WARREN_DNS_BACKEND in the command)
  /// Members of this group may `warren pause`/`resume` (run_up sets it from the config's
  /// `#@warren ControlGroup`); unset = root only.
  std::optional<std::uint32_t> control_group;
};

std::string pid_path(const DaemonOptions& o, const std::string& ifname);
std::string journal_path(const DaemonOptions& o, const std::string& ifname);
std::string log_path(const DaemonOptions& o, const std::string& ifname);

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

/// Replays the journal a dead daemon of `ifname` left (kill -9, power loss), if any; messages
/// on stderr. False when it could not be restored (the journal is kept). `up`, `down` and `join`
/// call it first; the caller has checked that no daemon of `ifname` runs.
bool recover(const DaemonOptions& options, const std::string& ifname);

/// `warren cleanup (--all | IFNAME...)`: recover() for each interface (all: every journal in
/// state_dir) whose daemon is not running; a running one is left alone. Returns the exit code
/// (0: nothing left to restore).
int run_cleanup(const std::vector<std::string>& ifnames, bool all, const DaemonOptions& options);

}  // namespace warren::client
