#include "wg/replay_window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace warren::wg {
namespace {

constexpr std::uint64_t kW = ReplayWindow::kWindowSize;  // 8128
constexpr std::uint64_t kTLim = kW + 1;                  // the kernel test's T_LIM
constexpr std::uint64_t kR = kRejectAfterMessages;

static_assert(kR == 0xffffffffffffffffULL - 8192, "2^64 - 2^13 - 1");

struct Step {
  std::uint64_t counter;
  bool accept;
};

// The fixed sequence of the kernel's nonce-counter self-test (vectors README §3.6), run against
// one window with the default limit R.
TEST(ReplayWindow, KernelSequence) {
  const Step steps[] = {
      {0, true},
      {1, true},
      {1, false},
      {9, true},
      {8, true},
      {7, true},
      {7, false},
      {kTLim, true},
      {kTLim - 1, true},
      {kTLim - 1, false},
      {kTLim - 2, true},
      {2, true},  // last = T_LIM, 8127 behind: inside
      {2, false},
      {kTLim + 16, true},
      {3, false},  // 8142 behind: too old
      {kTLim + 16, false},
      {4 * kTLim, true},
      {4 * kTLim - (kTLim - 1), true},  // exactly kW behind: still inside
      {10, false},
      {4 * kTLim - kTLim, false},        // kW + 1 behind
      {4 * kTLim - (kTLim + 1), false},  // kW + 2 behind
      {4 * kTLim - (kTLim - 2), true},
      {4 * kTLim + 1 - kTLim, false},  // same counter as step 17: a duplicate
      {0, false},
      {kR, false},  // at the limit
      {kR - 1, true},
      {kR, false},
      {kR - 1, false},
      {kR - 2, true},
      {kR + 1, false},
      {kR + 2, false},
      {kR - 2, false},
      {kR - 3, true},
      {0, false},
  };
  ReplayWindow w;
  for (std::size_t i = 0; i < std::size(steps); ++i) {
    EXPECT_EQ(w.check_and_update(steps[i].counter), steps[i].accept)
        << "step " << i << " counter " << steps[i].counter;
  }
}

// The kernel test's six sweeps. With `last` the highest counter accepted, a counter is accepted
// iff it is unseen and last - counter <= kW, so each expectation below follows from where the
// sweep leaves `last`.
TEST(ReplayWindow, SweepUpThenZero) {
  ReplayWindow w;
  for (std::uint64_t i = 1; i <= kW; ++i) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
  EXPECT_TRUE(w.check_and_update(0));   // last = kW: 0 is exactly kW behind, unseen
  EXPECT_FALSE(w.check_and_update(0));  // now seen
}

TEST(ReplayWindow, SweepUpFromTwoThenOneThenZero) {
  ReplayWindow w;
  for (std::uint64_t i = 2; i <= kW + 1; ++i) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
  EXPECT_TRUE(w.check_and_update(1));   // last = kW + 1: 1 is kW behind
  EXPECT_FALSE(w.check_and_update(0));  // kW + 1 behind: outside
}

TEST(ReplayWindow, SweepDownFromWindowToZero) {
  ReplayWindow w;
  // The first packet sets last = kW; every later one is at most kW behind it.
  for (std::uint64_t i = kW + 1; i-- > 0;) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
}

TEST(ReplayWindow, SweepDownFromWindowPlusOneToOneThenZero) {
  ReplayWindow w;
  for (std::uint64_t i = kW + 2; i-- > 1;) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
  EXPECT_FALSE(w.check_and_update(0));  // last = kW + 1
}

TEST(ReplayWindow, SweepDownToOneThenAdvanceThenZero) {
  ReplayWindow w;
  for (std::uint64_t i = kW + 1; i-- > 1;) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
  EXPECT_TRUE(w.check_and_update(kW + 1));  // moves last to kW + 1 ...
  EXPECT_FALSE(w.check_and_update(0));      // ... which puts 0 just outside
}

TEST(ReplayWindow, SweepDownToOneThenZeroThenAdvance) {
  ReplayWindow w;
  for (std::uint64_t i = kW + 1; i-- > 1;) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
  }
  EXPECT_TRUE(w.check_and_update(0));  // last = kW: 0 still inside
  EXPECT_TRUE(w.check_and_update(kW + 1));
}

