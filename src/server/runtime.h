#pragma once
/// The running server: one TUN for every client, the dataplane::Engine (the same as
/// warren-wg's), the UAPI socket (`wg show IFNAME` works), the enrollment endpoint, the status
/// socket and, optionally, NAT and a Prometheus endpoint.
///
///   start:  state (keys, TLS identity, store) ─► TUN + addresses + MTU + up (rtnetlink)
///           ─► engine (private key, listen port, every enrolled peer) ─► UAPI socket
///           ─► host changes (ip_forward, iptables MASQUERADE; journaled, server/host_setup.h)
///           ─► status socket ─► enrollment ─► metrics
///   run:    in the foreground until SIGINT/SIGTERM or the interface is deleted; every few
///           seconds handshake times go to the store, and idle dynamic leases are released
///   stop:   the reverse; the NAT rule and ip_forward are restored, the TUN is deleted. After a
///           kill -9 the next start (or `warren server cleanup`) restores them from the journal
///
/// Enrollment: Registry::enroll commits to the store, then the peer is added to the engine,
/// then the client gets its answer. After a crash, start-up re-adds every enrolled peer from
/// the store, so clients keep their addresses and resume by themselves.

#include "server/config.h"

namespace warren::server {

/// Runs the server in the foreground; returns the process exit code (1 with a message on
/// stderr if start-up fails).
int run_server(const ServerConfig& config);

}  // namespace warren::server
