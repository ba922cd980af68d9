#pragma once
/// Clocks for the code around the protocol core (which never reads a clock itself).
///
/// `Now::mono` is the monotonic clock that EventLoop timers use (CLOCK_MONOTONIC on Linux,
/// i.e. std::chrono::steady_clock); `Now::wall` is Unix time (see base/time.h).
/// Thread-safety: SystemClock and ManualClock may be read from any thread.

#include <atomic>
#include <chrono>

#include "base/time.h"

namespace warren::platform {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Now now() const = 0;
};

/// The real clocks.
class SystemClock final : public Clock {
 public:
  Now now() const override { return system_now(); }
  static Now system_now() {
    Now n;
    // Same epoch as timerfd's CLOCK_MONOTONIC: steady_clock is CLOCK_MONOTONIC in libstdc++.
    n.mono = MonoTime(
        std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch()));
    n.wall = std::chrono::time_point_cast<Duration>(std::chrono::system_clock::now());
    return n;
  }
};

/// A clock that moves only when told to; both components advance together.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(MonoTime mono = MonoTime(std::chrono::seconds(1000)),
                       WallTime wall = WallTime(std::chrono::seconds(1'700'000'000)))
      : mono_(mono.time_since_epoch().count()), wall_(wall.time_since_epoch().count()) {}
  Now now() const override {
    return Now{MonoTime(Duration(mono_.load(std::memory_order_acquire))),
               WallTime(Duration(wall_.load(std::memory_order_acquire)))};
  }
  void advance(Duration d) {
    mono_.fetch_add(d.count(), std::memory_order_acq_rel);
    wall_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<Duration::rep> mono_;
  std::atomic<Duration::rep> wall_;
};

}  // namespace warren::platform
