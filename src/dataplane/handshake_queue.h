#pragma once
/// HandshakeQueue: one worker's bounded queue of received handshake messages, in the lanes of
/// wg::Lane, so that receiving never waits for handshake work.
///
///   recvmmsg batch ─► Device::lane_of ─► kDirect ───────────────► decapsulate now (data)
///                                      └► lane full? ─yes─► drop, counted (early drop)
///                                                    └no─► copy into the lane's ring
///   later, a budget at a time ─► front() (best lane first, oldest first) ─► decapsulate
///
/// Under a flood the socket is still drained at the cost of a copy per datagram, so established
/// peers' data is not lost in a full socket buffer behind handshake work (wireguard-go keeps a
/// handshake queue for the same reason); what cannot be answered is dropped here, as cheaply as
/// possible, and the lanes choose which messages are kept: re-handshakes from known endpoints
/// first, then messages whose mac2 is valid for our current cookie secret (Device::lane_of checks
/// it), then the rest.
///
/// No allocation after construction. Not thread-safe: one worker owns it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "base/bytes.h"
#include "net/ip_address.h"
#include "wg/constants.h"
#include "wg/device.h"

namespace warren::dataplane {

class HandshakeQueue {
 public:
  struct Entry {
    net::Path from;
    std::uint8_t size = 0;
    std::array<std::uint8_t, wg::kInitiationSize> bytes;  // the largest handshake message
    Bytes datagram() { return Bytes(bytes.data(), size); }
  };
  static_assert(wg::kInitiationSize >= wg::kResponseSize && wg::kInitiationSize <= 255);

  /// `capacity[l]` entries for lane l (each at least 1).
  explicit HandshakeQueue(const std::array<std::size_t, wg::kHandshakeLanes>& capacity) {
    for (std::size_t l = 0; l < wg::kHandshakeLanes; ++l) {
      lanes_[l].capacity = capacity[l] == 0 ? 1 : capacity[l];
      lanes_[l].slots = std::make_unique<Entry[]>(lanes_[l].capacity);
    }
  }

  /// Copies `datagram` (a handshake message, at most kInitiationSize bytes) to the back of
  /// `lane`; false, and nothing kept, when that lane is full or the arguments are not a
  /// handshake message and a lane.
  [[nodiscard]] bool push(wg::Lane lane, const net::Path& from, ConstBytes datagram) {
    const auto l = static_cast<std::size_t>(lane);
    if (l >= wg::kHandshakeLanes || datagram.size() > wg::kInitiationSize) {
      return false;
    }
    Ring& r = lanes_[l];
    if (r.count == r.capacity)
      return false;
    Entry& e = r.slots[(r.head + r.count) % r.capacity];
    e.from = from;
    e.size = static_cast<std::uint8_t>(datagram.size());
    std::memcpy(e.bytes.data(), datagram.data(), datagram.size());
    ++r.count;
    ++size_;
    return true;
  }

  /// The oldest entry of the best non-empty lane, or nullptr when empty. Valid until pop().
  Entry* front() {
    for (Ring& r : lanes_) {
      if (r.count != 0)
        return &r.slots[r.head];
    }
    return nullptr;
  }

  /// Removes front().
  void pop() {
    for (Ring& r : lanes_) {
      if (r.count != 0) {
        r.head = (r.head + 1) % r.capacity;
        --r.count;
        --size_;
        return;
      }
    }
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  std::size_t size(wg::Lane lane) const {
    const auto l = static_cast<std::size_t>(lane);
    return l < wg::kHandshakeLanes ? lanes_[l].count : 0;
  }

 private:
  struct Ring {
    std::unique_ptr<Entry[]> slots;
    std::size_t capacity = 0;
    std::size_t head = 0;
    std::size_t count = 0;
  };
  std::array<Ring, wg::kHandshakeLanes> lanes_;
  std::size_t size_ = 0;
};

}  // namespace warren::dataplane
