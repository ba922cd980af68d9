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
/// Offloads (each per socket, each falling back by itself):
///  * GSO (UDP_SEGMENT): send() turns a run of consecutive datagrams with the same Path and the
///    same size (the last of the run may be shorter) into one super-datagram of at most
///    kGsoMaxSegments segments / kGsoMaxBytes bytes, which the kernel (or the NIC) cuts back
///    into ordinary datagrams. If the kernel refuses it (EIO, EINVAL, ENOPROTOOPT) the run is
///    resent datagram by datagram and the socket stops using GSO (logged once, verbose).
///  * GRO (UDP_GRO): the kernel may hand receive() several datagrams of one flow coalesced;
///    receive() splits them back into the caller's buffers, each an ordinary datagram with its
///    Path. Segments that do not fit in this call's buffers are kept for the next call, and
///    poll_fd() stays readable while any are kept.
///
/// Thread-safety: a bind is driven by one thread at a time (receive/send share preallocated
/// message arrays). port(), fwmark() and set_fwmark() may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "base/bytes.h"
#include "base/result.h"
#include "net/ip_address.h"
#include "platform/batch.h"

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
  /// UDP_SEGMENT on send (see the offloads above).
  bool gso = true;
  /// UDP_GRO on receive.
  bool gro = true;
  /// Test hook: the first GSO send on each socket fails with this errno as if the kernel had
  /// refused it, to exercise the fallback. 0 = off.
  int inject_gso_error = 0;
};

/// Limits of one GSO super-datagram (the kernel's UDP_MAX_SEGMENTS; the largest IPv4 UDP
/// payload).
inline constexpr std::size_t kGsoMaxSegments = 64;
inline constexpr std::size_t kGsoMaxBytes = 65507;

/// Which offloads a socket of a bind currently uses.
struct BindOffloadState {
  bool gso = false;
  bool gro = false;
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
  /// Coalesced (GRO) datagrams come back split, in order; what does not fit is kept for the
  /// next call (EAGAIN only when nothing is kept and the socket is empty).
  virtual BatchResult receive(std::size_t socket, std::span<const Bytes> bufs,
                              std::span<std::size_t> sizes, std::span<net::Path> paths) = 0;

  /// Sends every datagram, each to its own path, in batches. A full socket buffer is waited
  /// for briefly (back-pressure), then the rest is dropped. `count` is the number sent.
  virtual BatchResult send(std::span<OutDatagram> datagrams) = 0;

  /// The offloads `socket` uses now (after any fallback). Binds without offloads say none.
  virtual BindOffloadState offload_state(std::size_t socket) const {
    (void)socket;
    return {};
  }
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
