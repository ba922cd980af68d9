#pragma once
/// wg::Outbox: where a Device call puts the datagrams it produces besides its own verdict.
///
///   Device::apply / encapsulate / decapsulate / tick ──append──► Outbox (caller-owned)
///   caller, after the call returned ──────────────────reads, sends, clear()──► network
///
/// The Device never calls out: it only appends (a copy of the datagram and its Path) while it
/// holds its locks, and the caller sends once the call has returned, when it may call back into
/// the Device (e.g. Device::forget_source for a source the kernel refused).
///
/// Bounded and allocation-free in steady state: the storage grows on demand up to the limits
/// given at construction and keeps its capacity across clear(); an append past a limit is
/// dropped and counted (as a full socket buffer would drop it), and the protocol's timers
/// retry what mattered.
///
/// Thread-safety: none. An Outbox belongs to one caller at a time; concurrent Device calls use
/// one Outbox each.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "net/ip_address.h"

namespace warren::wg {

class Outbox {
 public:
  /// Limits sized for one engine round: 128 staged packets of one peer plus a round's handshake
  /// replies fit many times over; a tick over thousands of peers fits (148-byte initiations).
  static constexpr std::size_t kDefaultMaxDatagrams = 16384;
  static constexpr std::size_t kDefaultMaxBytes = 8 << 20;

  explicit Outbox(std::size_t max_datagrams = kDefaultMaxDatagrams,
                  std::size_t max_bytes = kDefaultMaxBytes)
      : max_datagrams_(max_datagrams), max_bytes_(max_bytes) {}

  /// Copies `datagram` to be sent to `to`. False (and counted in dropped()) when full.
  bool push(const net::Path& to, ConstBytes datagram) {
    if (entries_.size() >= max_datagrams_ || used_ + datagram.size() > max_bytes_) {
      ++dropped_;
      return false;
    }
    if (used_ + datagram.size() > bytes_.size())
      bytes_.resize(std::min(max_bytes_, std::max(used_ + datagram.size(), 2 * bytes_.size())));
    if (!datagram.empty())
      std::memcpy(bytes_.data() + used_, datagram.data(), datagram.size());
    entries_.push_back(Entry{to, used_, datagram.size()});
    used_ += datagram.size();
    return true;
  }

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  /// The i-th datagram (valid until the next push or clear) and its destination.
  ConstBytes datagram(std::size_t i) const {
    return ConstBytes(bytes_.data() + entries_[i].offset, entries_[i].length);
  }
  const net::Path& path(std::size_t i) const { return entries_[i].to; }

  /// Forgets the datagrams; the storage is kept.
  void clear() {
    entries_.clear();
    used_ = 0;
  }
  /// Datagrams refused because a limit was reached, since construction.
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct Entry {
    net::Path to;
    std::size_t offset;
    std::size_t length;
  };
  std::size_t max_datagrams_;
  std::size_t max_bytes_;
  std::vector<Entry> entries_;
  std::vector<std::uint8_t> bytes_;
  std::size_t used_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace warren::wg