TEST(ReplayWindow, InOrderAndDuplicates) {
  ReplayWindow w;
  for (std::uint64_t i = 0; i < 50000; ++i) {
    ASSERT_TRUE(w.check_and_update(i)) << i;
    ASSERT_FALSE(w.check_and_update(i)) << i;
    if (i >= 100) {
      ASSERT_FALSE(w.check_and_update(i - 100)) << i;
    }
  }
}

TEST(ReplayWindow, OutOfOrderWithinWindow) {
  ReplayWindow w;
  const std::uint64_t last = 20000;
  ASSERT_TRUE(w.check_and_update(last));
  std::vector<std::uint64_t> older;
  for (std::uint64_t c = last - kW; c < last; ++c) {
    older.push_back(c);
  }
  std::mt19937_64 rng(7);
  std::shuffle(older.begin(), older.end(), rng);
  for (std::uint64_t c : older) {
    ASSERT_TRUE(w.check_and_update(c)) << c;
  }
  for (std::uint64_t c : older) {
    ASSERT_FALSE(w.check_and_update(c)) << c;
  }
  EXPECT_FALSE(w.check_and_update(last - kW - 1));
}

TEST(ReplayWindow, WindowEdgeAtEveryAlignment) {
  // The edge is exact whatever the position of `last` inside its 64-bit block: kW behind is
  // accepted, kW + 1 behind is rejected (the ring keeps 127 whole blocks behind the current one,
  // and kW = 127 * 64, so the oldest live block always holds last - kW).
  for (std::uint64_t offset = 0; offset < 64; ++offset) {
    ReplayWindow w;
    const std::uint64_t last = 64 * 1000 + offset;
    ASSERT_TRUE(w.check_and_update(last));
    EXPECT_FALSE(w.check_and_update(last - kW - 1)) << offset;
    EXPECT_TRUE(w.check_and_update(last - kW)) << offset;
    EXPECT_FALSE(w.check_and_update(last - kW)) << offset;
    EXPECT_TRUE(w.check_and_update(last - 1)) << offset;
    EXPECT_TRUE(w.check_and_update(last + 1)) << offset;
  }
}

TEST(ReplayWindow, PartialAdvanceClearsOnlyRecycledBlocks) {
  ReplayWindow w;
  // Fill all 128 blocks: counters 0..8191.
  for (std::uint64_t c = 0; c < 128 * 64; ++c) {
    ASSERT_TRUE(w.check_and_update(c));
  }
  // Advance by 64 blocks: ring slots 0..63 are recycled for blocks 128..191.
  const std::uint64_t last = 8191 + 64 * 64;
  ASSERT_TRUE(w.check_and_update(last));
  for (std::uint64_t c = 8192; c < last; ++c) {
    ASSERT_TRUE(w.check_and_update(c)) << c;  // fresh, not confused with blocks 0..63
  }
  for (std::uint64_t c = last - kW; c < 8192; ++c) {
    ASSERT_FALSE(w.check_and_update(c)) << c;  // still remembered as seen
  }
  EXPECT_FALSE(w.check_and_update(last - kW - 1));  // too old
}

TEST(ReplayWindow, FarFutureJumpClearsTheRing) {
  ReplayWindow w;
  for (std::uint64_t c = 0; c < 128 * 64; ++c) {
    ASSERT_TRUE(w.check_and_update(c));
  }
  // Whole multiples of the ring size map every old bit onto a live slot: all must be cleared.
  for (std::uint64_t jump : {std::uint64_t{128 * 64 * 2}, std::uint64_t{1} << 40}) {
    const std::uint64_t last = 128 * 64 - 1 + jump;
    ASSERT_TRUE(w.check_and_update(last));
    for (std::uint64_t c = last - kW; c < last; ++c) {
      ASSERT_TRUE(w.check_and_update(c)) << c;
    }
    for (std::uint64_t c = last - kW; c <= last; ++c) {
      ASSERT_FALSE(w.check_and_update(c)) << c;
    }
    EXPECT_FALSE(w.check_and_update(5));
  }
}

