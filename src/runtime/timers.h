#pragma once
/// Periodic timers on one deadline: the program registers "every INTERVAL, do F" and the
/// runtime arms the event loop's single timer at next_deadline(). Pure (time is passed in).
///
///   add(5 s, maintain) ─┐
///   add(1 s, watch)  ───┼─► next_deadline() ─► EventLoop::set_timer ─► run_due(now)
///                       └── each callback re-armed at now + its interval

#include <functional>
#include <vector>

#include "base/time.h"

namespace warren::runtime {

class TimerSet {
 public:
  /// `fn` runs every `interval`, first at `first` (a CLOCK_MONOTONIC time).
  void add(Duration first, Duration interval, std::function<void()> fn);
  /// The earliest deadline, Duration::max() when there is no timer.
  Duration next_deadline() const;
  /// Runs every timer due at `now` (in registration order) and re-arms it at now + interval.
  /// Returns how many ran. A callback may add timers (they run from the next call on).
  int run_due(Duration now);

 private:
  struct Timer {
    Duration deadline;
    Duration interval;
    std::function<void()> fn;
  };
  std::vector<Timer> timers_;
};

}  // namespace warren::runtime
