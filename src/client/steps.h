#pragma once
/// The client's own set-up steps, DNS and the interface line, on top of the generic host steps
/// (host/steps.h: address, MTU, link, route, rule, sysctl), and the parser of a client journal.
///
/// Replay runs as root from a file on disk, so the parser is an allow-list: IFNAME's journal may
/// only name what `warren up IFNAME` itself would touch — IFNAME's link (by the index of its
/// "interface" line), endpoint host routes (metric 51820), the two full-tunnel rules, the
/// src_valid_mark sysctl, the resolv.conf in use and IFNAME's backup in the state directory,
/// IFNAME's resolvconf/resolved record. Any other line refuses the whole journal, naming it.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/steps.h"
#include "net/ip_address.h"

namespace warren::client {

using host::ActiveSetup;
using host::ReplayResult;
using host::Step;
using host::System;

enum class DnsMethod { kResolvconf, kResolved, kFile };
const char* dns_method_name(DnsMethod m);
struct DnsSettings {
  std::vector<net::IpAddress> servers;
  std::vector<std::string> search;
  /// systemd-resolved only: the domains routed to `servers` (`~DOMAIN`, routing-only: a mesh
  /// node's `~warren`). Empty: every name goes there (`~.`), as resolvconf -x does. The other
  /// methods have no per-domain routing and ignore it.
  std::vector<std::string> routing;
};
/// resolvconf: `resolvconf -a tun.IFNAME -m 0 -x` (wg-quick's call); resolved: resolvectl dns /
/// domain, undone by `resolvectl revert`; file: `resolv_conf` rewritten in place after a copy
/// went to `backup`.
std::unique_ptr<Step> make_dns_step(DnsMethod method, const std::string& ifname,
                                    const DnsSettings& dns, const std::string& resolv_conf,
                                    const std::string& backup);

/// An address on IFNAME that local programs reach but the host never picks as a source (the
/// mesh DNS responder's 100.64.0.1/32 and 200::53/128, docs/MESH.md "Names"): added with a
/// preferred lifetime of 0 (platform::NetConfig::add_service_address), so IPv6 source
/// selection passes over it (RFC 6724 rule 3) and a node's packets keep its own address, which
/// is the only one its peers accept from it. The journal line is the address step's, so replay
/// and undo are the same.
std::unique_ptr<Step> make_service_address_step(std::uint32_t ifindex, const net::Prefix& address);

/// Changes nothing; journaled first, it records which link the later steps belong to
/// ("interface IFNAME IFINDEX").
std::unique_ptr<Step> make_interface_step(const std::string& ifname, std::uint32_t ifindex);

/// A route into the mesh interface (docs/MESH.md, "The node"): as host::make_route_step (the
/// same journal line, so replay undoes it the same way), except that a route that already
/// exists identically is not an error: adding it again is idempotent, and since the route is
/// on our own link, undo removes it with the link's other routes.
std::unique_ptr<Step> make_ensure_route_step(const platform::RouteSpec& route);

/// A line of a client journal, by syntax alone: the interface line, a DNS step or a generic
/// host step (no firewall rules: the client never adds one); nullptr otherwise.
std::unique_ptr<Step> parse_step(std::string_view line);

/// What the journal of one interface may name.
struct JournalScope {
  std::string interface;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string backup;  ///< STATE_DIR/IFNAME.resolv.conf
  std::string sysctl_dir = "/proc/sys";
};

/// The allow-list parser of `scope.interface`'s journal (see the top of this file). Stateful:
/// the interface line fixes the link index the later lines must name; a step on that link is
/// skipped at undo when the index names another link by now (ours went with its TUN).
host::StepChecker journal_checker(const JournalScope& scope);

/// Crash recovery of a client journal (host::replay_journal_checked with journal_checker).
ReplayResult replay_journal(System& sys, const std::string& path, const JournalScope& scope);

}  // namespace warren::client