TEST(ReplayWindow, LimitIsExclusiveAndRejectionLeavesStateAlone) {
  ReplayWindow w;
  EXPECT_FALSE(w.check_and_update(100, 100));
  EXPECT_FALSE(w.check_and_update(1000000, 100));  // would have moved the window if accepted
  EXPECT_TRUE(w.check_and_update(99, 100));
  EXPECT_TRUE(w.check_and_update(0, 100));  // still inside: the refused counters did not count
  EXPECT_FALSE(w.check_and_update(~std::uint64_t{0}));
}

TEST(ReplayWindow, WouldAcceptEdgesAndLimit) {
  ReplayWindow w;
  EXPECT_TRUE(w.would_accept(0));
  EXPECT_FALSE(w.would_accept(kR)) << "the limit is exclusive";
  EXPECT_FALSE(w.would_accept(5, 5));
  ASSERT_TRUE(w.check_and_update(kW + 10));
  EXPECT_FALSE(w.would_accept(kW + 10)) << "seen";
  EXPECT_TRUE(w.would_accept(10)) << "exactly kWindowSize below: still acceptable";
  EXPECT_FALSE(w.would_accept(9)) << "one further: too old";
  EXPECT_TRUE(w.would_accept(kW + 11));
  EXPECT_TRUE(w.check_and_update(10)) << "would_accept marked nothing";
}

TEST(ReplayWindow, Reset) {
  ReplayWindow w;
  ASSERT_TRUE(w.check_and_update(0));
  ASSERT_TRUE(w.check_and_update(100000));
  ASSERT_FALSE(w.check_and_update(0));
  w.reset();
  EXPECT_TRUE(w.check_and_update(0));
  EXPECT_TRUE(w.check_and_update(1));
  EXPECT_FALSE(w.check_and_update(1));
}

// Random traffic against the definition: accept iff below the limit, unseen, and at most kW
// behind the highest accepted counter.
TEST(ReplayWindow, RandomAgainstModel) {
  const std::uint64_t seed = 0xc0ffee;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  ReplayWindow w;
  std::set<std::uint64_t> seen;
  std::uint64_t highest = 0;
  std::uint64_t next = 0;
  int accepted = 0;
  int rejected = 0;
  for (int i = 0; i < 200000; ++i) {
    std::uint64_t c;
    switch (rng() % 10) {
      case 0:  // around the window edge
        c = highest > kW + 70 ? highest - kW - 70 + rng() % 140 : rng() % (kW + 70);
        break;
      case 1:  // anywhere behind
        c = highest == 0 ? 0 : rng() % highest;
        break;
      case 2:  // jump ahead, sometimes past the whole ring
        next += rng() % 2 ? rng() % 4096 : rng() % 20000;
        c = next;
        break;
      default:  // mostly increasing, a little reordered
        next += 1;
        c = next > 40 ? next - rng() % 40 : next;
        break;
    }
    const bool expect = seen.count(c) == 0 && (c > highest || highest - c <= kW);
    // The pre-authentication test agrees with the model and changes nothing (asked twice).
    ASSERT_EQ(w.would_accept(c), expect) << "i " << i << " counter " << c;
    ASSERT_EQ(w.would_accept(c), expect) << "i " << i << " counter " << c;
    ASSERT_EQ(w.check_and_update(c), expect) << "i " << i << " counter " << c;
    if (expect) {
      seen.insert(c);
      highest = std::max(highest, c);
      ++accepted;
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 10000);
  EXPECT_GT(rejected, 10000);
}

}  // namespace
}  // namespace warren::wg
