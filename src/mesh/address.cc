#include "mesh/address.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "crypto/blake2s.h"

namespace warren::mesh {
namespace {

constexpr std::uint32_t kFnvOffsetBasis = 0x811C9DC5u;
constexpr std::uint32_t kFnvPrime = 0x01000193u;

std::uint32_t fnv1a32_continue(std::uint32_t h, std::string_view data) {
  for (unsigned char c : data) {
    h ^= c;
    h *= kFnvPrime;  // unsigned: wraps modulo 2^32 as FNV requires
  }
  return h;
}

}  // namespace

std::uint32_t fnv1a32(std::string_view data) {
  return fnv1a32_continue(kFnvOffsetBasis, data);
}

AddressPlan::AddressPlan()
    : v4_{net::IpAddress::v4(std::array<std::uint8_t, 4>{100, 64, 0, 0}), 10},
      v6_{net::IpAddress::v6(std::array<std::uint8_t, 16>{0x02}), 7} {}

Result<AddressPlan> AddressPlan::create(const net::Prefix& v4, const net::Prefix& v6) {
  if (!v4.address.is_v4())
    return Error(EINVAL, "mesh IPv4 prefix " + v4.to_string() + " is not an IPv4 prefix");
  if (v4.length < 8 || v4.length > 30) {
    return Error(EINVAL, "mesh IPv4 prefix " + v4.to_string() +
                             ": the length must be from 8 to 30 (e.g. 100.64.0.0/10)");
  }
  if (!v6.address.is_v6())
    return Error(EINVAL, "mesh IPv6 prefix " + v6.to_string() + " is not an IPv6 prefix");
  if (v6.length < 1 || v6.length > 64) {
    return Error(EINVAL, "mesh IPv6 prefix " + v6.to_string() +
                             ": the length must be from 1 to 64 (e.g. 200::/7 or a ULA /48)");
  }
  return AddressPlan(v4.canonical(), v6.canonical());
}

net::IpAddress AddressPlan::v4(std::string_view identity, std::uint32_t index) const {
  std::uint32_t h = fnv1a32(identity);
  if (index != 0)  // hashing identity + digits == continuing the identity's hash with them
    h = fnv1a32_continue(h, std::to_string(index));
  const unsigned host_bits = 32u - v4_.length;  // 2..24, see create()
  const std::uint32_t host_mask = (std::uint32_t{1} << host_bits) - 1;
  std::uint32_t host = h & host_mask;
  // Host value 0 is the network's own address and 1 is commonly a gateway's: never a node's.
  if (host < 2)
    host += 2;
  const auto* p = v4_.address.data();
  const std::uint32_t net = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                            (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
  return net::IpAddress::v4((net & ~host_mask) | host);
}

Result<V4Assignment> AddressPlan::assign_v4(std::string_view identity,
                                            const std::function<bool(const net::IpAddress&)>& taken,
                                            std::uint32_t max_index) const {
  for (std::uint32_t i = 0;; ++i) {
    net::IpAddress a = v4(identity, i);
    if (!taken(a))
      return V4Assignment{a, i};
    if (i == max_index)
      break;
  }
  return Error(EADDRNOTAVAIL, "no free mesh IPv4 address in " + v4_.to_string() +
                                  " for this key (indexes 0 to " + std::to_string(max_index) +
                                  " are all taken)");
}

net::IpAddress AddressPlan::v6(std::string_view identity) const {
  std::array<std::uint8_t, crypto::kHashSize> digest{};
  crypto::blake2s_hash(
      {crypto::ByteView(reinterpret_cast<const std::uint8_t*>(identity.data()), identity.size())},
      digest);
  // The prefix rounded up to whole bytes, so that the hash bytes stay byte-aligned: for 200::/7
  // this is exactly "0x02 followed by 15 hash bytes"; the bits between the prefix length and
  // the byte boundary come from the canonical prefix, i.e. they are zero.
  const std::size_t prefix_bytes = (v6_.length + 7u) / 8u;
  std::array<std::uint8_t, 16> out{};
  std::memcpy(out.data(), v6_.address.data(), prefix_bytes);
  std::memcpy(out.data() + prefix_bytes, digest.data(), 16 - prefix_bytes);
  return net::IpAddress::v6(out);
}

net::IpAddress AddressPlan::dns_v4() const {
  const auto* p = v4_.address.data();
  const std::uint32_t net = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                            (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
  return net::IpAddress::v4(net | 1u);  // canonical prefix: host bits are zero
}

net::IpAddress AddressPlan::dns_v6() const {
  std::array<std::uint8_t, 16> out{};
  std::memcpy(out.data(), v6_.address.data(), 16);
  // Lengths are at most 64 (create()), so the low 16 bits are host bits and zero here.
  out[14] = 0x00;
  out[15] = 0x53;
  return net::IpAddress::v6(out);
}

}  // namespace warren::mesh
