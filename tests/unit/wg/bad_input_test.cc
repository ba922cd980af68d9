// Every message type truncated, extended, bit-flipped, retyped and with non-zero reserved bytes:
// each mutation is dropped and counted, answers nothing, and the session keeps working.

#include <gtest/gtest.h>

#include <numeric>

#include "support/wg_harness.h"
#include "wg/messages.h"

namespace warren::wg {
namespace {

using test::Network;
using test::Node;

std::uint64_t total_drops(const Device& d) {
  std::uint64_t n = 0;
  for (int i = 1; i < static_cast<int>(Drop::kCount); ++i)
    n += d.drop_count(static_cast<Drop>(i));
  return n;
}

class BadInput : public ::testing::Test {
 protected:
  BadInput()
      : a("a", 5, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1"),
        b("b", 6, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2") {
    net.nodes = {&a, &b};
    Network::connect(a, b);
    Network::connect(b, a);
    // Record one genuine message of each type as a starts a session with b.
    net.lose = [&](const Node& src, const Node&, const test::Datagram& d) {
      auto t = load_le32(d.bytes.data());
      if (!samples.count(t) && (t != kMessageTransport || d.bytes.size() > kKeepaliveSize)) {
        samples[t] = d.bytes;
      }
      (void)src;
      return false;
    };
    net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 60));
    net.run();
    net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 60));
    net.run();
    net.lose = nullptr;
    // A cookie reply, from b under load answering a fresh initiation of a third node.
    Node c("c", 7, *net::Endpoint::parse("192.0.2.3:51820"), "10.0.0.3");
    Network::connect(c, b);
    Network::connect(b, c);
    b.device.force_under_load(true);
    net.send_ip(c, test::ipv4_packet("10.0.0.3", "10.0.0.2", 10));
    auto init = c.sink.out().at(0).bytes;
    c.sink.out().clear();
    CollectingSinkOut(b, c, init);
    b.device.force_under_load(std::nullopt);
    b.sink.out().clear();
  }

  void CollectingSinkOut(Node& server, Node& client, std::vector<std::uint8_t> init) {
    (void)server.device.decapsulate({client.addr, std::nullopt, 0}, init, net.now, server.sink);
    samples[kMessageCookieReply] = server.sink.out().at(0).bytes;
  }

  // Feeds a mutated datagram to `to`; asserts it is dropped, counted and answered by nothing.
  void expect_dropped(Node& to, const Node& from, std::vector<std::uint8_t> bytes,
                      const std::string& what) {
    const auto before = total_drops(to.device);
    const auto received = to.received.size();
    to.sink.out().clear();
    auto r = to.device.decapsulate({from.addr, std::nullopt, 0}, bytes, net.now, to.sink);
    EXPECT_EQ(r.verdict, Verdict::kDrop) << what;
    EXPECT_NE(r.drop, Drop::kNone) << what;
    EXPECT_EQ(total_drops(to.device), before + 1) << what;
    EXPECT_TRUE(to.sink.out().empty()) << what << ": a bad packet must not be answered";
    EXPECT_EQ(to.received.size(), received) << what;
  }

  Node a, b;
  Network net;
  std::map<std::uint32_t, std::vector<std::uint8_t>> samples;
};

TEST_F(BadInput, EveryMutationOfEveryTypeIsDroppedAndCounted) {
  ASSERT_EQ(samples.size(), 4u);
  // Thousands of handshake messages in one (fake) second would put the devices under load,
  // where a valid mac1 with a bad mac2 is rightly answered by a cookie reply; that path has its
  // own test below. Here every mutation must be silently dropped.
  a.device.force_under_load(false);
  b.device.force_under_load(false);
  // Initiations and transport go to b (the receiver of a's messages); responses and cookie
  // replies go to a, whose pending handshake they would answer.
  for (auto& [type, msg] : samples) {
    Node& to = (type == kMessageInitiation || type == kMessageTransport) ? b : a;
    Node& from = (&to == &b) ? a : b;
    std::vector<std::uint8_t> sample = msg;
    for (std::size_t len = 0; len < sample.size(); ++len) {
      expect_dropped(to, from, std::vector<std::uint8_t>(sample.begin(), sample.begin() + len),
                     "type " + std::to_string(type) + " truncated to " + std::to_string(len));
    }
    if (type != kMessageTransport) {
      for (std::size_t extra = 1; extra <= 16; ++extra) {
        auto longer = sample;
        longer.resize(sample.size() + extra, 0);
        expect_dropped(to, from, longer,
                       "type " + std::to_string(type) + " extended by " + std::to_string(extra));
      }
    }
    for (std::size_t bit = 0; bit < sample.size() * 8; ++bit) {
      auto flipped = sample;
      flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      expect_dropped(to, from, flipped,
                     "type " + std::to_string(type) + " bit " + std::to_string(bit));
    }
    for (std::uint32_t t : {0u, 5u, 255u}) {
      auto retyped = sample;
      retyped[0] = static_cast<std::uint8_t>(t);
      expect_dropped(to, from, retyped, "retyped to " + std::to_string(t));
    }
    for (int r = 1; r <= 3; ++r) {
      auto reserved = sample;
      reserved[r] = 1;
      expect_dropped(to, from, reserved, "reserved byte " + std::to_string(r));
    }
  }
  // The established session is unharmed.
  net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 60));
  net.send_ip(b, test::ipv4_packet("10.0.0.2", "10.0.0.1", 60));
  net.run();
  EXPECT_EQ(b.received.size(), 3u);
  EXPECT_EQ(a.received.size(), 1u);
}

