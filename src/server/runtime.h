#pragma once
/// The running server: one TUN for every client, the dataplane::Engine (the same as
/// warren-wg's), the UAPI socket (`wg show IFNAME` works), the enrollment endpoint, the status
/// socket and, optionally, NAT and a Prometheus endpoint.
///
/// The data plane's start-up, signals, readiness and shutdown are the shared runtime's
/// (runtime/runtime.h); the server supplies its hooks:
///
///   start:  state (keys, TLS identity, store) ─► [runtime: TUN, WARREN_WORKERS queues,
///           offloads] ─► addresses ─► [engine] ─► private key, every enrolled peer, link up
///           ─► [UAPI socket, workers] ─► host changes (forwarding, nft table, FORWARD accepts;
///           journaled, server/host_setup.h) ─► enrollment
///           ─► metrics ─► DNS on the tunnel addresses ([dns], server/dns_service.h)
///           ─► [status socket, READY=1]
///   run:    in the foreground until SIGINT/SIGTERM or the interface is deleted; SIGHUP (or
///           `warren server reload`) re-syncs the peers from the database and reloads the
///           config (server/reload.h: what applies live), pushing changed client settings to
///           the clients' settings sessions (control/session.h), and re-reads DNS upstreams;
///           every few seconds handshake times go to the store, idle dynamic leases are released
///   stop:   the reverse; the nft table and forwarding are restored, the TUN is deleted. After a
///           kill -9 the next start (or `warren server cleanup`) restores them from the journal
///
/// Enrollment: Registry::enroll commits to the store, then the peer is added to the engine,
/// then the client gets its answer. After a crash, start-up re-adds every enrolled peer from
/// the store, so clients keep their addresses and resume by themselves.

#include <functional>

#include "server/config.h"

namespace warren::server {

/// Reads the config file again for a reload (the caller's path rules included); throws
/// ConfigError naming file:line:key.
using ConfigLoader = std::function<ServerConfig()>;

/// Runs the server in the foreground; returns the process exit code (1 with a message on
/// stderr if start-up fails). `load_config` serves reloads (SIGHUP, the status socket's
/// "reload"); without it a reload only re-syncs the peers.
int run_server(const ServerConfig& config, ConfigLoader load_config = {});

}  // namespace warren::server
