#pragma once
/// Replay protection for transport-data counters: the RFC 6479 sliding bitmap window
/// (wireguard-protocol.md §1.10), 128 blocks of 64 bits, of which 127 are always live.

#include <array>
#include <cstddef>
#include <cstdint>

#include "wg/constants.h"

namespace warren::wg {

/// One per receiving keypair. Accepts each counter at most once, and rejects counters more than
/// kWindowSize below the highest counter accepted so far.
///
/// Exact edge: with `last` the highest accepted counter, `last - kWindowSize` is still accepted
/// (if not seen) and `last - kWindowSize - 1` is rejected. A jump of 128 blocks or more clears the
/// whole ring.
///
/// Not synchronised: callers serialise per keypair (check_and_update must run after the packet
/// authenticated, so a forged counter cannot move the window).
class ReplayWindow {
 public:
  static constexpr std::uint64_t kWindowSize = 8128;

  /// Call after the packet authenticated. True = accept (and mark seen). counter >= limit is
  /// rejected.
  [[nodiscard]] bool check_and_update(std::uint64_t counter,
                                      std::uint64_t limit = kRejectAfterMessages) noexcept {
    if (counter >= limit) {
      return false;
    }
    const std::uint64_t block = counter >> kBlockShift;
    if (counter > last_) {
      // Advance: zero the blocks between the old head and the new one (at most the whole ring).
      // They hold counters that fell out of the window, or nothing yet.
      const std::uint64_t current = last_ >> kBlockShift;
      std::uint64_t advance = block - current;
      if (advance > kBlocks) {
        advance = kBlocks;
      }
      for (std::uint64_t i = 1; i <= advance; ++i) {
        ring_[(current + i) & kBlockMask] = 0;
      }
      last_ = counter;
    } else if (last_ - counter > kWindowSize) {
      return false;  // too old to tell whether it was seen
    }
    std::uint64_t& word = ring_[block & kBlockMask];
    const std::uint64_t bit = std::uint64_t{1} << (counter & (kBitsPerBlock - 1));
    const bool fresh = (word & bit) == 0;
    word |= bit;
    return fresh;
  }

  /// What check_and_update(counter, limit) would answer, without marking anything: a cheap
  /// test before authentication, so a replayed packet is dropped without an AEAD open (it cannot
  /// move the window, since nothing changes). check_and_update must still follow.
  [[nodiscard]] bool would_accept(std::uint64_t counter,
                                  std::uint64_t limit = kRejectAfterMessages) const noexcept {
    if (counter >= limit)
      return false;
    if (counter > last_)
      return true;
    if (last_ - counter > kWindowSize)
      return false;
    const std::uint64_t word = ring_[(counter >> kBlockShift) & kBlockMask];
    return (word & (std::uint64_t{1} << (counter & (kBitsPerBlock - 1)))) == 0;
  }

  /// Back to the initial state (nothing seen, counter 0 acceptable), e.g. for a new keypair.
  void reset() noexcept {
    ring_.fill(0);
    last_ = 0;
  }

 private:
  static constexpr std::uint64_t kBitsPerBlock = 64;
  static constexpr unsigned kBlockShift = 6;
  static constexpr std::uint64_t kBlocks = 128;
  static constexpr std::uint64_t kBlockMask = kBlocks - 1;
  // One block is the one being filled, so only the other 127 count as the guaranteed window.
  static_assert(kWindowSize == (kBlocks - 1) * kBitsPerBlock);

  std::uint64_t last_ = 0;  // highest counter accepted (0 before any)
  std::array<std::uint64_t, kBlocks> ring_{};
};

}  // namespace warren::wg
