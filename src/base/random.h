#pragma once
/// Randomness is injected: the core draws every random byte (ephemeral keys, indices, cookie
/// secrets, nonces, jitter) from a RandomSource, so tests can replay exact transcripts.

#include <cstdint>
#include <span>

namespace warren {

class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;

  std::uint32_t next_u32() {
    std::uint8_t b[4];
    fill(b);
    return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
           (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  /// Uniform in [0, bound) (bound > 0); the slight modulo bias is irrelevant for jitter.
  std::uint32_t uniform(std::uint32_t bound) { return next_u32() % bound; }
};

}  // namespace warren
