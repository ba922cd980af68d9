#pragma once
/// The server's TOML configuration (docs/SERVER.md has the full reference and an example).
///
///   [interface]  name, listen_port, private_key_file, address_v4, address_v6, mtu
///   [pool]       strategy, lease_idle_time, quarantine, [pool.reservations] NAME = ["10.8.0.10", ...]
///   [clients]    dns, routes, persistent_keepalive, client_to_client
///   [nat]        out_interface, ipv6
///   [enrollment] listen, public_endpoint, control_endpoint
///   [metrics]    listen, allow_remote
///   [storage]    database
///   [mesh]       prefix_v4, prefix_v6, domain, stun_port, stun_alternate_port, relay_port,
///                relay_rate, relay_frame_rate, relay_connections_per_source
///   [log]        level (error|verbose|debug|silent; LOG_LEVEL in the environment wins)
///   [dns]        enabled, domain, upstreams
///   [quic]       listen (one "ADDR:PORT" or a list; the table turns the QUIC transport on)
///
/// Relative file names are resolved against the config file's directory. Every error names
/// the file, the line (and column) and the key: "server.toml:7:15: interface.listen_port: must
/// be 1..65535". Unknown keys and tables are errors (a typo must not be silently ignored).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/address.h"
#include "mesh/names.h"
#include "net/ip_address.h"

namespace warren::server {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class PoolStrategy : std::uint8_t { kDynamic, kStatic, kStaticOrDynamic };

/// How clients' IPv6 traffic leaves the server when [nat] is on: behind the server's own
/// address (NAT66), or with the clients' own addresses (the operator routes address_v6's
/// prefix to this host).
enum class Ipv6Egress : std::uint8_t { kMasquerade, kRouted };
const char* strategy_name(PoolStrategy s);

/// The server's own address in a tunnel prefix: "10.8.0.1/24" gives address 10.8.0.1 and
/// prefix 10.8.0.0/24.
struct TunnelNetwork {
  net::Prefix prefix;  ///< canonical
  net::IpAddress server_address;
  net::Prefix interface_address() const { return net::Prefix{server_address, prefix.length}; }
};

struct ServerConfig {
  std::string path;       ///< the config file
  std::string directory;  ///< its directory (relative names are resolved against it)

  // [interface]
  std::string interface = "warren0";
  std::uint16_t listen_port = 51820;
  std::string private_key_file;  ///< absolute; default <dir>/<interface>.key
  std::optional<TunnelNetwork> ipv4, ipv6;
  std::uint32_t mtu = 1420;

  // [pool]
  PoolStrategy strategy = PoolStrategy::kStaticOrDynamic;
  std::chrono::seconds lease_idle_time{30 * 86400};  ///< 0 = never release
  /// A freed dynamic address (revoke, idle release) goes to no other client for this long, so
  /// the next one inherits none of the old one's conntrack entries, address-keyed firewall
  /// rules or peers' sessions; its former holder may take it back. 0 = reuse at once.
  std::chrono::seconds address_quarantine{3600};
  std::map<std::string, std::vector<net::IpAddress>> reservations;

  // [clients]
  std::vector<net::IpAddress> dns;
  std::vector<net::Prefix> routes;  ///< default: the tunnel prefixes
  std::uint16_t persistent_keepalive = 25;
  bool client_to_client = false;

  // [nat]: full tunnel. Clients' traffic is forwarded out of the host: IPv4 masqueraded,
  // IPv6 as nat_ipv6 says (server/nft_ruleset.h has the rules).
  bool nat = false;
  /// Only out of this interface; unset = out of every interface but the tunnel.
  std::optional<std::string> nat_interface;
  Ipv6Egress nat_ipv6 = Ipv6Egress::kMasquerade;

  // [enrollment]
  /// TCP addresses of the control channel (`listen`: one string or a list); "[::]:PORT" is
  /// both families. Never empty.
  std::vector<std::string> control_listen = {"0.0.0.0:7443"};
  std::string public_endpoint;   ///< required: "host:port" of the WireGuard UDP port
  std::string control_endpoint;  ///< in invites; default: public host + control listen port

