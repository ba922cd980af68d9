#include "server/pool.h"

#include <limits>

namespace warren::server {
namespace {

__extension__ typedef unsigned __int128 U128;

U128 to_int(const net::IpAddress& a) {
  U128 v = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    v = v << 8 | a.data()[i];
  return v;
}

net::IpAddress from_int(U128 v, bool v4) {
  if (v4)
    return net::IpAddress::v4(static_cast<std::uint32_t>(v));
  std::array<std::uint8_t, 16> b{};
  for (int i = 15; i >= 0; --i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
  return net::IpAddress::v6(b);
}

}  // namespace

AddressPool::AddressPool(TunnelNetwork network, std::set<net::IpAddress> reserved)
    : network_(network),
      reserved_(std::move(reserved)),
      host_bits_(network.prefix.max_length() - network.prefix.length) {}

std::uint64_t AddressPool::total() const {
  if (host_bits_ >= 64)
    return std::numeric_limits<std::uint64_t>::max();
  std::uint64_t n = (std::uint64_t{1} << host_bits_) - 1;  // minus the network address
  if (network_.prefix.address.is_v4())
    n -= 1;      // broadcast
  return n - 1;  // the server
}

bool AddressPool::assignable(const net::IpAddress& a) const {
  if (a.family() != network_.prefix.address.family() || !network_.prefix.contains(a) ||
      a == network_.server_address)
    return false;
  const U128 host = to_int(a) - to_int(network_.prefix.address);
  if (host == 0)
    return false;
  if (a.is_v4() && host == (U128{1} << host_bits_) - 1)
    return false;
  return true;
}

std::optional<net::IpAddress> AddressPool::pick(const std::set<net::IpAddress>& used) const {
  const bool v4 = network_.prefix.address.is_v4();
  const U128 base = to_int(network_.prefix.address);
  const U128 hosts = host_bits_ >= 127 ? ~U128{0} : (U128{1} << host_bits_);
  // Among the first used+reserved+3 host numbers one is free unless the pool is exhausted.
  const U128 limit = std::min<U128>(hosts, U128{used.size()} + reserved_.size() + 3);
  for (U128 off = 1; off < limit; ++off) {
    net::IpAddress a = from_int(base + off, v4);
    if (assignable(a) && !reserved(a) && !used.count(a))
      return a;
  }
  return std::nullopt;
}

}  // namespace warren::server
