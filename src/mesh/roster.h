#pragma once
/// The mesh roster: who is in the mesh, at which addresses, reachable at which candidate
/// endpoints (docs/MESH.md, "Roster"). Pure data and codec: no sockets, no clocks.
///
///   coordinator: Roster::upsert / revoke / remove ──► version + 1 each
///                Roster::diff(node's version) ──► RosterDelta ──encode_delta──► bytes ──► node
///   node:        bytes ──decode_delta──► RosterDelta ──Roster::apply──► its copy, same version
///
/// A delta either starts at the version the node holds (`from_version`) and brings it to
/// `to_version`, or is a full snapshot (`full`, replaces everything). A node whose version does
/// not match gets ESTALE from apply() and asks the coordinator for a snapshot (diff(0)).
///
/// Entries are keyed by the node's public key. A node's addresses follow from its key and the
/// IPv4 collision index (mesh/address.h); they travel with the entry anyway, and apply() checks
/// them against the derivation, so a node whose address plan (prefixes) differs from the
/// coordinator's fails loudly instead of routing to the wrong addresses.
///
/// Errors (each a distinct errno, the message names the entry and the rule):
///   ESTALE   delta starts at another version than this roster's (ask for a full snapshot);
///            diff() from a version older than the kept history or newer than the roster
///   EEXIST   a key added that is already present or listed twice; a name or an IPv4 address
///            that another node already has
///   ENOENT   a key changed or removed that the roster does not have
///   EINVAL   a bad name, addresses that do not match the derivation, a bad endpoint, a bad
///            version step (to_version <= from_version, except the empty delta diff() gives
///            an up-to-date holder), too many endpoints
///   E2BIG    more than kMaxNodes entries
///   EBADMSG  decode_delta: malformed bytes (truncated, bad counts, unknown values, trailing)
/// apply() and the mutators change nothing when they fail.
///
/// Thread-compatible value types: one owner mutates, readers copy.

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/x25519.h"
#include "mesh/address.h"
#include "net/ip_address.h"

namespace warren::mesh {

/// Bounds (docs/MESH.md, "Roster"): a roster holds at most kMaxNodes entries (10,000 nodes is
/// the design point; 65,536 leaves room: a snapshot of that many typical entries is about
/// 6.5 MB, at most 19.1 MB with every bound reached); an entry has at most
/// kMaxLocalEndpoints local candidates plus one reflexive endpoint; a name is a DNS label of
/// 1..kMaxNameLength characters.
inline constexpr std::size_t kMaxNodes = 65536;
inline constexpr std::size_t kMaxLocalEndpoints = 8;
inline constexpr std::size_t kMaxNameLength = 63;
/// The largest IPv4 collision index an entry may carry (AddressPlan::assign_v4's default).
inline constexpr std::uint32_t kMaxV4Index = 1024;
/// Removals the coordinator remembers for diff(); older versions get ESTALE (full snapshot).
inline constexpr std::size_t kMaxTombstones = 4096;

/// True for a mesh node name: a DNS label (RFC 1035 §2.3.1, RFC 1123 §2.1) of 1..63 lower-case
/// letters, digits and '-', neither starting nor ending with '-'. Lower case only, so that the
/// name in the roster is the one DNS answers for (DNS compares case-insensitively).
[[nodiscard]] bool valid_node_name(std::string_view name);

enum class NodeState : std::uint8_t {
  kActive = 0,
  /// Revoked at the coordinator: peers drop the node's WireGuard peer and the relay refuses
  /// it, but the entry (and so its IPv4 address) stays reserved until it is removed.
  kRevoked = 1,
};

/// One node as every other node sees it.
struct NodeEntry {
  std::string name;
  crypto::PublicKey key;
  NodeState state = NodeState::kActive;
  std::uint32_t v4_index = 0;  ///< collision index of AddressPlan::v4
  net::IpAddress v4;           ///< AddressPlan::v4(key base64, v4_index)
  net::IpAddress v6;           ///< AddressPlan::v6(key base64)
  /// Host candidates: the node's own addresses and WireGuard port (<= kMaxLocalEndpoints).
  std::vector<net::Endpoint> local_endpoints;
  /// Server-reflexive candidate: what the coordinator's STUN server saw.
  std::optional<net::Endpoint> reflexive;

  friend bool operator==(const NodeEntry&, const NodeEntry&) = default;
};

/// An entry with the addresses `plan` derives for `key` and `v4_index`, no endpoints.
[[nodiscard]] NodeEntry make_entry(const AddressPlan& plan, std::string name,
                                   const crypto::PublicKey& key, std::uint32_t v4_index = 0);

/// Checks one entry on its own: the name, the state, the index, the addresses against `plan`'s
/// derivation, the endpoints (count, port != 0, no unspecified address). EINVAL naming what is
/// wrong.
[[nodiscard]] Status validate_entry(const AddressPlan& plan, const NodeEntry& entry);

/// A change from one roster version to another (or a full snapshot). Entries are sorted by key.
struct RosterDelta {
  bool full = false;               ///< a snapshot: replaces everything; from_version is 0
  std::uint64_t from_version = 0;  ///< the version the receiver must hold (not for full)
  std::uint64_t to_version = 0;    ///< the version the receiver holds afterwards
  std::vector<NodeEntry> added;
  std::vector<NodeEntry> changed;  ///< whole entries: replace the receiver's entry for the key
  std::vector<crypto::PublicKey> removed;

