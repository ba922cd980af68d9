#pragma once
/// Configuration deltas and snapshots: the language spoken between the protocol core and its
/// configuration sources (UAPI `set=1`/`get=1`, config files, the server's client registry).
///
/// A ConfigDelta is validated as a whole and applied as a whole (Device::apply): a request with
/// any bad line changes nothing. Field meanings follow the cross-platform UAPI
/// (wireguard.com/xplatform) and wireguard-go's handling of them.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "crypto/x25519.h"
#include "net/ip_address.h"

namespace warren::wg {

struct PeerDelta {
  crypto::PublicKey public_key;
  bool remove = false;       ///< remove=true
  bool update_only = false;  ///< update_only=true: do nothing if the peer does not exist
  std::optional<crypto::PresharedKey> preshared_key;  ///< all-zero = none
  std::optional<net::Endpoint> endpoint;
  /// The transport `endpoint` is on (net::Path::transport; opaque to the core). The UAPI sets
  /// UDP endpoints only (0); the engine's own API may name another transport.
  std::uint8_t transport = 0;
  std::optional<std::uint16_t> persistent_keepalive;  ///< seconds, 0 = off
  bool replace_allowed_ips = false;                   ///< clear before adding
  std::vector<net::Prefix> allowed_ips_add;           ///< allowed_ip=P (host bits masked on apply)
  std::vector<net::Prefix> allowed_ips_remove;        ///< allowed_ip=-P (newer wg-tools)
  /// Start a handshake now (after the rest of this delta), session or not: the engine's owner
  /// proving a path it just moved the peer to (a client's switch between UDP and QUIC), or
  /// renewing a session the other end has probably lost (its QUIC connection was reset by a
  /// restarted server). Needs a private key and an endpoint; no UAPI equivalent.
  bool initiate_handshake = false;
};

struct ConfigDelta {
  std::optional<crypto::PrivateKey> private_key;  ///< all-zero = remove the key
  std::optional<std::uint16_t> listen_port;       ///< 0 = random (the dataplane binds)
  std::optional<std::uint32_t> fwmark;            ///< 0 = off (the dataplane applies SO_MARK)
  bool replace_peers = false;
  std::vector<PeerDelta> peers;  ///< in request order
};

struct PeerSnapshot {
  crypto::PublicKey public_key;
  crypto::PresharedKey preshared_key;  ///< zero if none
  std::optional<net::Endpoint> endpoint;
  std::uint8_t endpoint_transport = 0;  ///< net::Path::transport of `endpoint`
  std::int64_t last_handshake_sec = 0;  ///< Unix time; 0/0 = never
  std::int64_t last_handshake_nsec = 0;
  std::uint64_t rx_bytes = 0;  ///< wire bytes including handshake messages (wireguard-go)
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t tx_packets = 0;
  std::uint16_t persistent_keepalive = 0;
  std::vector<net::Prefix> allowed_ips;  ///< canonical (masked)
  bool has_session = false;              ///< a current keypair that can send
  /// Round-trip time of the last completed handshake in µs (0 = none yet; Peer::handshake_rtt).
  std::int64_t handshake_rtt_usec = 0;
};

struct DeviceSnapshot {
  std::optional<crypto::PrivateKey> private_key;  ///< clamped, as wg reads it back
  std::uint16_t listen_port = 0;                  ///< filled in by the dataplane
  std::uint32_t fwmark = 0;
  std::vector<PeerSnapshot> peers;
};

}  // namespace warren::wg
