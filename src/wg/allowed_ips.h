#pragma once
/// Cryptokey routing (whitepaper §2): which peer owns an inner IP address, by longest-prefix
/// match over every peer's allowed IPs. Used on send (destination → peer) and on receive (the
/// decrypted packet's source must map back to the peer it came from).

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "net/ip_address.h"

namespace warren::wg {

#ifndef WARREN_WG_PEER_ID_DEFINED
#define WARREN_WG_PEER_ID_DEFINED
/// A Device-local peer handle. Declared here until a peer header owns it; whoever moves it must
/// keep the guard macro so both headers can be included together.
using PeerId = std::uint32_t;
#endif

namespace detail {

__extension__ typedef unsigned __int128 Uint128;

/// A path-compressed binary trie of prefixes over fixed-width big-endian-ordered keys
/// (std::uint32_t for IPv4, Uint128 for IPv6), with a per-peer list threaded through the nodes.
/// Implementation detail of AllowedIps; use that instead.
///
/// Nodes live in one vector and refer to each other by index, so a lookup touches no allocator
/// and a table of n prefixes uses at most 2n - 1 nodes. Every node's key is masked to its own
/// length; a node without a peer (an internal branch point) always has two children.
template <typename Key>
class PrefixTrie {
 public:
  static constexpr unsigned kBits = sizeof(Key) * 8;

  /// `key` must be masked to `length` (<= kBits). Adds the prefix or moves it to `peer`.
  /// Strong exception guarantee (only std::bad_alloc can be thrown).
  void insert(Key key, unsigned length, PeerId peer);
  /// Removes the exact prefix if `peer` owns it.
  bool remove(Key key, unsigned length, PeerId peer) noexcept;
  void remove_peer(PeerId peer) noexcept;
  void clear() noexcept;
  std::size_t size() const noexcept { return size_; }
  /// Nodes in use, including branch points (at most 2 * size() - 1). For tests and statistics.
  std::size_t node_count() const noexcept { return nodes_.size() - free_count_; }

  /// Longest matching prefix's peer. No allocation, no writes.
  std::optional<PeerId> lookup(Key key) const noexcept {
    const Node* nodes = nodes_.data();
    std::uint32_t index = root_;
    PeerId best = 0;
    bool found = false;
    while (index != kNil) {
      const Node& node = nodes[index];
      if (((node.key ^ key) & kMasks[node.length]) != 0) {
        break;
      }
      // Branch-free: whether a node on the path carries a peer is unpredictable.
      best = node.has_peer ? node.peer : best;
      found |= node.has_peer;
      if (node.length == kBits) {
        break;
      }
      index = node.child[bit(key, node.length)];
    }
    return found ? std::optional<PeerId>(best) : std::nullopt;
  }

  /// Calls fn(key, length) for every prefix of `peer`, in no particular order.
  template <typename Fn>
  void for_each_of(PeerId peer, Fn&& fn) const {
    auto it = peer_heads_.find(peer);
    if (it == peer_heads_.end()) {
      return;
    }
    for (std::uint32_t index = it->second; index != kNil; index = links_[index].peer_next) {
      fn(nodes_[index].key, static_cast<unsigned>(nodes_[index].length));
    }
  }

  /// All ones in the first `length` bits.
  static constexpr Key mask(unsigned length) noexcept {
    return length == 0 ? Key{0} : static_cast<Key>(~Key{0} << (kBits - length));
  }

 private:
  static constexpr std::uint32_t kNil = 0xffffffffu;

  static constexpr std::array<Key, kBits + 1> make_masks() noexcept {
    std::array<Key, kBits + 1> masks{};
    for (unsigned i = 0; i <= kBits; ++i) {
      masks[i] = mask(i);
    }
    return masks;
  }
  // mask(length) by table: one L1 load instead of a branch on every node of a lookup.
  static constexpr std::array<Key, kBits + 1> kMasks = make_masks();

  // What a lookup reads, kept small so more of a large table stays in cache (32 bytes for
  // IPv6, 20 for IPv4).
  struct Node {
    Key key{};  // masked to `length`
    std::array<std::uint32_t, 2> child{kNil, kNil};
    PeerId peer = 0;  // valid when has_peer
    std::uint8_t length = 0;
    bool has_peer = false;
  };
  // What only updates need, in a parallel vector.
  struct Links {
    std::uint32_t parent = kNil;     // also the free-list link of a released node
    std::uint32_t peer_prev = kNil;  // the peer's prefix list, when has_peer
    std::uint32_t peer_next = kNil;
  };

