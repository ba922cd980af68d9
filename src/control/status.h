#pragma once
/// Status of a running warren interface (server or client), its JSON form, a human table, and
/// the root-only local socket that serves it.
///
///   daemon: StatusServer(ifname, provider) ── /var/run/warren/IFNAME.sock (dir 0700, sock 0600)
///   `warren status`: query_status(ifname) ──"status\n"──► provider() ──JSON + "\n"──► close
///
/// JSON (schema version 1, stable; fields are only ever added):
///   {"version":1,"interface":"wg0","role":"server","public_key":"<base64>","listen_port":51820,
///    "peers":[{"name":"alice","public_key":"<base64>","addresses":["10.8.0.2/32"],
///              "endpoint":"192.0.2.7:40000"|"","last_handshake":1764614400|0,
///              "rx_bytes":0,"tx_bytes":0,"rx_packets":0,"tx_packets":0,
///              "state":"connected"|"idle"|"never",
///              "rtt_ms":0.42,       (the last handshake's round trip; absent before one)
///              "transport":"wireguard"|"quic"|"relay"}],   (what carries the peer; absent
///                                                           when the daemon does not say)
///    "pool":{"v4":{"total":253,"used":3},"v6":{"total":..,"used":..}},   (servers only)
///    "stun":{"mapping":"endpoint-independent"|"endpoint-dependent"|"unknown",
///            "servers":[{"server":"198.51.100.1:3478","state":"ok"|"pending"|"timeout"|"error",
///                        "reflexive":"203.0.113.5:40000"|"","learned_at":1764614400|0,
///                        "rtt_ms":12}]},                  (only when STUN discovery runs)
///    "relay_path":{"relay":"192.0.2.1:7444","connected":true,"last_error":"","connects":1,
///                  "sent":0,"received":0,"drops":{"queue_full":0,...},
///                  "relayed_peers":["<base64>"]},     (only on a node with WARREN_RELAY)
///    "quic":{"role":"server"|"client","endpoint":":443"|"host:443","connected":true,
///            "clients":2,"connects":3,"sent":0,"received":0,"last_error":"",
///            "drops":{"too_big":0,...}},        (only with the QUIC transport, docs/QUIC.md)
///    "state":"up"|"paused","paused_by":"command"|"link down"}   (clients; paused_by if paused)
/// Only public keys appear; the types here cannot hold a private or preshared key.
///
/// The socket also carries a few one-word commands for the owner of the daemon (the server
/// uses "sync" so that `warren server revoke` takes effect at once); see StatusServerOptions.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/tls.h"  // ControlError
#include "crypto/x25519.h"
#include "net/ip_address.h"
#include "platform/control_socket.h"
#include "wg/config.h"

