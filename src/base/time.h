#pragma once
/// Time as the protocol core sees it: passed in by the caller, never read from a clock inside.

#include <chrono>
#include <cstdint>

namespace warren {

using Duration = std::chrono::nanoseconds;
using namespace std::chrono_literals;

/// `mono` is a monotonic clock (any epoch; all timers use it); `wall` is nanoseconds since the
/// Unix epoch, used only for TAI64N timestamps and for reporting the last handshake time.
struct Now {
  Duration mono{0};
  Duration wall{0};
};

}  // namespace warren
