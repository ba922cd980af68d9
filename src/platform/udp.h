#pragma once
/// UdpBind: the tunnel's UDP sockets (wireguard-go's conn.Bind), batched.
///
/// One bind is one IPv4 socket and one IPv6-only socket on the same port. Every received
/// datagram reports its Path: the remote endpoint and the local address + interface it arrived
/// on (IP_PKTINFO / IPV6_PKTINFO). A send whose Path has a local address uses it as the source
/// ("sticky source", protocol doc §1.12) so replies leave from the address the peer used; if
/// that address is no longer usable the datagram is retried once without it and marked
/// `source_dropped`, so the caller can forget the stale source.
///
/// Several binds may share one port (`reuse_port`, SO_REUSEPORT): the kernel hashes each remote
/// 4-tuple to one of them, so each worker can own a bind and one peer stays on one worker.
///
/// Thread-safety: a bind is driven by one thread at a time (receive/send share preallocated
/// message arrays). port(), fwmark() and set_fwmark() may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "base/bytes.h"
#include "net/ip_address.h"
#include "platform/batch.h"
#include "platform/result.h"

namespace warren::platform {

struct BindOptions {
  std::uint16_t port = 0;  ///< 0 = any free port (the same one for both families)
  std::uint32_t fwmark = 0;
  bool ipv4 = true;
  bool ipv6 = true;
  /// Join the port's SO_REUSEPORT group (workers sharing one port).
  bool reuse_port = false;
  /// With reuse_port: first make sure no other socket holds the port (probing without
  /// SO_REUSEPORT), so that a second daemon cannot silently share our port. The first bind of a
  /// group sets it; the others join with the port it got.
  bool exclusive = true;
  /// Socket buffer size in bytes (forced past rmem_max/wmem_max when privileged).
  int buffer_bytes = 7 << 20;
};

/// A datagram to send. `source_dropped` is an output.
struct OutDatagram {
  ConstBytes data;
  net::Path path;
  bool source_dropped = false;
};

class UdpBind {
 public:
  virtual ~UdpBind() = default;

  /// The bound port (never 0 once open).
  virtual std::uint16_t port() const = 0;
  virtual std::uint32_t fwmark() const = 0;
  /// Sets SO_MARK on every socket (0 clears it). Needs CAP_NET_ADMIN for non-zero marks.
  virtual Status set_fwmark(std::uint32_t mark) = 0;

  /// Number of sockets (1 or 2); index them for poll_fd() and receive().
  virtual std::size_t socket_count() const = 0;
  /// Readable when receive(socket, ...) may return datagrams. Owned by the bind.
  virtual int poll_fd(std::size_t socket) const = 0;

  /// Receives up to min(bufs.size(), sizes.size(), paths.size(), kMaxBatch) datagrams from
  /// `socket` without blocking. sizes[i] == 0 marks a datagram that did not fit (dropped).
  virtual BatchResult receive(std::size_t socket, std::span<const Bytes> bufs,
                              std::span<std::size_t> sizes, std::span<net::Path> paths) = 0;

  /// Sends every datagram, each to its own path, in batches. A full socket buffer is waited
  /// for briefly (back-pressure), then the rest is dropped. `count` is the number sent.
  virtual BatchResult send(std::span<OutDatagram> datagrams) = 0;
};

/// Opens binds; the system one creates kernel sockets, the fake one in-memory endpoints.
class BindFactory {
 public:
  virtual ~BindFactory() = default;
  /// Fails with EADDRINUSE when the port is taken, EACCES/EPERM for privileged options.
  virtual Result<std::unique_ptr<UdpBind>> open(const BindOptions& options) = 0;
};

/// The kernel's UDP sockets.
std::unique_ptr<BindFactory> make_system_bind_factory();

}  // namespace warren::platform
