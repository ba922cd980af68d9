#pragma once
/// A mesh node's roster side (docs/MESH.md, "The node"): the client daemon's copy of the
/// coordinator's roster, turned into WireGuard peers of its engine, and the endpoints it
/// reports. Pure: no sockets, no clock, no engine; the daemon applies the ConfigDelta it
/// returns and sends the messages it asks for.
///
///   session thread: roster message ─► parse_roster_message ─► (queued) ─► loop thread:
///        MeshNode::on_delta ─► Roster::apply ─► wanted peers vs applied ─► wg::ConfigDelta
///        ─► engine
///                                └ ESTALE ─► "roster_request from 0"
///   every second:  local addresses + STUN's reflexive ─► MeshNode::endpoints_changed ─► report
///
/// Peers (contract of issue 13, item 4): every active entry other than this node becomes a
/// peer with allowed IPs = its /32 and /128, endpoint = its reflexive candidate when present
/// (its first local one instead when its reflexive address is this node's own: the same NAT),
/// else its first local one, persistent keepalive kMeshKeepalive once it has an endpoint and 0
/// before (switching it on is what makes the engine handshake at once, so both sides start
/// when they learn each other's endpoint: simultaneous open, and NAT mappings stay open;
/// docs/MESH.md, "Hole punching"). A revoked or removed
/// entry's peer is removed. The coordinator's peer (from the enrollment) is never touched,
/// even if the roster lists its key. Only what changed is in a delta: a peer whose allowed IPs,
/// candidate endpoint and state are unchanged is left alone (its session and roaming too).
///
/// Thread-compatible: one owner (the daemon's loop thread); names() may be copied out.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/time.h"
#include "control/mesh_session.h"
#include "crypto/x25519.h"
#include "mesh/roster.h"
#include "net/ip_address.h"
#include "platform/netlink.h"
#include "wg/config.h"

namespace warren::client {

inline constexpr std::uint16_t kMeshKeepalive = 25;

/// What the node reports to the coordinator ({"type":"endpoints"}, control/mesh_session.h).
using MeshEndpoints = control::EndpointReport;

/// Local candidates from this host's addresses: every address of a link other than
/// `mesh_ifindex` that is not loopback, link-local, unspecified, multicast or inside one of the
/// mesh prefixes, with the WireGuard `port`; IPv4 first, then IPv6, each in the order listed,
/// at most mesh::kMaxLocalEndpoints.
[[nodiscard]] std::vector<net::Endpoint> local_candidates(
    const std::vector<platform::LinkAddress>& addresses, std::uint32_t mesh_ifindex,
    std::uint16_t port, const mesh::AddressPlan& plan);

class MeshNode {
 public:
  MeshNode(mesh::AddressPlan plan, const crypto::PublicKey& self,
           const crypto::PublicKey& coordinator)
      : roster_(std::move(plan)), self_(self), coordinator_(coordinator) {}

  struct Update {
    /// Applied first, as its own delta (a key may appear once per delta): persistent
    /// keepalive 0 for the peers `engine` moves to a new endpoint, which `engine` switches on
    /// again, so that the engine sends to the new endpoint at once (a punch).
    wg::ConfigDelta keepalive_off;
    wg::ConfigDelta engine;      ///< peers to add, change, remove (empty when nothing changed)
    bool request_snapshot = false;  ///< ESTALE: ask for {"type":"roster_request","from":0}
    std::vector<std::string> log;   ///< one line per peer added/changed/removed or problem
  };

  /// A roster message's delta (control::parse_roster_message). A malformed message or a delta
  /// apply() refuses changes nothing (logged); both ask for a snapshot when a fresh one can
  /// help (malformed, ESTALE).
  [[nodiscard]] Update on_delta(const Result<mesh::RosterDelta>& delta);

  const mesh::Roster& roster() const { return roster_; }
  /// The version to ask for on a new session (roster_request "from").
  std::uint64_t version() const { return roster_.version(); }

  /// True when `now` differs from what was last reported (and records it as reported).
  [[nodiscard]] bool endpoints_changed(const MeshEndpoints& now);

  /// The peer a roster entry becomes: nullopt for this node, the coordinator and a revoked
  /// entry.
  [[nodiscard]] std::optional<wg::PeerDelta> peer_for(const mesh::NodeEntry& e) const;

  /// Every candidate endpoint of a roster peer, the one peer_for chose first, then its
  /// reflexive one and its local ones in roster order, without repeats; empty for a key that
  /// is not a peer.
  [[nodiscard]] std::vector<net::Endpoint> candidates(const crypto::PublicKey& key) const;

 private:
  struct Applied {
    std::vector<net::Prefix> allowed_ips;
    std::optional<net::Endpoint> endpoint;
    friend bool operator==(const Applied&, const Applied&) = default;
  };

  mesh::Roster roster_;
  crypto::PublicKey self_, coordinator_;
  std::map<crypto::PublicKey, Applied> applied_;  // the peers this node put into the engine
  std::optional<MeshEndpoints> reported_;
};

/// CandidateCycler: while a mesh peer has no session, its candidates in turn (docs/MESH.md,
/// "Hole punching"). Pure: the daemon feeds it the engine's peers once a second and applies the
/// endpoint changes it returns (the engine sends an initiation at once to a moved endpoint).
///
///   candidate 0 (the roster's choice) ──no session, nothing received for `try_for`──►
///   candidate 1 ──► ... ──► the last one: left there (the relay policy takes over after 5 s)
///   anything received, a session, or a non-UDP (relay) endpoint ──► left alone: settled
///   (roaming moved it, or the relay policy owns it) until the candidates change
///
/// Thread-compatible (the daemon's loop thread).
class CandidateCycler {
 public:
  struct Peer {
    crypto::PublicKey key;
    std::vector<net::Endpoint> candidates;  ///< MeshNode::candidates
    std::optional<net::Endpoint> endpoint;  ///< the engine's, as PeerSnapshot has it
    std::uint8_t transport = 0;             ///< 0 = UDP
    std::uint64_t rx_packets = 0;
    bool has_session = false;
  };
  explicit CandidateCycler(Duration try_for = std::chrono::seconds(2)) : try_for_(try_for) {}

  /// One step: update_only deltas moving endpoints (UDP) to the next candidate.
  [[nodiscard]] std::vector<wg::PeerDelta> tick(const std::vector<Peer>& peers, MonoTime now);

 private:
  struct State {
    std::vector<net::Endpoint> candidates;
    std::size_t index = 0;
    MonoTime since{};
    std::uint64_t rx = 0;
    bool settled = false;
  };
  Duration try_for_;
  std::map<crypto::PublicKey, State> peers_;
};

}  // namespace warren::client
