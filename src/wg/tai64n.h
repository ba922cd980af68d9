#pragma once
/// TAI64N timestamps as WireGuard sends them in initiations (whitepaper §5.4.2): a big-endian
/// u64 of 2^62 + 10 + Unix seconds, then a big-endian u32 of nanoseconds with the low 24 bits
/// cleared, so an observer learns nothing finer than ~16.8 ms (wireguard-go and the kernel agree).

#include <array>
#include <cstdint>
#include <cstring>

#include "base/bytes.h"
#include "base/time.h"

namespace warren::wg {

using Tai64n = std::array<std::uint8_t, 12>;

inline constexpr std::uint64_t kTai64Base = 0x400000000000000aULL;
inline constexpr std::uint32_t kTimestampWhitener = 0x1000000 - 1;

inline Tai64n tai64n_from_wall(WallTime wall) {
  const auto since_epoch = wall.time_since_epoch().count();
  const auto ns = since_epoch < 0 ? 0 : static_cast<std::uint64_t>(since_epoch);
  Tai64n t{};
  store_be64(t.data(), kTai64Base + ns / 1000000000ULL);
  store_be32(t.data() + 8, static_cast<std::uint32_t>(ns % 1000000000ULL) & ~kTimestampWhitener);
  return t;
}

/// Strictly later (bytewise big-endian comparison, as wireguard-go's After()).
inline bool tai64n_after(const Tai64n& a, const Tai64n& b) {
  return std::memcmp(a.data(), b.data(), a.size()) > 0;
}

}  // namespace warren::wg
