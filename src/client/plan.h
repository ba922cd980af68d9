#pragma once
/// From a ClientConfig to the ordered set-up steps for its interface (what wg-quick's
/// add_addr / set_mtu_up / add_route / add_default / set_dns do), applied through
/// host::ActiveSetup (host/steps.h).
///
/// Endpoint host routes: see PlanOptions::endpoints (looked up when the plan is made).
/// Routes: every AllowedIPs prefix of every peer becomes a route on the interface (split
/// tunnel), except prefixes the kernel already routes there because of an interface address.
/// With Table = N they go into table N; with Table = off there are none. A /0 with Table =
/// auto is a full tunnel, set up as wg-quick does so that the tunnel's own UDP does not loop:
///
///   route  0.0.0.0/0 dev IF table T                 (T = FwMark, or 51820 without one)
///   rule   not fwmark T lookup T                    (everything but our own sockets)
///   rule   lookup main suppress_prefixlength 0      (main's specific routes still win)
///   sysctl net.ipv4.conf.all.src_valid_mark = 1     (IPv4: replies pass rp_filter)
///
/// and the engine's sockets carry fwmark T (effective_fwmark). The same for ::/0 and IPv6.
///
/// MTU: tunnel_mtu (the file's MTU, capped at kQuicTunnelMtu when QUIC may carry the tunnel).
///
/// Mesh mode (config.mesh, docs/MESH.md "The node"): the addresses are the node's /32 and
/// /128; the IPv4 and the IPv6 mesh prefix are routed into the interface after link up, each
/// idempotently (make_ensure_route_step). Before anything is applied, the CGNAT conflict check
/// (check_mesh_overlap) refuses when another interface holds an address inside a mesh prefix.

#include <memory>
#include <string>
#include <vector>

#include "client/config.h"
#include "client/steps.h"
#include "runtime/quic_transport.h"

namespace warren::client {

inline constexpr std::uint32_t kDefaultFullTunnelTable = 51820;

/// The interface MTU when QUIC may carry the tunnel (runtime/quic_transport.h has the
/// arithmetic: what one QUIC DATAGRAM frame carries once path MTU discovery confirmed 1444-byte
/// packets, minus WireGuard's 32 bytes). When the client may use QUIC (may_use_quic) the
/// interface MTU is min(configured MTU, this), on either transport, so that a switch between
/// them never needs an MTU change of the running interface.
using runtime::kQuicTunnelMtu;

/// The MTU the plan gives the interface: MTU from the file (unset: `created_mtu`, what the
/// interface was created with), capped at kQuicTunnelMtu when may_use_quic(config).
[[nodiscard]] std::uint32_t tunnel_mtu(const ClientConfig& config, std::uint32_t created_mtu);

struct PlanOptions {
  DnsMethod dns = DnsMethod::kFile;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string state_dir = "/var/lib/warren";  ///< backups: STATE_DIR/IFNAME.resolv.conf
  std::string sysctl_dir = "/proc/sys";
  /// The peers' resolved endpoint addresses. One that falls inside a prefix routed into the
  /// tunnel in the main table gets a host route via its current path first, so the tunnel's
  /// own UDP does not loop (AllowedIPs = 0.0.0.0/1, 128.0.0.0/1 and the like).
  std::vector<net::IpAddress> endpoints;
};

/// The metric of those endpoint host routes: unusual, so they never collide with a route of
/// the system's own (same destination and metric would be EEXIST).
inline constexpr std::uint32_t kEndpointRouteMetric = 51820;

/// STATE_DIR/IFNAME.resolv.conf: where the file method keeps the old resolv.conf.
std::string backup_path(const PlanOptions& options, const std::string& ifname);
/// What IFNAME's journal may name with these options (steps.h).
JournalScope journal_scope(const PlanOptions& options, const std::string& ifname);

/// The fwmark the engine's sockets need: FwMark if set, else T when a full tunnel is set up.
std::uint32_t effective_fwmark(const ClientConfig& config);

/// Steps for `config` on the link `ifindex` (currently `current_mtu`), the interface line first.
/// Reads sysctls through `sys` to journal their old values, and skips one that already has the
/// wanted value.
std::vector<std::unique_ptr<Step>> plan_steps(const ClientConfig& config, std::uint32_t ifindex,
                                              std::uint32_t current_mtu, System& sys,
                                              const PlanOptions& options);

/// The CGNAT conflict check of a mesh node: EADDRINUSE naming the interface and its address
/// when a link other than `own_ifindex` holds an address inside the mesh's IPv4 or IPv6
/// prefix (another overlay such as tailscale0 with 100.x, a carrier's 100.64.0.0/10 on the
/// uplink), unless the config says `#@warren MeshAllowOverlap = true`. OK without mesh.
[[nodiscard]] Status check_mesh_overlap(platform::NetConfig& net, const ClientConfig& config,
                                        std::uint32_t own_ifindex);

/// Applies the plan: the set-up that owns the applied steps; on failure everything is rolled
/// back and the error names the step that failed. A mesh node's CGNAT check runs first.
Result<std::unique_ptr<ActiveSetup>> bring_up(System& sys, const ClientConfig& config,
                                              std::uint32_t ifindex, std::uint32_t current_mtu,
                                              const PlanOptions& options,
                                              const std::string& journal_path);

/// Picks resolvconf if installed, else systemd-resolved if running, else resolv.conf.
DnsMethod detect_dns_method(System& sys);

}  // namespace warren::client