  bool empty() const { return added.empty() && changed.empty() && removed.empty(); }
  friend bool operator==(const RosterDelta&, const RosterDelta&) = default;
};

/// The roster, on the coordinator (the source of truth, which mutates it and answers diff())
/// and on each node (a copy that only apply() changes). Version 0 is the empty roster.
class Roster {
 public:
  explicit Roster(AddressPlan plan = AddressPlan()) : plan_(std::move(plan)) {}

  std::uint64_t version() const { return version_; }
  std::size_t size() const { return nodes_.size(); }
  const AddressPlan& plan() const { return plan_; }
  /// The entry for `key`, or null. Valid until the next mutation.
  const NodeEntry* find(const crypto::PublicKey& key) const;
  /// Every entry, ordered by key.
  const std::map<crypto::PublicKey, NodeEntry>& nodes() const { return nodes_; }

  // Coordinator side. Each successful call is one version step.

  /// Adds `entry` or replaces the entry with its key. Errors: validate_entry's; EEXIST when
  /// another node has its name or IPv4 address; E2BIG when the roster is full.
  [[nodiscard]] Status upsert(NodeEntry entry);
  /// Marks the node revoked (its endpoints are dropped: nobody should dial it). ENOENT if absent.
  [[nodiscard]] Status revoke(const crypto::PublicKey& key);
  /// Removes the node. ENOENT if absent.
  [[nodiscard]] Status remove(const crypto::PublicKey& key);

  /// What a holder of `from_version` needs to reach version(): the entries added since (they
  /// did not exist at from_version), changed since, and removed since (existed at from_version).
  /// An empty delta when from_version == version(). diff(0) is the full snapshot. ESTALE when
  /// from_version is newer than version() or older than the removals this roster remembers
  /// (kMaxTombstones): the node must then take diff(0).
  [[nodiscard]] Result<RosterDelta> diff(std::uint64_t from_version) const;

  // Node side.

  /// Applies `delta` as a whole or not at all (see the header comment for the errors). A full
  /// delta replaces the roster; any other must start at version().
  [[nodiscard]] Status apply(const RosterDelta& delta);

 private:
  struct Meta {
    std::uint64_t created = 0;  ///< version that added the entry
    std::uint64_t changed = 0;  ///< version of the last change (== created when none)
  };
  struct Tombstone {
    crypto::PublicKey key;
    std::uint64_t created = 0;
    std::uint64_t removed = 0;
  };

  Status apply_full(const RosterDelta& delta);
  void index_add(const NodeEntry& e);
  void index_remove(const NodeEntry& e);
  void forget_tombstone(const crypto::PublicKey& key);
  void add_tombstone(const crypto::PublicKey& key, std::uint64_t removed);

  AddressPlan plan_;
  std::uint64_t version_ = 0;
  std::map<crypto::PublicKey, NodeEntry> nodes_;
  // Who holds each name and IPv4 address: uniqueness checks in O(log n).
  std::map<std::string, crypto::PublicKey, std::less<>> names_;
  std::map<net::IpAddress, crypto::PublicKey> v4s_;
  void touch(const crypto::PublicKey& key, std::uint64_t version, bool created);

  std::map<crypto::PublicKey, Meta> meta_;                           // bookkeeping for diff()
  std::set<std::pair<std::uint64_t, crypto::PublicKey>> by_change_;  // (meta.changed, key)
  std::vector<Tombstone> tombstones_;  // oldest first, at most kMaxTombstones
  std::uint64_t horizon_ = 0;          ///< diff() answers from versions >= horizon_
};

// Wire format (big-endian; docs/MESH.md, "Roster wire format"):
//
//   delta    = magic "WRST" | format 1 (u8) | flags (u8: bit 0 full) | from (u64) | to (u64)
//              | count (u32) entry*  (added)  | count (u32) entry*  (changed)
//              | count (u32) key*    (removed)
//   entry    = key (32) | name length (u8) name | state (u8) | v4 index (u16) | v4 (4)
//              | v6 (16) | flags (u8: bit 0 reflexive) | [endpoint] | local count (u8) endpoint*
//   endpoint = family (u8: 4 or 6) | address (4 or 16) | port (u16)

inline constexpr std::array<std::uint8_t, 4> kRosterMagic = {'W', 'R', 'S', 'T'};
inline constexpr std::uint8_t kRosterFormat = 1;
inline constexpr std::size_t kRosterHeaderSize = 4 + 1 + 1 + 8 + 8;

/// The bytes of `delta`. Precondition: the lists hold at most kMaxNodes each and every entry
/// has a name of 1..kMaxNameLength bytes, at most kMaxLocalEndpoints endpoints and an index that
/// fits 16 bits — true of everything diff() returns, since a Roster holds only entries that
/// passed validate_entry (checked by assert). Otherwise entries are written as they are; their
/// checks are apply()'s job on the receiving side.
[[nodiscard]] std::vector<std::uint8_t> encode_delta(const RosterDelta& delta);

/// Reads a delta. EBADMSG naming the first problem: too short, magic, format, flags, a count
/// above its bound or larger than the bytes that follow could hold, a truncated entry, a name
/// length of 0 or above kMaxNameLength, a state, endpoint family or flag bit that is not
/// defined, port 0, bytes after the end. Names, addresses and duplicates are checked by
/// apply(), not here.
[[nodiscard]] Result<RosterDelta> decode_delta(ConstBytes bytes);

}  // namespace warren::mesh
