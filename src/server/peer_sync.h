#pragma once
/// PeerSync: what makes the interface's peers exactly the enrolled clients again, and which
/// tunnel addresses that takes away from a peer.
///
///   store clients ─┐
///                  ├─► plan_peer_sync ─► delta (engine.apply) ─► freed ─► forget_flows
///   engine peers ──┘                                                      (conntrack)
///
/// A freed address is a host address (/32, /128) that some peer routes now and will not after
/// the delta: its client was revoked or disabled, its dynamic lease was released for idleness, or it moved.
/// Its conntrack entries (NAT mappings, "established" flows firewall rules let through) must
/// go with it, or whoever holds the address next inherits them (issue 12). Wider prefixes an
/// operator added by hand (`wg set ... allowed-ips`) are removed by the delta but never
/// flushed: they are not a client's address.

#include <cstddef>
#include <string>
#include <vector>

#include "net/ip_address.h"
#include "platform/conntrack.h"
#include "server/store.h"
#include "wg/config.h"

namespace warren::server {

struct PeerSync {
  wg::ConfigDelta delta;              ///< removes unwanted peers, sets every wanted peer's IPs
  std::vector<net::IpAddress> freed;  ///< sorted, unique
};

/// The peers should be the clients with leases that are neither revoked nor disabled, each routing exactly its leased
/// addresses; `peers` is what the interface has now.
PeerSync plan_peer_sync(const std::vector<ClientRecord>& clients,
                        const std::vector<wg::PeerSnapshot>& peers);

/// The host addresses among `addresses` that the peer `key` does not route now (all of them
/// when it is no peer): an enrollment hands them to it, and nothing another holder left in the
/// conntrack table may come with them (a revocation written while the server was stopped, with
/// no quarantine, is only caught here).
std::vector<net::IpAddress> newly_routed(const std::vector<wg::PeerSnapshot>& peers,
                                         const crypto::PublicKey& key,
                                         const std::vector<net::Prefix>& addresses);

/// Deletes the conntrack entries of the freed addresses (one pass over the table per family)
/// and returns the line for the log: "10.8.0.5 fd08::5: 3 conntrack entries deleted", or the
/// error. Call it after the delta was applied, so that no packet of the old peer can make new
/// entries afterwards.
std::string forget_flows(platform::Conntrack& conntrack, const std::vector<net::IpAddress>& freed);

}  // namespace warren::server
