#pragma once
/// The client's configuration: a wg-quick .conf file.
///
/// `warren up CONFIG` reads standard wg-quick files, and `warren join` writes the same format
/// (0600), so `wg-quick up` and `wg setconf` keep working on what warren writes. Supported:
///
///   [Interface]  PrivateKey, Address (list), DNS (addresses and search domains), MTU,
///                ListenPort, FwMark (number or "off"), Table ("off", "auto" or a number),
///                SaveConfig (false only)
///   [Peer]       PublicKey, PresharedKey, AllowedIPs (list), Endpoint (host:port, IPv6 in
///                brackets, names allowed), PersistentKeepalive (seconds or "off")
///
/// PreUp/PostUp/PreDown/PostDown are refused: warren does not run shell commands from a
/// config file (run them around `warren up`/`down`). Any other key, a key outside its section,
/// a repeated single-valued key or a bad value is an error naming file:line and the key;
/// nothing is applied from a file with an error. Keys and section names are case-insensitive
/// as in wg-quick; a `#` starts a comment.
///
/// warren-specific settings live in comment lines `#@warren Key = Value`, which wg-quick and
/// wg ignore: `#@warren Server = HOST:PORT` (the control endpoint) and `#@warren ControlPin =
/// <64 hex digits>` (the SHA-256 of the server's control certificate, from the invite), both
/// written by join. With both, `warren up` keeps a settings session with the server
/// (control/session.h) and applies the settings it pushes (client/settings.h).
/// `#@warren ControlGroup = NAME` (a group name: [A-Za-z0-9_.-], not starting with '-') lets
/// members of that group `warren pause` and `warren resume` the interface (client/standby.h).
///
/// Mesh mode (docs/MESH.md, "The node"): join writes the enrollment answer's mesh settings as
///   #@warren MeshPrefix4 = 100.64.0.0/10     the mesh's IPv4 prefix (routed into the interface)
///   #@warren MeshPrefix6 = 200::/7           the mesh's IPv6 prefix (routed after link up)
///   #@warren MeshDomain = warren             the names' DNS domain
///   #@warren MeshIndex = 0                   this node's IPv4 collision index
///   #@warren MeshStun = 203.0.113.1:3478, ...  the coordinator's STUN servers (numeric)
///   #@warren MeshRelay = 203.0.113.1:3479    its relay (absent when none)
/// and the operator may add
///   #@warren MeshAllowOverlap = true         `up` even when another interface holds an address
///                                            inside a mesh prefix (the CGNAT check, plan.h)
/// MeshPrefix4 and MeshPrefix6 make a config a mesh node's; every other Mesh* key needs them.
///
/// QUIC transport (issue 15): join writes, when the enrollment answer offers QUIC,
///   #@warren QuicEndpoint = vpn.example.com:443   the server's QUIC endpoint (host:port)
///   #@warren Transport = auto                     auto | wireguard | quic
/// `auto` starts on WireGuard's UDP and falls back to QUIC when no handshake completes
/// (runtime/transport_choice.h); `wireguard` never uses QUIC; `quic` always does. Without a
/// Transport line the mode is `auto` when a QuicEndpoint is present, else `wireguard`;
/// `Transport = quic` without a QuicEndpoint is an error naming the Transport line. Each of the
/// two may be given once. The pushed settings keep them current (client/settings.h).

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/x25519.h"
#include "net/host_port.h"
#include "net/ip_address.h"

