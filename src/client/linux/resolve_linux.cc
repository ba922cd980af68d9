#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "client/resolve.h"

namespace warren::client {

std::optional<net::Endpoint> resolve_endpoint(const HostPort& hp, std::string& error) {
  if (auto a = net::IpAddress::parse(hp.host))
    return net::Endpoint{*a, hp.port};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hp.port);
  int rc = ::getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    error = hp.host + ": " + (rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc));
    return std::nullopt;
  }
  std::optional<net::Endpoint> out;
  for (addrinfo* ai = res; ai && !out; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      auto a = net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr), 4);
      if (a)
        out = net::Endpoint{*a, hp.port};
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      auto a = net::IpAddress::from_bytes(sin6->sin6_addr.s6_addr, 16);
      if (a)
        out = net::Endpoint{*a, hp.port};
    }
  }
  ::freeaddrinfo(res);
  if (!out)
    error = hp.host + ": no IPv4 or IPv6 address";
  return out;
}

}  // namespace warren::client
