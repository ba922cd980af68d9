#pragma once
/// Mesh addresses derived from node keys (docs/MESH.md, "Addresses"). Pure computation: the
/// same identity gives the same addresses on every node, for as long as the key does not change.
///
/// The identity is the node's public key as base64 text (`crypto::PublicKey::to_base64()`,
/// 44 characters); the bytes of that text are hashed, not the raw key, so that anyone holding
/// a roster can recompute an address with nothing but the text it was given.
///
///   IPv4  prefix (default 100.64.0.0/10) | low (32 - length) bits of FNV-1a-32(identity)
///         (index n > 0: FNV-1a-32(identity + decimal n)); host values 0 and 1 become 2 and 3.
///   IPv6  prefix (default 200::/7) rounded up to whole bytes | the first (16 - bytes) bytes of
///         BLAKE2s-256(identity). For 200::/7 that is 0x02 followed by 15 hash bytes.
///
/// Only IPv4 collides in practice (22 bits for a /10: a 50 % chance of some collision at about
/// 2,400 nodes), so only IPv4 has a collision index; the coordinator picks the lowest free index
/// with `assign_v4` and records it in the roster, and every node then computes the same address
/// with `v4(identity, index)`.

#include <cstdint>
#include <functional>
#include <string_view>

#include "base/result.h"
#include "net/ip_address.h"

namespace warren::mesh {

/// FNV-1a, 32 bits: offset basis 0x811C9DC5, prime 0x01000193, per byte `h ^= b; h *= prime`.
[[nodiscard]] std::uint32_t fnv1a32(std::string_view data);

/// An IPv4 address and the collision index it was derived with (0: the identity alone).
struct V4Assignment {
  net::IpAddress address;
  std::uint32_t index = 0;
};

/// The prefixes mesh addresses live in, validated. Copyable value; thread-compatible.
class AddressPlan {
 public:
  /// 100.64.0.0/10 and 200::/7.
  AddressPlan();

  /// Validates and canonicalises (host bits cleared) the two prefixes. Errors (EINVAL) name
  /// the prefix and the rule: `v4` must be IPv4 with a length from 8 to 30 (at least two host
  /// bits, so that bumping host values 0 and 1 stays inside it; no shorter than /8, which would
  /// claim a large part of the Internet); `v6` must be IPv6 with a length from 1 to 64 (at least
  /// 64 hash bits, so that collisions stay out of reach).
  [[nodiscard]] static Result<AddressPlan> create(const net::Prefix& v4, const net::Prefix& v6);

  const net::Prefix& v4_prefix() const { return v4_; }
  const net::Prefix& v6_prefix() const { return v6_; }

  /// The IPv4 address of `identity` with collision index `index` (0: the identity alone;
  /// n > 0: the identity followed by the decimal digits of n, e.g. "...=" + "2").
  [[nodiscard]] net::IpAddress v4(std::string_view identity, std::uint32_t index = 0) const;

  /// The lowest index i in [0, max_index] whose address `v4(identity, i)` is not `taken`, with
  /// that address. `taken` says whether an address is already used (by another node or by a
  /// service such as the mesh DNS responder); it is called in index order and must not throw.
  /// EADDRNOTAVAIL when every index up to `max_index` is taken (a nearly full prefix).
  [[nodiscard]] Result<V4Assignment> assign_v4(
      std::string_view identity, const std::function<bool(const net::IpAddress&)>& taken,
      std::uint32_t max_index = 1024) const;

  /// The IPv6 address of `identity` (no collision index: see the header comment).
  [[nodiscard]] net::IpAddress v6(std::string_view identity) const;

  /// The fixed addresses of the mesh DNS responder (mesh/names.h, docs/MESH.md "Names"), the
  /// same on every node. IPv4: the prefix's host value 1 (100.64.0.1 for 100.64.0.0/10), which
  /// v4() never gives a node (host values 0 and 1 are bumped). IPv6: the prefix with the low 16
  /// bits 0x0053 (200::53 for 200::/7, fd12:3456:7890::53 for a ULA /48); a node's address is
  /// prefix || hash bytes, so it equals this one only if all of its 64..120 hash bits match
  /// (2^-64 per node at worst), which is treated as impossible.
  [[nodiscard]] net::IpAddress dns_v4() const;
  [[nodiscard]] net::IpAddress dns_v6() const;

 private:
  AddressPlan(net::Prefix v4, net::Prefix v6) : v4_(v4), v6_(v6) {}

  net::Prefix v4_;
  net::Prefix v6_;
};

}  // namespace warren::mesh
