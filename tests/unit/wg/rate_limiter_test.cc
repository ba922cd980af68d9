#include "wg/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace warren::wg {
namespace {

using net::IpAddress;
using namespace std::chrono_literals;

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// An arbitrary monotonic epoch, so nothing depends on time starting at zero.
constexpr MonoTime kT0(123456789s);

TEST(RateLimiter, Constants) {
  EXPECT_EQ(RateLimiter::kPacketCost, 50ms);
  EXPECT_EQ(RateLimiter::kTokenMax, 250ms);
}

TEST(RateLimiter, BurstThenRefused) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  for (std::uint32_t i = 0; i < RateLimiter::kPacketsBurstable; ++i) {
    EXPECT_TRUE(rl.allow(a, kT0)) << i;
  }
  EXPECT_FALSE(rl.allow(a, kT0));
  EXPECT_FALSE(rl.allow(a, kT0));
  EXPECT_EQ(rl.size(), 1u);
}

// The timing pattern of the kernel's ratelimiter self-test, on a fake clock.
TEST(RateLimiter, RefillsOnePacketPer50ms) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  MonoTime now = kT0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(rl.allow(a, now)) << i;
  }
  EXPECT_FALSE(rl.allow(a, now));
  now += 50ms;
  EXPECT_TRUE(rl.allow(a, now));
  EXPECT_FALSE(rl.allow(a, now));
  now += 100ms;
  EXPECT_TRUE(rl.allow(a, now));
  EXPECT_TRUE(rl.allow(a, now));
  EXPECT_FALSE(rl.allow(a, now));
}

TEST(RateLimiter, PartialTokensAccumulate) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  MonoTime now = kT0;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(a, now));
  }
  // 49 ms is not enough; a refused packet must not throw away the partial token.
  now += 49ms;
  EXPECT_FALSE(rl.allow(a, now));
  now += 1ms;
  EXPECT_TRUE(rl.allow(a, now));
  EXPECT_FALSE(rl.allow(a, now));
}

TEST(RateLimiter, SustainedRateIsTwentyPerSecond) {
  RateLimiter rl;
  const IpAddress a = ip("198.51.100.7");
  int allowed = 0;
  // Offer a packet every millisecond for 10 s: the burst plus 20 per second.
  for (int ms = 0; ms < 10000; ++ms) {
    allowed += rl.allow(a, kT0 + std::chrono::milliseconds(ms));
  }
  EXPECT_EQ(allowed, 5 + 200 - 1);  // the last refill (at 10000 ms) is outside the loop
}

TEST(RateLimiter, BurstIsCapped) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  ASSERT_TRUE(rl.allow(a, kT0));
  // A long quiet spell (within the GC horizon) refills only up to the burst.
  const MonoTime later = kT0 + 900ms;
  int allowed = 0;
  for (int i = 0; i < 20; ++i) {
    allowed += rl.allow(a, later);
  }
  EXPECT_EQ(allowed, 5);
}

TEST(RateLimiter, SourcesAreIndependent) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  const IpAddress b = ip("192.0.2.2");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(a, kT0));
  }
  ASSERT_FALSE(rl.allow(a, kT0));
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(rl.allow(b, kT0)) << i;
  }
  EXPECT_FALSE(rl.allow(b, kT0));
  EXPECT_EQ(rl.size(), 2u);
}

TEST(RateLimiter, Ipv6SharesABucketPerSlash64) {
  RateLimiter rl;
  // Same /64, different interface identifiers: one bucket.
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:2::1"), kT0));
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:2::2"), kT0));
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), kT0));
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:2:8000::"), kT0));
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:2::1"), kT0));
  EXPECT_FALSE(rl.allow(ip("2001:db8:1:2::99"), kT0));
  EXPECT_EQ(rl.size(), 1u);
  // Neighbouring /64s are separate buckets, whichever prefix bit differs.
  EXPECT_TRUE(rl.allow(ip("2001:db8:1:3::1"), kT0));  // last bit of the /64
  EXPECT_TRUE(rl.allow(ip("3001:db8:1:2::1"), kT0));  // first bit
  EXPECT_FALSE(rl.allow(ip("2001:db8:1:2::"), kT0));  // still the exhausted bucket
  EXPECT_EQ(rl.size(), 3u);
}

TEST(RateLimiter, Ipv4AndIpv6AreDistinct) {
  RateLimiter rl;
  // 0.0.0.1 and ::1 (and ::) must not share a bucket just because their leading bits agree.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(ip("0.0.0.0"), kT0));
  }
  EXPECT_FALSE(rl.allow(ip("0.0.0.0"), kT0));
  EXPECT_TRUE(rl.allow(ip("::"), kT0));
  EXPECT_EQ(rl.size(), 2u);
}

TEST(RateLimiter, MappedIpv4CountsAsIpv4) {
  RateLimiter rl;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(ip("::ffff:192.0.2.1"), kT0));
  }
  EXPECT_FALSE(rl.allow(ip("192.0.2.1"), kT0));
  // Other mapped sources are not lumped into ::ffff:0:0/64.
  EXPECT_TRUE(rl.allow(ip("::ffff:192.0.2.2"), kT0));
  EXPECT_EQ(rl.size(), 2u);
}

