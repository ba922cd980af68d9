#pragma once
/// Name resolution (getaddrinfo on Linux: /etc/hosts, DNS, ...), for peer endpoints given as
/// names. Blocking: callers that must stay responsive run it on a thread of their own.

#include <cstdint>
#include <string>

#include "base/result.h"
#include "net/ip_address.h"

namespace warren::platform {

/// `host` (a literal address, returned as is, or a name) and `port` as a UDP endpoint: the
/// first IPv4 or IPv6 address getaddrinfo(AF_UNSPEC, SOCK_DGRAM) returns, as wg does. The error
/// names the host and what the resolver said.
warren::Result<net::Endpoint> resolve_udp(const std::string& host, std::uint16_t port);

}  // namespace warren::platform
