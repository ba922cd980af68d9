#pragma once
/// TunDevice: the layer-3 tunnel interface, as one or more packet queues.
///
/// Each queue is an independent descriptor (IFF_MULTI_QUEUE on Linux); the kernel steers each
/// flow to one queue, so a worker that owns a queue sees a flow's packets in order. Packets
/// are raw IPv4/IPv6 (no packet-information header, no virtio header unless `vnet_hdr`).
///
/// Thread-safety: one thread per queue may call read()/write() on that queue concurrently with
/// the other queues' owners. name(), ifindex(), queue_count() and poll_fd() are immutable.
/// mtu()/set_mtu() may be called from any thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/bytes.h"
#include "base/result.h"
#include "platform/batch.h"

namespace warren::platform {

struct TunOptions {
  std::string name;        ///< at most 15 bytes; "" lets the kernel pick ("tun%d")
  std::size_t queues = 1;  ///< > 1 requests a multi-queue device, one descriptor per queue
  /// Ask for IFF_VNET_HDR with TSO (and USO where the kernel has it). When the kernel refuses
  /// the offloads the device is created without them; vnet_hdr()/offloads() tell.
  bool vnet_hdr = false;
  std::uint32_t mtu = 0;  ///< set at creation when non-zero
};

/// What the kernel accepted for a TUN device.
struct TunOffloadState {
  bool vnet_hdr = false;  ///< frames carry a virtio-net header (super-packets possible)
  bool tso = false;       ///< TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6: TCP split on read, GRO on write
  bool uso = false;       ///< TUN_F_USO4 | TUN_F_USO6 (Linux >= 6.2): UDP as well
  /// "tso,uso", "tso", or "off".
  std::string to_string() const;
};

/// Offload counters, summed over the queues (monotonic).
struct TunOffloadStats {
  std::uint64_t super_packets_read = 0;     ///< GSO frames split on read
  std::uint64_t segments_read = 0;          ///< packets those frames became
  std::uint64_t malformed_dropped = 0;      ///< frames with a bad virtio header, dropped
  std::uint64_t super_packets_written = 0;  ///< coalesced frames written
  std::uint64_t segments_written = 0;       ///< packets in those frames
  std::uint64_t super_packets_refused = 0;  ///< coalesced frames the kernel refused (EINVAL),
                                            ///< sent again packet by packet
};

class TunDevice {
 public:
  virtual ~TunDevice() = default;

  virtual const std::string& name() const = 0;
  virtual std::uint32_t ifindex() const = 0;
  virtual std::size_t queue_count() const = 0;
  /// Readable when read(queue, ...) may return packets. Owned by the device.
  virtual int poll_fd(std::size_t queue) const = 0;
  virtual bool vnet_hdr() const { return false; }
  virtual TunOffloadState offloads() const { return {}; }
  virtual TunOffloadStats offload_stats() const { return {}; }

  /// False once the interface has been deleted. A TUN moved to another network namespace still
  /// exists (the old namespace sees RTM_DELLINK for it, which alone means nothing).
  virtual bool exists() const = 0;

  virtual Result<std::uint32_t> mtu() const = 0;
  virtual Status set_mtu(std::uint32_t mtu) = 0;

  /// Reads up to min(bufs.size(), sizes.size(), kMaxBatch) packets from `queue`, one per
  /// buffer: packet i lands at bufs[i][offset, offset + sizes[i]). `offset` is headroom for
  /// in-place encapsulation. A buffer shorter than offset + the packet truncates it; callers
  /// size buffers for kMaxPacketSize. Never blocks.
  ///
  /// With vnet_hdr, one kernel frame may become many packets. When the buffers run out in the
  /// middle of a super-packet the rest is kept for the next call, which returns it before
  /// reading the descriptor again, and poll_fd(queue) stays readable until it has been handed
  /// out: a level-triggered poller that calls read() once per readiness loses nothing. Frames
  /// with a malformed virtio header are dropped and counted (offload_stats()).
  virtual BatchResult read(std::size_t queue, std::span<const Bytes> bufs,
                           std::span<std::size_t> sizes, std::size_t offset) = 0;

  /// Writes each packet to `queue`. Per-packet failures (an invalid packet, a down interface)
  /// are dropped and counted out of `count`; `gone` reports a deleted interface. With
  /// vnet_hdr, consecutive segments of a flow in `packets` go out as one super-packet; `count`
  /// still counts packets. The packets need not outlive the call.
  virtual BatchResult write(std::size_t queue, std::span<const ConstBytes> packets) = 0;
};

/// Creates (or attaches to) the kernel TUN interface `options.name`. Fails with EPERM/EACCES
/// without privilege, ENOENT when the TUN driver is missing, EBUSY when a single-queue device
/// of that name is in use. If the existing device is single-queue, a multi-queue request falls
/// back to one queue.
Result<std::unique_ptr<TunDevice>> create_tun(const TunOptions& options);

}  // namespace warren::platform
