#pragma once
/// The production RandomSource: OpenSSL's CSPRNG (RAND_bytes). Thread-safe.

#include "base/random.h"

namespace warren::crypto {

class SystemRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override;
  /// A process-wide instance.
  static SystemRandom& instance();
};

}  // namespace warren::crypto