namespace warren::control {

inline constexpr int kStatusVersion = 1;
inline constexpr std::string_view kDefaultStatusDir = "/var/run/warren";

struct PeerStatus {
  std::string name;  ///< the enrolled name on a server; "" when unknown
  crypto::PublicKey public_key;
  std::vector<net::Prefix> addresses;
  std::string endpoint;             ///< "" when none is known
  std::int64_t last_handshake = 0;  ///< Unix seconds; 0 = never
  std::uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;
  std::string state;  ///< "connected", "idle" or "never" (peer_state)
  /// A mesh node's peers (docs/MESH.md): "direct" (a handshake on a UDP endpoint), "relay"
  /// (its endpoint is the coordinator's relay) or "none" (no handshake yet); "" elsewhere
  /// (then absent from the JSON).
  std::string path;
  /// Round-trip time of the last handshake in ms (wg::PeerSnapshot::handshake_rtt_usec);
  /// nullopt before one. Refreshed at every handshake (every 2 min while traffic flows).
  std::optional<double> rtt_ms;
  /// What carries the peer's WireGuard messages now (issue 15): "wireguard" (UDP), "quic" or
  /// "relay"; "" when the daemon does not say (then absent from the JSON and the table).
  std::string transport;
};

struct PoolUsage {
  std::uint64_t total = 0;  ///< assignable addresses (without network/broadcast/server)
  std::uint64_t used = 0;
};

/// Mesh endpoint discovery (runtime/stun_discovery.h): what one STUN server told us.
struct StunServerStatus {
  std::string server;           ///< "address:port" asked
  std::string state;            ///< "pending", "ok", "timeout", "error"
  std::string reflexive;        ///< the reflexive endpoint learned ("" when none yet)
  std::int64_t learned_at = 0;  ///< Unix seconds; 0 = never
  std::uint64_t rtt_ms = 0;
};
struct StunStatus {
  std::string mapping;  ///< mesh::mapping_kind_name: "endpoint-independent", ...
  std::vector<StunServerStatus> servers;
};

/// The coordinator's relay (server/relay_service.h), when [mesh] relay_port is set.
/// The QUIC transport (runtime/quic_transport.h, docs/QUIC.md): the server's listener or a
/// client's connection to its server.
struct QuicTransportStatus {
  std::string role;                      ///< "server" or "client"
  std::string endpoint;                  ///< server: ":PORT"; client: the server's host:port
  bool connected = false;                ///< client: authenticated and assigned now
  std::uint64_t clients = 0;             ///< server: authenticated connections now
  std::uint64_t connects = 0;            ///< authenticated connections so far
  std::uint64_t sent = 0, received = 0;  ///< WireGuard messages
  std::string last_error;  ///< client: why its last connection failed or ended ("" = none)
  /// Datagrams dropped and connections refused, by reason ("too_big", "queue_full",
  /// "not_connected", "refused", "malformed", "bad_token", ...).
  std::map<std::string, std::uint64_t> drops;
};

struct RelayStatus {
  std::uint16_t port = 0;
  std::uint64_t connections = 0;  ///< TCP/TLS connections open now, any state
  std::uint64_t nodes = 0;        ///< authenticated nodes connected now
  std::uint64_t forwarded_frames = 0;
  std::uint64_t forwarded_bytes = 0;
  /// Frames dropped or connections refused, by reason ("unknown_destination", "rate_limited",
  /// "queue_full", "auth_required", "auth_failed", ...).
  std::map<std::string, std::uint64_t> drops;
};

/// A node's own path through the coordinator's relay (runtime/relay_transport.h).
struct RelayPathStatus {
  std::string relay;  ///< host:port
  bool connected = false;
  std::string carrier;     ///< "UDP" or "TCP/TLS" while connected, else ""
  std::string last_error;  ///< why the last connection failed or ended; "" = none
  std::uint64_t connects = 0;
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  /// "queue_full", "not_connected", "unknown_path", "receive_queue_full".
  std::map<std::string, std::uint64_t> drops;
  std::vector<std::string> relayed_peers;  ///< base64 public keys whose endpoint is the relay
};

struct InterfaceStatus {
  int version = kStatusVersion;
  std::string interface;
  std::string role;  ///< "server" or "client"
  std::optional<crypto::PublicKey> public_key;
  std::uint16_t listen_port = 0;
  std::vector<PeerStatus> peers;
  std::optional<PoolUsage> pool_v4, pool_v6;
  std::optional<StunStatus> stun;
  /// Where the daemon's log goes: a file's path, "journal", "stderr" or "none"; "" = not said
  /// (a daemon before this field). Filled in by the runtime.
  std::string log;
  std::optional<RelayStatus> relay;
  std::optional<RelayPathStatus> relay_path;
  std::optional<QuicTransportStatus> quic;
  /// A client's interface: "up", or "paused" (`warren pause`, or its link set down from
  /// outside: `paused_by` says which, "command" or "link down"). "" = not said (a server, or a
  /// daemon before this field).
  std::string state;
  std::string paused_by;
};

/// "connected" when the last handshake is younger than 180 s (WireGuard's reject-after-time),
/// "idle" when older, "never" when there was none.
std::string peer_state(std::int64_t last_handshake, std::int64_t now_unix);

/// A device peer's status: key, allowed IPs as addresses, endpoint, handshake time, counters and
/// peer_state(); the caller adds what only it knows (the name, another state).
PeerStatus peer_status(const wg::PeerSnapshot& peer, std::int64_t now_unix);

std::string to_json(const InterfaceStatus& s);
/// Throws ControlError naming the bad field.
InterfaceStatus status_from_json(std::string_view json);
/// A readable table (interface line, pool line, one row per peer).
std::string format_table(const InterfaceStatus& s, std::int64_t now_unix);

using StatusProvider = std::function<InterfaceStatus()>;
/// A command handler: gets the rest of the request line, returns the reply text.
using CommandHandler = std::function<std::string(std::string_view argument)>;

struct StatusServerOptions {
  std::string socket_dir = std::string(kDefaultStatusDir);
  /// Extra one-word commands besides "status" ("sync", ...).
  std::map<std::string, CommandHandler, std::less<>> commands;
  /// Set: members of this group may connect too (the socket is 0660 with this group, and the
  /// socket directory gets o+x so that they can reach it; the other files there keep their own
  /// modes), but may send only the commands in `group_commands`; anything else is answered
  /// "error: permission denied ...". Unset: root (and this process's user) only.
  std::optional<std::uint32_t> group;
  std::set<std::string, std::less<>> group_commands;
};

/// Serves status on <socket_dir>/<ifname>.sock. One short request per connection, served one
/// at a time with a 2 s read timeout. Only root can connect (directory 0700, socket 0600), and
/// a connection whose peer (SO_PEERCRED) is neither root nor this process's user (nor, with
/// StatusServerOptions::group, a member of that group) is closed unanswered. The provider and
/// commands run on the server's thread.
class StatusServer {
 public:
  StatusServer(std::string ifname, StatusProvider provider, StatusServerOptions options = {});
  ~StatusServer();
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  /// Creates the directory (0700) and the socket (0600) and starts serving. Throws ControlError
  /// (e.g. "interface NAME is already served by another process").
  void start();
  /// Stops and removes the socket. Idempotent; the destructor calls it.
  void stop();
  const std::string& socket_path() const { return path_; }

 private:
  void loop();
  /// `limited`: the peer is only a member of options_.group (group_commands only).
  std::string handle(std::string_view line, bool limited);

  std::string ifname_;
  StatusProvider provider_;
  StatusServerOptions options_;
  std::string path_;
  std::unique_ptr<platform::ControlListener> listener_;
  std::thread thread_;
};

/// No daemon listens on the interface's status socket (missing, or nobody accepts).
class DaemonNotRunning : public ControlError {
 public:
  using ControlError::ControlError;
};

/// The socket exists but its modes keep this user out (EACCES/EPERM at connect).
class PermissionDenied : public ControlError {
 public:
  using ControlError::ControlError;
};

/// Sends one request line to the daemon of `ifname` and returns its whole reply, waiting at
/// most `timeout` for it. Throws DaemonNotRunning when no daemon serves the socket, and
/// PermissionDenied when the socket's modes refuse this user, ControlError otherwise (no
/// answer in time, ...).
std::string query_daemon(std::string_view ifname, std::string_view request,
                         std::string_view socket_dir = kDefaultStatusDir,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));
InterfaceStatus query_status(std::string_view ifname,
                             std::string_view socket_dir = kDefaultStatusDir);
/// Interface names with a socket in `socket_dir`, sorted.
std::vector<std::string> list_status_interfaces(std::string_view socket_dir = kDefaultStatusDir);

}  // namespace warren::control