namespace warren::client {

/// A configuration error: "FILE:LINE: KEY: what is wrong".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using HostPort = net::HostPort;  ///< "host:port", "[v6]:port" (net/host_port.h)

struct PeerConfig {
  crypto::PublicKey public_key;
  std::optional<crypto::PresharedKey> preshared_key;
  std::vector<net::Prefix> allowed_ips;
  std::optional<HostPort> endpoint;
  std::uint16_t persistent_keepalive = 0;  ///< 0 = off
};

/// The #@warren Mesh* lines: present on a mesh node's config.
struct MeshConfig {
  net::Prefix prefix_v4;  ///< canonical, IPv4
  net::Prefix prefix_v6;  ///< canonical, IPv6
  std::string domain = "warren";
  std::uint32_t v4_index = 0;
  std::vector<net::Endpoint> stun;  ///< numeric address:port
  std::optional<HostPort> relay;
  bool allow_overlap = false;  ///< MeshAllowOverlap
};

/// How the client reaches its server (#@warren Transport).
enum class Transport : std::uint8_t { kAuto, kWireguard, kQuic };
/// "auto", "wireguard", "quic".
const char* transport_name(Transport t);
/// The inverse of transport_name (case-insensitive); nullopt otherwise.
std::optional<Transport> parse_transport(std::string_view text);

struct ClientConfig {
  std::string path;       ///< the file it came from
  std::string interface;  ///< from the file name (wg0.conf -> wg0)
  crypto::PrivateKey private_key;
  std::vector<net::Prefix> addresses;
  std::vector<net::IpAddress> dns_servers;
  std::vector<std::string> dns_search;
  std::optional<std::uint32_t> mtu;
  std::optional<std::uint16_t> listen_port;
  std::optional<std::uint32_t> fwmark;  ///< unset or 0 = none
  /// Routing table for AllowedIPs routes: unset = "auto" (main, and wg-quick's policy routing
  /// for /0), 0 = "off" (no routes at all), N = routes go into table N.
  std::optional<std::uint32_t> table;
  std::string server_name;  ///< #@warren Server
  std::string control_pin;  ///< #@warren ControlPin: 64 lowercase hex digits, or ""
  /// #@warren ControlGroup: members of this group may `warren pause`/`resume` ("" = root only)
  std::string control_group;
  std::vector<PeerConfig> peers;
  std::optional<MeshConfig> mesh;  ///< #@warren Mesh*: a mesh node
  /// #@warren QuicEndpoint: the server's QUIC endpoint (host:port), when it offers QUIC.
  std::optional<HostPort> quic_endpoint;
  /// #@warren Transport as written; unset = the default (see effective_transport).
  std::optional<Transport> transport;
};

/// The transport mode in force: `transport` if written, else kAuto with a QuicEndpoint and
/// kWireguard without one. Never kQuic without a QuicEndpoint (the parser refuses that), and
/// kAuto without one behaves as kWireguard (there is nothing to fall back to): reported as
/// kWireguard.
Transport effective_transport(const ClientConfig& config);
/// The client may carry its WireGuard messages over QUIC: a QuicEndpoint and a mode other
/// than wireguard. Then the tunnel MTU is capped (plan.h, kQuicTunnelMtu).
bool may_use_quic(const ClientConfig& config);

/// Interface names as wg-quick accepts them: 1-15 of [a-zA-Z0-9_=+.-].
bool valid_interface_name(std::string_view name);

/// The interface name of a config path (/etc/wireguard/wg0.conf -> wg0). Throws ConfigError
/// when the name is not IFNAME.conf with a valid IFNAME.
std::string interface_from_path(const std::string& path);

/// Parses `text` as the content of `path` (the interface name comes from the path).
/// Throws ConfigError.
ClientConfig parse_config(std::string_view text, const std::string& path);

/// Reads and parses a file; warns on stderr-through-`warn` when it is group/world-readable
/// (it holds a private key). Throws ConfigError (also for I/O errors, naming the file).
ClientConfig load_config(const std::string& path, std::string* warning = nullptr);

/// Formats a configuration as a wg-quick file (what join writes); parse_config reads it back.
std::string format_config(const ClientConfig& config);

/// Splits "host:port" / "[v6]:port" (net::split_host_port) and checks the host: a bracketed one
/// must be an IPv6 literal, any other a hostname or IPv4 literal; nullopt when malformed.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace warren::client
