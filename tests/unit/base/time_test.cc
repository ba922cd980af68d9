// The time vocabulary of base/time.h: a time point is not a duration, and the monotonic and
// wall clocks do not mix. Most of it is checked at compile time.

#include "base/time.h"

#include <gtest/gtest.h>

#include <concepts>

namespace warren {
namespace {

using namespace std::chrono_literals;

// Stand-ins for an API that takes a timeout and one that takes a deadline.
void wait_for(Duration) {}
void wait_until(MonoTime) {}

template <class T>
concept TimeoutArg = requires(T t) { wait_for(t); };
template <class T>
concept DeadlineArg = requires(T t) { wait_until(t); };

// A deadline where a timeout is expected, and the reverse, do not compile.
static_assert(TimeoutArg<Duration>);
static_assert(!TimeoutArg<MonoTime>);
static_assert(!TimeoutArg<WallTime>);
static_assert(DeadlineArg<MonoTime>);
static_assert(!DeadlineArg<Duration>);
static_assert(!DeadlineArg<WallTime>);
static_assert(!std::convertible_to<MonoTime, Duration>);
static_assert(!std::convertible_to<Duration, MonoTime>);
static_assert(!std::convertible_to<WallTime, MonoTime>);

// The arithmetic that makes sense, and only that.
static_assert(std::same_as<decltype(MonoTime{} + 1s), MonoTime>);
static_assert(std::same_as<decltype(MonoTime{} - 1s), MonoTime>);
static_assert(std::same_as<decltype(MonoTime{} - MonoTime{}), Duration>);
static_assert(std::same_as<decltype(WallTime{} - WallTime{}), Duration>);
template <class A, class B>
concept Addable = requires(A a, B b) { a + b; };
template <class A, class B>
concept Subtractable = requires(A a, B b) { a - b; };
template <class A, class B>
concept Comparable = requires(A a, B b) { a < b; };
static_assert(!Addable<MonoTime, MonoTime>);
static_assert(!Subtractable<MonoTime, WallTime>);
static_assert(!Comparable<MonoTime, Duration>);
static_assert(!Comparable<MonoTime, WallTime>);

TEST(Time, ArithmeticKeepsTheKinds) {
  const MonoTime t0(1000s);
  const MonoTime deadline = t0 + 5s;
  EXPECT_EQ(deadline - t0, 5s);
  EXPECT_LT(t0, deadline);
  EXPECT_LT(deadline, kNoDeadline);
  const Now now{t0, WallTime(1'700'000'000s)};
  EXPECT_EQ(now.wall.time_since_epoch(), 1'700'000'000s);
  EXPECT_LT(kNoTimeout, Duration::zero());
}

}  // namespace
}  // namespace warren