  /// Bit `i` (< kBits) counted from the most significant end.
  static unsigned bit(Key key, unsigned i) noexcept {
    return static_cast<unsigned>(key >> (kBits - 1 - i)) & 1u;
  }

  void reserve_nodes(std::size_t count);
  std::uint32_t allocate(Key key, unsigned length) noexcept;
  void release(std::uint32_t index) noexcept;
  void attach(std::uint32_t parent, std::uint32_t child) noexcept;
  void replace_child(std::uint32_t parent, std::uint32_t old_child,
                     std::uint32_t new_child) noexcept;
  void set_peer(std::uint32_t index, PeerId peer) noexcept;
  void unlink_peer(std::uint32_t index) noexcept;
  void erase_value(std::uint32_t index) noexcept;
  std::uint32_t find_exact(Key key, unsigned length) const noexcept;

  std::vector<Node> nodes_;
  std::vector<Links> links_;        // same size as nodes_
  std::uint32_t free_head_ = kNil;  // released nodes, linked through Links::parent
  std::size_t free_count_ = 0;
  std::unordered_map<PeerId, std::uint32_t> peer_heads_;  // peer → first node of its list
  std::uint32_t root_ = kNil;
  std::size_t size_ = 0;
};

extern template class PrefixTrie<std::uint32_t>;
extern template class PrefixTrie<Uint128>;

inline std::uint32_t v4_key(const net::IpAddress& address) noexcept {
  const std::uint8_t* p = address.data();
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline Uint128 v6_key(const net::IpAddress& address) noexcept {
  const std::uint8_t* p = address.data();
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  for (int i = 0; i < 8; ++i) {
    hi = (hi << 8) | p[i];
    lo = (lo << 8) | p[8 + i];
  }
  return (Uint128{hi} << 64) | lo;
}

}  // namespace detail

/// The cryptokey routing table: prefixes of both families, each owned by exactly one peer.
///
/// Prefixes are stored canonically (host bits masked): inserting 192.95.5.93/27 stores
/// 192.95.5.64/27. Address families are matched literally: an IPv4-mapped IPv6 address is looked
/// up in the IPv6 table (unmap it first if that is what you mean).
///
/// Thread-safety: not internally synchronised. `lookup`, `prefixes_of` and `size` are const and
/// only read, so any number of threads may call them concurrently as long as no thread mutates
/// the table at the same time (the Device holds a shared_mutex: shared for lookups, exclusive
/// for insert/remove/clear). The table is copyable, e.g. to build a snapshot.
class AllowedIps {
 public:
  /// Masks host bits; if the prefix exists (any owner) it now belongs to `peer` (a prefix moves
  /// between peers). A length above the family's maximum is treated as the maximum. Strong
  /// exception guarantee (std::bad_alloc only).
  void insert(const net::Prefix& prefix, PeerId peer);
  /// Removes the exact (masked) prefix if it is owned by `peer`; returns whether something was
  /// removed.
  bool remove(const net::Prefix& prefix, PeerId peer) noexcept;
  /// Removes every prefix of `peer`; O(that peer's prefixes).
  void remove_peer(PeerId peer) noexcept;
  /// The peer owning the longest prefix that contains `address`. Allocation-free; on the
  /// per-packet path.
  std::optional<PeerId> lookup(const net::IpAddress& address) const noexcept {
    return address.is_v4() ? v4_.lookup(detail::v4_key(address))
                           : v6_.lookup(detail::v6_key(address));
  }
  /// `peer`'s prefixes, canonical, IPv4 first, then ordered by address and length.
  /// O(k log k) for the peer's k prefixes.
  std::vector<net::Prefix> prefixes_of(PeerId peer) const;
  /// Number of prefixes stored (both families).
  std::size_t size() const noexcept { return v4_.size() + v6_.size(); }
  /// Removes everything and releases the memory.
  void clear() noexcept;

 private:
  detail::PrefixTrie<std::uint32_t> v4_;
  detail::PrefixTrie<detail::Uint128> v6_;
};

}  // namespace warren::wg
