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
  /// `fn` runs every `interval`, first at `first`.
  void add(MonoTime first, Duration interval, std::function<void()> fn);
  /// The earliest deadline, kNoDeadline when there is no timer.
  MonoTime next_deadline() const;
  /// Runs every timer due at `now` (in registration order) and re-arms it at now + interval.
  /// Returns how many ran. A callback may add timers (they run from the next call on).
  int run_due(MonoTime now);

 private:
  struct Timer {
    MonoTime deadline;
    Duration interval;
    std::function<void()> fn;
  };
  std::vector<Timer> timers_;
};

}  // namespace warren::runtime
