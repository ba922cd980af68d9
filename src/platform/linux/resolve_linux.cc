#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "platform/resolve.h"

namespace warren::platform {

warren::Result<net::Endpoint> resolve_udp(const std::string& host, std::uint16_t port) {
  if (auto a = net::IpAddress::parse(host))
    return net::Endpoint{*a, port};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_protocol = IPPROTO_UDP;
  addrinfo* res = nullptr;
  const std::string port_text = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) {
    const int err = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
    return warren::Error(err, host + ": " + (rc == EAI_SYSTEM ? std::strerror(errno)
                                                              : ::gai_strerror(rc)));
  }
  std::optional<net::Endpoint> out;
  for (addrinfo* ai = res; ai && !out; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      auto a = net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr), 4);
      if (a)
        out = net::Endpoint{*a, port};
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      auto a = net::IpAddress::from_bytes(sin6->sin6_addr.s6_addr, 16);
      if (a)
        out = net::Endpoint{*a, port};
    }
  }
  ::freeaddrinfo(res);
  if (!out)
    return warren::Error(EHOSTUNREACH, host + ": no IPv4 or IPv6 address");
  return *out;
}

}  // namespace warren::platform
