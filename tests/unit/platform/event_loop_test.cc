#include "platform/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "platform/clock.h"
#include "platform/notifier.h"

namespace warren::platform {
namespace {

TEST(EventLoopTest, DispatchesReadinessLevelTriggered) {
  auto loop = make_event_loop();
  ASSERT_TRUE(loop.ok()) << loop.message();
  Notifier n;
  int calls = 0;
  ASSERT_TRUE((*loop)
                  ->add(n.fd(), kReadable,
                        [&](std::uint32_t ev) {
                          EXPECT_TRUE(ev & kReadable);
                          ++calls;
                        })
                  .ok());
  EXPECT_EQ((*loop)->run_once(Duration::zero()).value(), 0);
  n.set();
  EXPECT_EQ((*loop)->run_once(Duration::zero()).value(), 1);
  EXPECT_EQ((*loop)->run_once(Duration::zero()).value(), 1);  // still set: level-triggered
  n.clear();
  EXPECT_EQ((*loop)->run_once(Duration::zero()).value(), 0);
  EXPECT_EQ(calls, 2);
  ASSERT_TRUE((*loop)->remove(n.fd()).ok());
  n.set();
  EXPECT_EQ((*loop)->run_once(Duration::zero()).value(), 0);
}

TEST(EventLoopTest, CallbackMayRemoveItselfAndOthers) {
  auto loop = std::move(make_event_loop().value());
  Notifier a, b;
  int a_calls = 0, b_calls = 0;
  ASSERT_TRUE(loop->add(a.fd(), kReadable,
                        [&](std::uint32_t) {
                          ++a_calls;
                          (void)loop->remove(a.fd());
                          (void)loop->remove(b.fd());
                        })
                  .ok());
  ASSERT_TRUE(loop->add(b.fd(), kReadable,
                        [&](std::uint32_t) {
                          ++b_calls;
                          (void)loop->remove(a.fd());
                          (void)loop->remove(b.fd());
                        })
                  .ok());
  a.set();
  b.set();
  (void)loop->run_once(Duration::zero());
  EXPECT_EQ(a_calls + b_calls, 1);
}

TEST(EventLoopTest, TimerFiresAtMonotonicDeadline) {
  auto loop = std::move(make_event_loop().value());
  bool fired = false;
  const Now start = SystemClock::system_now();
  ASSERT_TRUE(
      loop->set_timer(start.mono + std::chrono::milliseconds(30), [&] { fired = true; }).ok());
  while (!fired)
    ASSERT_TRUE(loop->run_once(std::chrono::seconds(2)).ok());
  EXPECT_GE(SystemClock::system_now().mono - start.mono, std::chrono::milliseconds(29));

  // A deadline in the past fires at once; kNoDeadline disarms.
  fired = false;
  ASSERT_TRUE(loop->set_timer(start.mono, [&] { fired = true; }).ok());
  (void)loop->run_once(std::chrono::seconds(1));
  EXPECT_TRUE(fired);
  fired = false;
  ASSERT_TRUE(loop->set_timer(kNoDeadline, [&] { fired = true; }).ok());
  (void)loop->run_once(std::chrono::milliseconds(20));
  EXPECT_FALSE(fired);
}

TEST(EventLoopTest, WakeFromAnotherThread) {
  auto loop = std::move(make_event_loop().value());
  std::atomic<int> woken{0};
  loop->set_wake_handler([&] { ++woken; });
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    loop->wake();
  });
  const auto t0 = std::chrono::steady_clock::now();
  while (woken == 0)
    ASSERT_TRUE(loop->run_once(std::chrono::seconds(5)).ok());
  t.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  EXPECT_EQ(woken, 1);
}

TEST(ClockTest, ManualClockAdvancesBoth) {
  ManualClock c;
  Now a = c.now();
  c.advance(std::chrono::seconds(5));
  Now b = c.now();
  EXPECT_EQ(b.mono - a.mono, std::chrono::seconds(5));
  EXPECT_EQ(b.wall - a.wall, std::chrono::seconds(5));
}

}  // namespace
}  // namespace warren::platform