  // [metrics]
  /// Addresses of the metrics endpoint (`listen`: one string or a list); empty = off.
  std::vector<std::string> metrics_listen;
  /// The metrics endpoint is plain, unauthenticated HTTP that names every client and key:
  /// a non-loopback listen address is refused unless this is set.
  bool metrics_allow_remote = false;

  // [mesh] (docs/MESH.md; the block grows with mesh mode)
  /// A `[mesh]` table, even an empty one, makes the server a mesh coordinator: clients get
  /// key-derived addresses from `mesh_plan`, the "mesh" object in their enrollment answer and
  /// the roster over their settings session.
  bool mesh = false;
  /// prefix_v4 (default 100.64.0.0/10) and prefix_v6 (default 200::/7), validated.
  mesh::AddressPlan mesh_plan;
  /// Nodes resolve as NAME.<mesh_domain>; canonical (mesh::canonical_mesh_domain).
  std::string mesh_domain = std::string(mesh::kDefaultMeshDomain);
  /// UDP port of the STUN responder (mesh endpoint discovery); none when unset.
  std::optional<std::uint16_t> stun_port;
  /// A second responder port, so that a node asking both can tell an endpoint-independent NAT
  /// mapping from a port-dependent one (the idea of RFC 5780's alternate port).
  std::optional<std::uint16_t> stun_alternate_port;
  /// Port of the relay: TCP (TLS with the control channel's certificate, on the enrollment
  /// listen address's host) and UDP (the same number, every address); 0 = no relay.
  std::uint16_t relay_port = 0;
  /// Per node: datagram bytes and frames a second it may send through the relay (a burst of
  /// one second's worth); 0 = unlimited.
  std::uint64_t relay_rate = 8 * 1024 * 1024;
  std::uint64_t relay_frame_rate = 4096;
  /// Relay connections at once from one IPv4 address or IPv6 /64.
  std::size_t relay_connections_per_source = 16;
  // [quic] (issue 15): the QUIC transport, a second carrier of the same WireGuard messages.
  /// UDP addresses of the QUIC listener (`listen`: one numeric "ADDR:PORT" or a list); each is
  /// bound on its own (an IPv6 one v6-only), so "0.0.0.0:443" and "[::]:443" may be listed
  /// together. Empty = QUIC off (no [quic] table). The first entry's port is the one clients
  /// are offered (Enrollment::quic). Changing it needs a restart.
  std::vector<std::string> quic_listen;
  bool quic() const { return !quic_listen.empty(); }

  // [log]
  std::optional<std::string> log_level;  ///< as parse_log_level accepts it; unset: LOG_LEVEL/verbose

  // [storage]
  std::string database;  ///< absolute; default <dir>/<config stem>.db

  // [dns] (server/dns_service.h): the resolver on the tunnel address(es).
  /// Default: on when [clients].dns names one of the server's tunnel addresses.
  bool dns_enabled = false;
  /// `enabled = true` was written: then a resolver that cannot start fails the server's start
  /// (by default it is a warning: another resolver may already serve the address).
  bool dns_required = false;
  /// Client names resolve as NAME.<dns_domain>; canonical (lower case, no final dot).
  std::string dns_domain = "warren.internal";
  /// Where other names go; empty = the `nameserver` lines of /etc/resolv.conf, read at start
  /// and on SIGHUP.
  std::vector<net::Endpoint> dns_upstreams;

  /// Files beside the database for the control channel's certificate and key.
  std::string tls_cert_file() const { return database_dir() + "/" + interface + "-control.crt"; }
  std::string tls_key_file() const { return database_dir() + "/" + interface + "-control.key"; }
  std::string database_dir() const;
};

/// Parses TOML text; `path` is used for error messages and relative names.
ServerConfig parse_config(std::string_view text, const std::string& path);
/// Reads and parses a file; errors name the file.
ServerConfig load_config(const std::string& path);

/// "90s", "30m", "24h", "7d", "2w" (a number and one unit); "0" means zero. nullopt otherwise.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
/// Client names: 1-32 of [A-Za-z0-9._-], not starting with '-' or '.'.
bool valid_client_name(std::string_view name);

}  // namespace warren::server
