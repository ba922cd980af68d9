#pragma once
/// The running server: one TUN for every client, the dataplane::Engine (the same as
/// warren-wg's), the UAPI socket (`wg show IFNAME` works), the enrollment endpoint, the status
/// socket and, optionally, NAT and a Prometheus endpoint.
///
///   start:  state (keys, TLS identity, store) ─► TUN + addresses + MTU + up (rtnetlink)
///           ─► engine (private key, listen port, every enrolled peer) ─► UAPI socket
///           ─► NAT (ip_forward, iptables MASQUERADE) ─► status socket ─► enrollment ─► metrics
///   run:    in the foreground until SIGINT/SIGTERM or the interface is deleted; every few
///           seconds handshake times go to the store, and idle dynamic leases are released
///   stop:   the reverse; the NAT rule and ip_forward are restored, the TUN is deleted
///
/// Enrollment: Registry::enroll commits to the store, then the peer is added to the engine,
/// then the client gets its answer. After a crash, start-up re-adds every enrolled peer from
/// the store, so clients keep their addresses and resume by themselves.

#include "server/config.h"

namespace warren::server {

/// Runs the server in the foreground; returns the process exit code (1 with a message on
/// stderr if start-up fails).
int run_server(const ServerConfig& config);

/// The iptables arguments for the NAT rule (without -A/-D/-C), for tests and docs.
std::vector<std::string> nat_rule(const ServerConfig& config);

}  // namespace warren::server
