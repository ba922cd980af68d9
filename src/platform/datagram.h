#pragma once
/// DatagramSocket: one plain, non-blocking UDP socket bound to one address and port — the
/// server's DNS resolver on its tunnel address (runtime/dns_service.h) and its socket towards
/// the upstream resolvers. (The tunnel's own sockets are UdpBind, platform/udp.h: batched,
/// wildcard, with offloads; none of that is wanted here.) Linux: linux/datagram_linux.cc.
///
///   open_datagram_socket(10.8.0.1:53) ──► socket ──receive()──► {bytes, from}
///                                               ──send(bytes, to)
///
/// Errors are warren::Error with the errno value. One thread drives a socket.

#include <cstddef>
#include <memory>

#include "base/bytes.h"
#include "base/result.h"
#include "net/ip_address.h"
#include "platform/unique_fd.h"

namespace warren::platform {

struct ReceivedDatagram {
  std::size_t size = 0;    ///< bytes stored in the caller's buffer
  net::Endpoint from;      ///< IPv4-mapped IPv6 senders come back as IPv4
  bool truncated = false;  ///< the datagram was longer than the buffer (the rest is lost)
};

class DatagramSocket {
 public:
  explicit DatagramSocket(UniqueFd fd, net::Endpoint local) : fd_(std::move(fd)), local_(local) {}
  /// Readable when receive() may return a datagram. Owned by the socket.
  int poll_fd() const { return fd_.get(); }
  /// The bound address and port (the port the kernel picked when 0 was asked for).
  const net::Endpoint& local() const { return local_; }
  /// One datagram without waiting; EAGAIN when there is none.
  [[nodiscard]] Result<ReceivedDatagram> receive(Bytes buffer);
  /// Sends one datagram without waiting (EAGAIN when the socket buffer is full: DNS retries).
  [[nodiscard]] Status send(ConstBytes data, const net::Endpoint& to);

 private:
  UniqueFd fd_;
  net::Endpoint local_;
};

/// A UDP socket bound to `local` (port 0: any free port; IPv6 sockets are v6-only).
/// EADDRNOTAVAIL when the address is not the host's, EADDRINUSE when the port is taken.
[[nodiscard]] Result<std::unique_ptr<DatagramSocket>> open_datagram_socket(
    const net::Endpoint& local);

}  // namespace warren::platform
