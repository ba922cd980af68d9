// HandshakeQueue: lanes are served best first and oldest first, a full lane refuses (and keeps
// what it holds intact), lanes do not take each other's room, and entries are exact copies.
#include "dataplane/handshake_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace warren::dataplane {
namespace {

using wg::Lane;

std::vector<std::uint8_t> message(std::uint8_t tag, std::size_t size = wg::kInitiationSize) {
  std::vector<std::uint8_t> m(size, tag);
  m[0] = 1;
  return m;
}

net::Path path(std::uint16_t port) {
  return net::Path{{*net::IpAddress::parse("192.0.2.9"), port}, std::nullopt, 0};
}

// Pops everything, returning each entry's tag byte (bytes[1]).
std::vector<int> drain(HandshakeQueue& q) {
  std::vector<int> tags;
  while (HandshakeQueue::Entry* e = q.front()) {
    tags.push_back(e->bytes[1]);
    q.pop();
  }
  return tags;
}

TEST(HandshakeQueue, BestLaneFirstOldestFirst) {
  HandshakeQueue q({4, 4, 4});
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.front(), nullptr);
  ASSERT_TRUE(q.push(Lane::kOther, path(1), message(10)));
  ASSERT_TRUE(q.push(Lane::kWithMac2, path(2), message(20)));
  ASSERT_TRUE(q.push(Lane::kOther, path(3), message(11)));
  ASSERT_TRUE(q.push(Lane::kKnownEndpoint, path(4), message(30)));
  ASSERT_TRUE(q.push(Lane::kWithMac2, path(5), message(21)));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.size(Lane::kOther), 2u);
  EXPECT_EQ(q.size(Lane::kDirect), 0u);
  EXPECT_EQ(drain(q), (std::vector<int>{30, 20, 21, 10, 11}));
  EXPECT_TRUE(q.empty());
}

TEST(HandshakeQueue, EntriesAreExactCopiesWithTheirPaths) {
  HandshakeQueue q({2, 2, 2});
  auto init = message(7);
  auto resp = message(8, wg::kResponseSize);
  ASSERT_TRUE(q.push(Lane::kOther, path(100), init));
  ASSERT_TRUE(q.push(Lane::kOther, path(200), resp));
  init[5] = 0xee;  // the queue holds a copy, not a view
  HandshakeQueue::Entry* e = q.front();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->from, path(100));
  ASSERT_EQ(e->datagram().size(), wg::kInitiationSize);
  EXPECT_EQ(e->datagram()[5], 7);
  q.pop();
  e = q.front();
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->from, path(200));
  EXPECT_EQ(std::vector<std::uint8_t>(e->datagram().begin(), e->datagram().end()), resp);
}

TEST(HandshakeQueue, AFullLaneRefusesAndKeepsItsEntriesOthersStillTake) {
  HandshakeQueue q({1, 2, 3});
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(q.push(Lane::kOther, path(1), message(static_cast<std::uint8_t>(40 + i))));
  EXPECT_FALSE(q.push(Lane::kOther, path(1), message(99))) << "lane full";
  ASSERT_TRUE(q.push(Lane::kKnownEndpoint, path(1), message(50)));
  EXPECT_FALSE(q.push(Lane::kKnownEndpoint, path(1), message(98)));
  ASSERT_TRUE(q.push(Lane::kWithMac2, path(1), message(60)));
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(drain(q), (std::vector<int>{50, 60, 40, 41, 42})) << "nothing overwritten";
}

TEST(HandshakeQueue, RingWrapsAroundManyTimes) {
  HandshakeQueue q({3, 3, 3});
  std::vector<int> want, got;
  for (int round = 0; round < 50; ++round) {
    for (int k = 0; k < 2; ++k) {
      const auto tag = static_cast<std::uint8_t>(round * 2 + k);
      ASSERT_TRUE(q.push(Lane::kOther, path(1), message(tag)));
      want.push_back(tag);
    }
    for (int k = 0; k < 2; ++k) {
      got.push_back(q.front()->bytes[1]);
      q.pop();
    }
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(q.empty());
}

TEST(HandshakeQueue, RefusesWhatIsNoHandshakeMessage) {
  HandshakeQueue q({2, 2, 2});
  EXPECT_FALSE(q.push(Lane::kDirect, path(1), message(1)));
  EXPECT_FALSE(q.push(Lane::kOther, path(1), message(1, wg::kInitiationSize + 1)));
  EXPECT_TRUE(q.empty());
  q.pop();  // popping an empty queue is harmless
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace warren::dataplane
