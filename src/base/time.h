#pragma once
/// Time as the protocol core sees it: passed in by the caller, never read from a clock inside.
///
/// Three types, so that a deadline cannot be passed where a timeout is expected:
///   Duration  a span of time (a timeout, an interval, a backoff)         std::chrono::nanoseconds
///   MonoTime  a point on the monotonic clock (timers, deadlines, ages)  MonoTime + Duration → MonoTime
///   WallTime  a point in Unix time (TAI64N timestamps, reporting only)  MonoTime − MonoTime → Duration
/// MonoTime and WallTime do not mix with each other, and neither converts to or from Duration.

#include <chrono>
#include <cstdint>

namespace warren {

using Duration = std::chrono::nanoseconds;

/// The monotonic clock's tag (CLOCK_MONOTONIC on Linux, any epoch). Only platform::Clock reads
/// it; `now()` is declared for the standard's Clock requirements and defined nowhere.
struct MonoClock {
  using duration = Duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<MonoClock, Duration>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

using MonoTime = MonoClock::time_point;
/// Nanoseconds since the Unix epoch (std::chrono::sys_time).
using WallTime = std::chrono::sys_time<Duration>;

/// "No deadline": later than every real time. EventLoop::set_timer(kNoDeadline) disarms.
inline constexpr MonoTime kNoDeadline = MonoTime::max();
/// "Wait without limit", for timeouts (EventLoop::run_once).
inline constexpr Duration kNoTimeout = Duration(-1);

/// `mono` orders all timers; `wall` is used only for TAI64N timestamps and for reporting the
/// last handshake time.
struct Now {
  MonoTime mono{};
  WallTime wall{};
};

}  // namespace warren
