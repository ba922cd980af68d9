#pragma once
/// FakeTun: an in-memory TunDevice for tests (wireguard-go's tuntest.ChannelTUN idea).
///
/// The test plays the kernel: inject() puts a packet where read() finds it (as if the host
/// had routed it into the tunnel), and packets the code under test write()s pile up for
/// take_written()/wait_written(). Each queue's poll_fd() is a real descriptor (a Notifier),
/// readable while that queue has packets, so an EventLoop can drive a FakeTun too.
///
/// Offloads: after set_offloads() with vnet_hdr, the fake behaves like a Linux TUN with
/// IFF_VNET_HDR. Injected plain packets arrive as frames with an all-zero virtio header;
/// inject_frame() injects a raw frame (e.g. a TSO super-packet or a malformed header). read()
/// splits frames exactly as the Linux device does (same code, same remainder contract:
/// poll_fd() stays readable while a remainder waits). write() coalesces like the Linux
/// device; take_written() returns the packets as the kernel would segment them again, and
/// take_written_frames() the frames as written (virtio header + packet).
///
/// Thread-safety: every method may be called from any thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/time.h"
#include "net/gso.h"
#include "platform/notifier.h"
#include "platform/tun_device.h"
#include "platform/vnet_split.h"

namespace warren::platform::fake {

using Packet = std::vector<std::uint8_t>;

class FakeTun final : public TunDevice {
 public:
  explicit FakeTun(std::string name = "fake0", std::size_t queues = 1, std::uint32_t mtu = 1420,
                   std::uint32_t ifindex = 100);

  const std::string& name() const override { return name_; }
  std::uint32_t ifindex() const override { return ifindex_; }
  std::size_t queue_count() const override { return queues_.size(); }
  int poll_fd(std::size_t queue) const override { return queues_[queue]->ready.fd(); }
  bool exists() const override;
  Result<std::uint32_t> mtu() const override;
  Status set_mtu(std::uint32_t mtu) override;
  BatchResult read(std::size_t queue, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                   std::size_t offset) override;
  BatchResult write(std::size_t queue, std::span<const ConstBytes> packets) override;
  bool vnet_hdr() const override;
  TunOffloadState offloads() const override;
  TunOffloadStats offload_stats() const override;

  /// Switches the virtio-header mode on (before the first read/write).
  void set_offloads(TunOffloadState state);
  /// A raw frame (virtio header + packet) entering the tunnel; vnet_hdr mode only.
  void inject_frame(std::size_t queue, ConstBytes frame);
  /// Frames written in vnet_hdr mode, oldest first; removes them.
  std::vector<Packet> take_written_frames();

  /// A packet entering the tunnel. Without a queue, the queue is picked from a hash of the IP
  /// source and destination, as the kernel keeps a flow on one queue.
  void inject(ConstBytes packet);
  void inject(std::size_t queue, ConstBytes packet);

  /// Packets written by the code under test, oldest first; removes them.
  std::vector<Packet> take_written();
  std::size_t written_count() const;
  /// Waits until at least `count` written packets are waiting (not yet taken).
  bool wait_written(std::size_t count, Duration timeout);
  /// Packets injected but not read yet, over all queues.
  std::size_t pending() const;

  /// Simulates `ip link del`: reads and writes report `gone`, every poll_fd becomes readable.
  void remove();

 private:
  struct Queue {
    std::mutex mutex;
    std::deque<Packet> inbound;  // frames (with virtio header) in vnet_hdr mode
    Notifier ready;
    Packet current;  // the frame being split
    PendingFrame split;
    std::unique_ptr<net::GroCoalescer> gro;
  };

  BatchResult read_vnet(Queue& q, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                        std::size_t offset);

  std::string name_;
  std::uint32_t ifindex_;
  std::vector<std::unique_ptr<Queue>> queues_;
  mutable std::mutex mutex_;  // guards mtu_, written_, removed_
  std::condition_variable written_cv_;
  std::uint32_t mtu_;
  std::deque<Packet> written_;
  std::deque<Packet> written_frames_;
  bool removed_ = false;
  TunOffloadState offloads_;
  TunOffloadStats stats_;
};

}  // namespace warren::platform::fake
