// DatagramSocket on Linux (see platform/datagram.h).

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "platform/datagram.h"

namespace warren::platform {
namespace {

socklen_t to_sockaddr(const net::Endpoint& e, sockaddr_storage& ss) {
  ss = {};
  if (e.address.is_v4()) {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(e.port);
    std::memcpy(&s4->sin_addr, e.address.data(), 4);
    return sizeof *s4;
  }
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(e.port);
  std::memcpy(&s6->sin6_addr, e.address.data(), 16);
  return sizeof *s6;
}

net::Endpoint from_sockaddr(const sockaddr_storage& ss) {
  net::Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    e.address =
        *net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&s4->sin_addr), 4);
    e.port = ntohs(s4->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.address =
        net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&s6->sin6_addr), 16)
            ->unmapped();
    e.port = ntohs(s6->sin6_port);
  }
  return e;
}

}  // namespace

Result<ReceivedDatagram> DatagramSocket::receive(Bytes buffer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const ssize_t n = ::recvfrom(fd_.get(), buffer.data(), buffer.size(), MSG_TRUNC,
                               reinterpret_cast<sockaddr*>(&ss), &len);
  if (n < 0)
    return Error::from_errno(errno, "recvfrom");
  ReceivedDatagram r;
  r.from = from_sockaddr(ss);
  r.truncated = static_cast<std::size_t>(n) > buffer.size();
  r.size = r.truncated ? buffer.size() : static_cast<std::size_t>(n);
  return r;
}

Status DatagramSocket::send(ConstBytes data, const net::Endpoint& to) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(to, ss);
  if (to.address.is_v4() != local_.address.is_v4())
    return Error(EAFNOSUPPORT, "cannot send to " + to.to_string() + " from " + local_.to_string());
  if (::sendto(fd_.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&ss), len) < 0)
    return Error::from_errno(errno, "sendto");
  return ok();
}

Result<std::unique_ptr<DatagramSocket>> open_datagram_socket(const net::Endpoint& local) {
  sockaddr_storage ss{};
  const socklen_t len = to_sockaddr(local, ss);
  UniqueFd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return Error::from_errno(errno, "socket");
  int one = 1;
  if (ss.ss_family == AF_INET6 &&
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    return Error::from_errno(errno, "setsockopt(IPV6_V6ONLY)");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return Error::from_errno(errno, "bind");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen) != 0)
    return Error::from_errno(errno, "getsockname");
  return std::make_unique<DatagramSocket>(std::move(fd), from_sockaddr(bound));
}

}  // namespace warren::platform