TEST_F(BadInput, UnderLoadOnlyValidMac1EarnsACookie) {
  // A flood of initiations: automatic under-load detection engages, and from then on an
  // initiation with a valid mac1 but no mac2 gets a 64-byte cookie reply, while one with a bad
  // mac1 gets nothing at all.
  auto init = samples.at(kMessageInitiation);
  std::size_t cookies = 0;
  const auto cookies_before = b.device.drop_count(Drop::kCookieSent);
  for (int i = 0; i < 3000; ++i) {
    b.sink.out().clear();
    auto copy = init;
    (void)b.device.decapsulate({a.addr, std::nullopt, 0}, copy, net.now, b.sink);
    for (auto& d : b.sink.out()) {
      EXPECT_EQ(d.bytes.size(), kCookieReplySize);
      ++cookies;
    }
  }
  EXPECT_GT(cookies, 1000u);
  EXPECT_EQ(b.device.drop_count(Drop::kCookieSent) - cookies_before, cookies);
  auto bad = init;
  bad[msg::kInitMac1] ^= 1;
  expect_dropped(b, a, bad, "bad mac1 under load");
  EXPECT_GE(b.device.drop_count(Drop::kBadMac1), 1u);
}

// A data packet whose counter the window already holds is dropped before its AEAD open: a
// replay with its ciphertext edited is still counted as replayed, not as a decryption failure
// (a replay flood then costs no decryption), and the session goes on.
TEST_F(BadInput, ReplayIsDroppedBeforeDecryption) {
  auto replay = samples.at(kMessageTransport);  // a delivered packet: its counter is seen
  replay[replay.size() - 1] ^= 0x01;            // the tag no longer verifies
  const auto replayed0 = b.device.drop_count(Drop::kReplayedCounter);
  const auto failed0 = b.device.drop_count(Drop::kDecryptFailed);
  expect_dropped(b, a, replay, "edited replay");
  EXPECT_EQ(b.device.drop_count(Drop::kReplayedCounter), replayed0 + 1);
  EXPECT_EQ(b.device.drop_count(Drop::kDecryptFailed), failed0);
  net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 20));
  net.run();
  EXPECT_EQ(b.received.size(), 3u);
}

TEST_F(BadInput, GarbageOfEverySizeNeverCrashes) {
  test::ScriptedRandom rng(99);
  for (std::size_t len = 0; len < 300; ++len) {
    std::vector<std::uint8_t> junk(len);
    rng.fill(junk);
    if (len >= 4)
      junk[0] = static_cast<std::uint8_t>(1 + len % 4), junk[1] = junk[2] = junk[3] = 0;
    expect_dropped(b, a, junk, "junk of " + std::to_string(len));
  }
}

TEST_F(BadInput, MalformedInnerPacketsDropped) {
  // A valid session carrying plaintext that is not an IP packet, or lies about its length.
  for (auto inner : {std::vector<std::uint8_t>(40, 0x00), std::vector<std::uint8_t>(40, 0x45)}) {
    std::vector<std::uint8_t> buf(kSendHeadroom + inner.size() + kSendTailroom);
    std::memcpy(buf.data() + kSendHeadroom, inner.data(), inner.size());
    // encapsulate refuses non-IP input itself.
    auto r = a.device.encapsulate(buf, inner.size(), net.now, a.sink);
    EXPECT_EQ(r.verdict, Verdict::kDrop);
  }
  auto too_long = test::ipv4_packet("10.0.0.1", "10.0.0.2", 10);
  store_be16(&too_long[2], 2000);  // claims more than it carries
  net.send_ip(a, too_long);
  net.run();
  EXPECT_EQ(b.device.drop_count(Drop::kBadInnerPacket), 1u);
}

}  // namespace
}  // namespace warren::wg