TEST(RateLimiter, ClockGoingBackwardsGrantsNothing) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(a, kT0));
  }
  EXPECT_FALSE(rl.allow(a, kT0 - 10s));
  EXPECT_FALSE(rl.allow(a, kT0));  // and the stale time did not rewind the bucket either
  EXPECT_TRUE(rl.allow(a, kT0 + 50ms));
}

TEST(RateLimiter, GarbageCollectionDropsIdleEntries) {
  RateLimiter rl;
  ASSERT_TRUE(rl.allow(ip("192.0.2.1"), kT0));
  ASSERT_TRUE(rl.allow(ip("2001:db8::1"), kT0 + 500ms));
  ASSERT_EQ(rl.size(), 2u);
  rl.collect_garbage(kT0 + 1s);  // idle exactly 1 s: kept
  EXPECT_EQ(rl.size(), 2u);
  rl.collect_garbage(kT0 + 1s + 1ns);
  EXPECT_EQ(rl.size(), 1u);
  rl.collect_garbage(kT0 + 1500ms + 1ns);
  EXPECT_EQ(rl.size(), 0u);
  // A collected source starts over with a full burst.
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(rl.allow(ip("192.0.2.1"), kT0 + 2s)) << i;
  }
  EXPECT_FALSE(rl.allow(ip("192.0.2.1"), kT0 + 2s));
}

TEST(RateLimiter, ActiveEntriesSurviveGarbageCollection) {
  RateLimiter rl;
  const IpAddress a = ip("192.0.2.1");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(rl.allow(a, kT0));
  }
  ASSERT_FALSE(rl.allow(a, kT0 + 40ms));  // refused packets also refresh the entry
  rl.collect_garbage(kT0 + 1s + 20ms);
  EXPECT_EQ(rl.size(), 1u);
}

TEST(RateLimiter, FullTableRefusesNewSources) {
  RateLimiter rl(3);
  ASSERT_TRUE(rl.allow(ip("192.0.2.1"), kT0));
  ASSERT_TRUE(rl.allow(ip("192.0.2.2"), kT0));
  ASSERT_TRUE(rl.allow(ip("2001:db8::1"), kT0));
  EXPECT_FALSE(rl.allow(ip("192.0.2.4"), kT0));  // full, and nothing is idle
  EXPECT_EQ(rl.size(), 3u);
  // Known sources keep their buckets.
  EXPECT_TRUE(rl.allow(ip("192.0.2.1"), kT0 + 10ms));
  // Still full half a second later: the inline collection finds nothing idle.
  EXPECT_FALSE(rl.allow(ip("192.0.2.4"), kT0 + 500ms));
  // Once entries are idle, a full table collects garbage on its own and admits the newcomer.
  ASSERT_TRUE(rl.allow(ip("192.0.2.2"), kT0 + 1200ms));  // keep one entry alive
  EXPECT_TRUE(rl.allow(ip("192.0.2.4"), kT0 + 1600ms));
  EXPECT_EQ(rl.size(), 2u);  // 192.0.2.2 and 192.0.2.4
}

TEST(RateLimiter, InlineCollectionIsThrottled) {
  RateLimiter rl(1);
  ASSERT_TRUE(rl.allow(ip("192.0.2.1"), kT0));
  EXPECT_FALSE(rl.allow(ip("192.0.2.2"), kT0 + 900ms));  // collects; 192.0.2.1 not idle yet
  // 192.0.2.1 is idle from kT0 + 1 s on, but the last collection was < 1 s ago.
  EXPECT_FALSE(rl.allow(ip("192.0.2.2"), kT0 + 1500ms));
  EXPECT_TRUE(rl.allow(ip("192.0.2.2"), kT0 + 1900ms));
  EXPECT_EQ(rl.size(), 1u);
}

TEST(RateLimiter, ExplicitCollectionMakesRoom) {
  RateLimiter rl(2);
  ASSERT_TRUE(rl.allow(ip("192.0.2.1"), kT0));
  ASSERT_TRUE(rl.allow(ip("192.0.2.2"), kT0));
  rl.collect_garbage(kT0 + 2s);
  EXPECT_EQ(rl.size(), 0u);
  EXPECT_TRUE(rl.allow(ip("192.0.2.3"), kT0 + 2s));
}

TEST(RateLimiter, ConcurrentCallersShareOneBucket) {
  RateLimiter rl;
  const IpAddress a = ip("203.0.113.9");
  std::atomic<int> allowed{0};
  std::atomic<int> others{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        allowed += rl.allow(a, kT0);
        // Distinct sources churn the table at the same time.
        others +=
            rl.allow(IpAddress::v4(static_cast<std::uint32_t>(0x0a000000 + t * 1000 + i)), kT0);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(allowed.load(), 5);
  EXPECT_EQ(others.load(), 4000);
  EXPECT_EQ(rl.size(), 1u + 4000u);
}

}  // namespace
}  // namespace warren::wg
