#pragma once
/// Connection tracking: forgetting what the kernel remembers about an address that changes
/// hands (libnetfilter_conntrack on Linux, in the caller's network namespace).
///
/// When the server frees a client's tunnel address (revoke, idle release), the kernel's
/// conntrack table still holds that client's flows: NAT mappings whose replies would be
/// translated back to the address, and entries that firewall rules (`ct state established`)
/// let through. Whoever holds the address next must not inherit them, so the server forgets
/// every entry that names the address, in any of the four places an entry can:
///
///   original tuple  src = A   a flow the client opened (through NAT: its masqueraded flows)
///                   dst = A   a flow opened to the client (by another client, by the server)
///   reply tuple     src = A   a flow DNAT'ed to the client (a port forward)
///                   dst = A   a flow SNAT'ed to the client's address
///
/// IPv4 and IPv6 alike (an IPv4-mapped IPv6 address is the IPv4 address), every protocol and
/// every conntrack zone. Entries of other addresses are left alone.

#include <cstddef>
#include <memory>
#include <span>

#include "base/result.h"
#include "net/ip_address.h"

namespace warren::platform {

class Conntrack {
 public:
  virtual ~Conntrack() = default;
  /// Deletes every entry of this network namespace's table that names one of `addresses`
  /// (see above) and returns how many were deleted. One pass over the table per address
  /// family, however many addresses: an idle release of hundreds of leases costs two dumps.
  /// An entry that ends by itself meanwhile is no error. Safe to call from any thread
  /// (requests are serialised).
  [[nodiscard]] virtual warren::Result<std::size_t> forget(
      std::span<const net::IpAddress> addresses) = 0;
};

/// Opens the ctnetlink socket of the calling thread's network namespace. Fails (EPERM) without
/// CAP_NET_ADMIN; EPROTONOSUPPORT when the kernel has no conntrack netlink interface, in which
/// case there is no table to clean either.
warren::Result<std::unique_ptr<Conntrack>> open_conntrack();

}  // namespace warren::platform
