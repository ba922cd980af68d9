#include "runtime/timers.h"

#include <algorithm>

namespace warren::runtime {

void TimerSet::add(MonoTime first, Duration interval, std::function<void()> fn) {
  timers_.push_back(Timer{first, interval, std::move(fn)});
}

MonoTime TimerSet::next_deadline() const {
  MonoTime next = kNoDeadline;
  for (const auto& t : timers_)
    next = std::min(next, t.deadline);
  return next;
}

int TimerSet::run_due(MonoTime now) {
  int ran = 0;
  const std::size_t n = timers_.size();  // timers added by a callback wait for the next call
  for (std::size_t i = 0; i < n; ++i) {
    if (timers_[i].deadline > now)
      continue;
    timers_[i].deadline = now + timers_[i].interval;
    auto fn = timers_[i].fn;  // a copy: the callback may add timers (and reallocate)
    fn();
    ++ran;
  }
  return ran;
}

}  // namespace warren::runtime
