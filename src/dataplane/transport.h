#pragma once
/// PathTransport: the seam between the engine and whatever carries a peer's WireGuard datagrams.
///
///   wg::Device ──Outbox entry (Path, datagram)──► worker ──Path::transport──► transport.send()
///   transport ──poll_fd readable──► owning worker ──receive(bufs, sizes, paths)──► decapsulate
///
/// A peer's endpoint is a net::Path whose `transport` tag picks the carrier: 0 is UDP (the
/// engine's per-worker sockets, net::Path::remote a UDP endpoint); the engine gives every
/// transport added with Engine::add_transport() a tag of its own (1, 2, ...). The protocol core
/// never looks at the tag: it stores, copies and compares it as part of the address, so roaming
/// between transports is an ordinary endpoint change (authenticated packets only), and the core
/// needs no change for a new transport. The contract (docs/ARCHITECTURE.md, "The path seam"):
///
///  * Datagrams: whole WireGuard messages, up to platform::kMaxPacketSize bytes; the transport
///    delivers each one whole or not at all (loss, duplication and reordering are the protocol's
///    business, as over UDP). A transport that adds overhead or has a smaller payload limit
///    drops what does not fit and counts it; the interface MTU is the operator's to lower.
///  * send(): called by any worker thread, possibly concurrently (it must be thread-safe), with
///    a batch of datagrams in the order the worker wants them on the wire, all carrying this
///    transport's tag. It must not block for long (a worker's whole loop waits on it) and must
///    not call back into the engine or the Device. It returns how many were sent (in order);
///    the rest count as send errors. `source_dropped` may be set on a datagram to say that its
///    Path's `local` no longer works (the engine then makes the Device forget that source).
///  * receive(): called only by the owning worker (worker 0), when poll_fd(source) is readable
///    or in a pump; non-blocking; it fills bufs/sizes/paths like platform::UdpBind::receive
///    (sizes[i] == 0 marks a datagram that did not fit). The paths it reports identify the
///    sender the way send() expects them back; the engine stamps the tag on them. Received
///    datagrams then take exactly the UDP path: lane_of, the handshake queue, decapsulate.
///  * poll_fd(source) stays readable while receive(source) has datagrams (level-triggered).
///  * Errors: a failed send is counted and the datagrams are lost (the protocol retries); a
///    receive error other than EAGAIN is logged at debug level and the source polled again.
///
/// Thread-safety: see send() and receive() above; the engine owns the transport and destroys it
/// after its workers stopped.

#include <cstddef>
#include <span>

#include "base/bytes.h"
#include "net/ip_address.h"
#include "platform/batch.h"
#include "platform/udp.h"

namespace warren::dataplane {

class PathTransport {
 public:
  virtual ~PathTransport() = default;

  /// Number of pollable receive sources (0 for a send-only transport).
  virtual std::size_t source_count() const = 0;
  /// Readable when receive(source, ...) may return datagrams. Owned by the transport.
  virtual int poll_fd(std::size_t source) const = 0;
  /// As platform::UdpBind::receive; the owning worker only.
  virtual platform::BatchResult receive(std::size_t source, std::span<const Bytes> bufs,
                                        std::span<std::size_t> sizes,
                                        std::span<net::Path> paths) = 0;
  /// Sends the datagrams in order (any worker, concurrently). `count` is the number sent.
  virtual platform::BatchResult send(std::span<platform::OutDatagram> datagrams) = 0;
};

/// Tag of the engine's UDP sockets in net::Path::transport.
inline constexpr std::uint8_t kUdpTransport = 0;

}  // namespace warren::dataplane
