#pragma once
/// Live reload of the server's configuration (SIGHUP, `warren server reload`): which changes
/// apply to a running server and which wait for a restart. Pure: no I/O, so every case is a
/// unit test (tests/unit/server/reload_test.cc).
///
///   running config ─┐
///                   ├─► plan_reload ─► ReloadPlan{ next config, applied[], kept[], what moved }
///   loaded config ──┘       (the caller applies: registry, NAT, metrics, log level, clients)
///
/// Live:    [pool] (reservations, strategy, lease_idle_time, quarantine), [clients] routes, dns
///          and persistent_keepalive, interface.mtu (the server's TUN and its clients),
///          clients.client_to_client (the device's isolation; IPv6 forwarding), [nat],
///          [metrics], [log] level, enrollment.public_endpoint / control_endpoint (in new
///          invites and enrollments).
/// Kept:    interface.name, listen_port, private_key_file, address_v4/v6 (the prefixes),
///          enrollment.listen, storage.database, [quic] (listen; adding or removing the
///          table). A change to one of these is reported (in the log and the reload command's
///          answer) and the running value stays in `next`.
///
/// All-or-nothing: the caller parses the new file first; a file that does not parse changes
/// nothing (the ConfigError's file:line:key message is the answer). A changed reservation of a
/// client that holds other addresses takes effect when that client re-joins (the registry's
/// allocation rule); the plan says so.

#include <string>
#include <vector>

#include "server/config.h"

namespace warren::server {

struct ReloadPlan {
  ServerConfig next;                 ///< the config to run with from now on
  std::vector<std::string> applied;  ///< "pool.reservations.alice: 10.8.0.10 -> 10.8.0.11"
  std::vector<std::string> kept;     ///< "interface.listen_port: 51820 -> 51821 needs a restart"
  bool pool_changed = false;         ///< rebuild the registry (reservations, strategy, times)
  bool clients_changed = false;      ///< what enrolled clients are told changed: push it
  bool mtu_changed = false;          ///< the server's TUN MTU
  bool host_changed = false;         ///< NAT, forwarding: redo the journaled host steps
  bool isolation_changed = false;    ///< client_to_client: the device's peer isolation
  bool metrics_changed = false;      ///< restart the metrics listener
  bool log_changed = false;
  bool changed() const { return !applied.empty() || !kept.empty(); }
};

/// Compares the running config with the newly loaded one (both already valid).
[[nodiscard]] ReloadPlan plan_reload(const ServerConfig& running, const ServerConfig& loaded);

/// The plan as the lines the log and the reload command print ("applied: ...", "kept: ...",
/// or "no changes").
[[nodiscard]] std::vector<std::string> describe(const ReloadPlan& plan);

}  // namespace warren::server
