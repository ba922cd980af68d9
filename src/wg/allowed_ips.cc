#include "wg/allowed_ips.h"

#include <algorithm>
#include <bit>
#include <new>

namespace warren::wg {
namespace detail {
namespace {

// Number of leading bits on which a and b agree.
unsigned common_bits(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<unsigned>(std::countl_zero(a ^ b));  // 32 when equal
}

unsigned common_bits(Uint128 a, Uint128 b) noexcept {
  const Uint128 x = a ^ b;
  const auto hi = static_cast<std::uint64_t>(x >> 64);
  const auto lo = static_cast<std::uint64_t>(x);
  // std::countl_zero does not accept __int128 in strict C++20 mode, hence the split.
  return hi != 0 ? static_cast<unsigned>(std::countl_zero(hi))
                 : 64 + static_cast<unsigned>(std::countl_zero(lo));
}

}  // namespace

template <typename Key>
void PrefixTrie<Key>::reserve_nodes(std::size_t count) {
  // Insert needs up to two fresh nodes; securing them up front keeps insert all-or-nothing.
  if (free_count_ + (nodes_.capacity() - nodes_.size()) >= count &&
      free_count_ + (links_.capacity() - links_.size()) >= count) {
    return;
  }
  if (nodes_.size() + count > kNil) {
    throw std::bad_alloc();  // indices are 32-bit; 2^32 nodes would be ~100 GiB anyway
  }
  const std::size_t want = std::max<std::size_t>({nodes_.size() * 2, nodes_.size() + count, 16});
  nodes_.reserve(want);
  links_.reserve(want);
}

template <typename Key>
std::uint32_t PrefixTrie<Key>::allocate(Key key, unsigned length) noexcept {
  Node node;
  node.key = key;
  node.length = static_cast<std::uint8_t>(length);
  if (free_head_ != kNil) {
    const std::uint32_t index = free_head_;
    free_head_ = links_[index].parent;
    --free_count_;
    nodes_[index] = node;
    links_[index] = Links{};
    return index;
  }
  // Capacity was reserved by reserve_nodes, so neither push_back can throw.
  nodes_.push_back(node);
  links_.push_back(Links{});
  return static_cast<std::uint32_t>(nodes_.size() - 1);
}

template <typename Key>
void PrefixTrie<Key>::release(std::uint32_t index) noexcept {
  // The free list is threaded through the dead nodes' links, so removal never allocates.
  nodes_[index] = Node{};
  links_[index] = Links{};
  links_[index].parent = free_head_;
  free_head_ = index;
  ++free_count_;
}

template <typename Key>
void PrefixTrie<Key>::attach(std::uint32_t parent, std::uint32_t child) noexcept {
  links_[child].parent = parent;
  if (parent == kNil) {
    root_ = child;
  } else {
    nodes_[parent].child[bit(nodes_[child].key, nodes_[parent].length)] = child;
  }
}

template <typename Key>
void PrefixTrie<Key>::replace_child(std::uint32_t parent, std::uint32_t old_child,
                                    std::uint32_t new_child) noexcept {
  if (parent == kNil) {
    root_ = new_child;
  } else {
    auto& slots = nodes_[parent].child;
    slots[slots[0] == old_child ? 0 : 1] = new_child;
  }
  if (new_child != kNil) {
    links_[new_child].parent = parent;
  }
}

template <typename Key>
void PrefixTrie<Key>::set_peer(std::uint32_t index, PeerId peer) noexcept {
  Node& node = nodes_[index];
  if (node.has_peer) {
    if (node.peer == peer) {
      return;
    }
    unlink_peer(index);
  } else {
    ++size_;
  }
  node.has_peer = true;
  node.peer = peer;
  // insert() created the map entry before touching the trie, so this lookup finds it.
  std::uint32_t& head = peer_heads_.find(peer)->second;
  links_[index].peer_prev = kNil;
  links_[index].peer_next = head;
  if (head != kNil) {
    links_[head].peer_prev = index;
  }
  head = index;
}

template <typename Key>
void PrefixTrie<Key>::unlink_peer(std::uint32_t index) noexcept {
  Links& links = links_[index];
  if (links.peer_next != kNil) {
    links_[links.peer_next].peer_prev = links.peer_prev;
  }
  if (links.peer_prev != kNil) {
    links_[links.peer_prev].peer_next = links.peer_next;
  } else if (links.peer_next != kNil) {
    peer_heads_.find(nodes_[index].peer)->second = links.peer_next;
  } else {
    peer_heads_.erase(nodes_[index].peer);  // the peer's last prefix: no empty lists in the map
  }
  links.peer_prev = links.peer_next = kNil;
}

template <typename Key>
void PrefixTrie<Key>::erase_value(std::uint32_t index) noexcept {
  unlink_peer(index);
  nodes_[index].has_peer = false;
  --size_;
  // Restore the invariant that a node without a peer has two children. Dropping a leaf can leave
  // its parent, if that was a branch point, with one child: splice it out as well. Splicing out a
  // one-child node does not change its parent's child count, so the walk stops there.
  for (;;) {
    const Node& node = nodes_[index];
    if (node.has_peer || (node.child[0] != kNil && node.child[1] != kNil)) {
      return;
    }
    const std::uint32_t parent = links_[index].parent;
    const std::uint32_t only = node.child[0] != kNil ? node.child[0] : node.child[1];
    replace_child(parent, index, only);
    release(index);
    if (only != kNil || parent == kNil) {
      return;
    }
    index = parent;
  }
}

template <typename Key>
std::uint32_t PrefixTrie<Key>::find_exact(Key key, unsigned length) const noexcept {
  std::uint32_t index = root_;
  while (index != kNil) {
    const Node& node = nodes_[index];
    if (node.length > length || ((node.key ^ key) & mask(node.length)) != 0) {
      return kNil;
    }
    if (node.length == length) {
      return index;  // keys are masked, so matching on `length` bits means equal
    }
    index = node.child[bit(key, node.length)];
  }
  return kNil;
}

template <typename Key>
void PrefixTrie<Key>::insert(Key key, unsigned length, PeerId peer) {
  length = std::min(length, kBits);
  key &= mask(length);
  // Everything that can throw happens before the trie changes.
  reserve_nodes(2);
  peer_heads_.try_emplace(peer, kNil);

  // Walk down through the nodes whose prefix contains the new one. `down` ends as the first node
  // on the path that does not (or kNil), `parent` as the last that does.
  std::uint32_t parent = kNil;
  std::uint32_t down = root_;
  while (down != kNil) {
    const Node& node = nodes_[down];
    if (node.length > length || ((node.key ^ key) & mask(node.length)) != 0) {
      break;
    }
    if (node.length == length) {
      set_peer(down, peer);  // existing prefix (or branch point): take it over
      return;
    }
    parent = down;
    down = node.child[bit(key, node.length)];
  }

  const std::uint32_t fresh = allocate(key, length);
  set_peer(fresh, peer);
  if (down == kNil) {
    attach(parent, fresh);
    return;
  }
  // `down` and the new prefix share `parent`'s prefix and the next bit (they sit in the same
  // slot), and diverge at `common` unless the new prefix is a prefix of `down`.
  const unsigned common = std::min(length, common_bits(nodes_[down].key, key));
  if (common == length) {
    replace_child(parent, down, fresh);
    attach(fresh, down);
    return;
  }
  const std::uint32_t branch = allocate(key & mask(common), common);
  replace_child(parent, down, branch);
  attach(branch, down);
  attach(branch, fresh);
}

template <typename Key>
bool PrefixTrie<Key>::remove(Key key, unsigned length, PeerId peer) noexcept {
  length = std::min(length, kBits);
  const std::uint32_t index = find_exact(key & mask(length), length);
  if (index == kNil || !nodes_[index].has_peer || nodes_[index].peer != peer) {
    return false;
  }
  erase_value(index);
  return true;
}

template <typename Key>
void PrefixTrie<Key>::remove_peer(PeerId peer) noexcept {
  for (auto it = peer_heads_.find(peer); it != peer_heads_.end(); it = peer_heads_.find(peer)) {
    erase_value(it->second);
  }
}

template <typename Key>
void PrefixTrie<Key>::clear() noexcept {
  // Swap with empties so the memory is returned, not just the elements destroyed.
  std::vector<Node>().swap(nodes_);
  std::vector<Links>().swap(links_);
  free_head_ = kNil;
  free_count_ = 0;
  std::unordered_map<PeerId, std::uint32_t>().swap(peer_heads_);
  root_ = kNil;
  size_ = 0;
}

template class PrefixTrie<std::uint32_t>;
template class PrefixTrie<Uint128>;

}  // namespace detail

void AllowedIps::insert(const net::Prefix& prefix, PeerId peer) {
  if (prefix.address.is_v4()) {
    v4_.insert(detail::v4_key(prefix.address), prefix.length, peer);
  } else {
    v6_.insert(detail::v6_key(prefix.address), prefix.length, peer);
  }
}

bool AllowedIps::remove(const net::Prefix& prefix, PeerId peer) noexcept {
  return prefix.address.is_v4() ? v4_.remove(detail::v4_key(prefix.address), prefix.length, peer)
                                : v6_.remove(detail::v6_key(prefix.address), prefix.length, peer);
}

void AllowedIps::remove_peer(PeerId peer) noexcept {
  v4_.remove_peer(peer);
  v6_.remove_peer(peer);
}

std::vector<net::Prefix> AllowedIps::prefixes_of(PeerId peer) const {
  std::vector<net::Prefix> out;
  v4_.for_each_of(peer, [&](std::uint32_t key, unsigned length) {
    out.push_back(net::Prefix{net::IpAddress::v4(key), static_cast<std::uint8_t>(length)});
  });
  v6_.for_each_of(peer, [&](detail::Uint128 key, unsigned length) {
    std::array<std::uint8_t, 16> bytes{};
    for (int i = 15; i >= 0; --i) {
      bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(key);
      key >>= 8;
    }
    out.push_back(net::Prefix{net::IpAddress::v6(bytes), static_cast<std::uint8_t>(length)});
  });
  // IpAddress orders by family first (v4 < v6), then bytes; Prefix then by length.
  std::sort(out.begin(), out.end());
  return out;
}

void AllowedIps::clear() noexcept {
  v4_.clear();
  v6_.clear();
}

}  // namespace warren::wg
