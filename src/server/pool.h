#pragma once
/// AddressPool: which addresses of a tunnel prefix may be given to clients, and the lowest
/// free one. Pure (no storage, no locking): the store runs pick() inside its write transaction,
/// which is what makes concurrent enrollments (also from other processes) safe.
///
/// Never assignable: the network address (all host bits zero), the IPv4 broadcast address (all
/// host bits one; /31 and /32 are refused by the config), the server's own address. Reserved
/// addresses are assignable only to their owner: pick() skips them.

#include <cstdint>
#include <optional>
#include <set>

#include "net/ip_address.h"
#include "server/config.h"

namespace warren::server {

class AddressPool {
 public:
  AddressPool(TunnelNetwork network, std::set<net::IpAddress> reserved);

  const TunnelNetwork& network() const { return network_; }
  /// Addresses that can ever be handed out (reserved ones included), saturated at 2^64-1.
  std::uint64_t total() const;
  bool assignable(const net::IpAddress& a) const;
  bool reserved(const net::IpAddress& a) const { return reserved_.count(a) != 0; }
  /// The lowest assignable, unreserved address not in `used`; nullopt when exhausted.
  std::optional<net::IpAddress> pick(const std::set<net::IpAddress>& used) const;

 private:
  TunnelNetwork network_;
  std::set<net::IpAddress> reserved_;
  unsigned host_bits_;
};

}  // namespace warren::server
