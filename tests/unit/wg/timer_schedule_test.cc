// The timer heap of wg::Device (device.cc): tick() visits only the peers that are due, and
// next_deadline() is never later than the next timer. Checked against the reference mode
// (DeviceOptions::tick_visits_every_peer, the behaviour before the heap) by running the same
// randomized traffic through both and comparing every datagram sent.

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "support/wg_harness.h"

namespace warren::wg {
namespace {

using namespace std::chrono_literals;
using test::Network;
using test::Node;

std::string spoke_tunnel_ip(std::size_t i) {
  return "10.0." + std::to_string(1 + i / 200) + "." + std::to_string(1 + i % 200);
}
net::Endpoint spoke_addr(std::size_t i) {
  return *net::Endpoint::parse("192.0." + std::to_string(10 + i / 200) + "." +
                               std::to_string(1 + i % 200) + ":51820");
}

// A hub with `n` configured peers (endpoints, no sessions): no timer runs until traffic.
TEST(TimerSchedule, OnlyDuePeersAreVisited) {
  constexpr std::size_t kPeers = 1000;
  Node hub("hub", 7, *net::Endpoint::parse("192.0.2.1:51820"), "10.255.0.1");
  std::vector<std::unique_ptr<Node>> spokes;
  for (std::size_t i = 0; i < kPeers; ++i) {
    spokes.push_back(std::make_unique<Node>("s" + std::to_string(i), 1000 + i, spoke_addr(i),
                                            spoke_tunnel_ip(i)));
    Network::connect(hub, *spokes.back());
  }
  Network net;
  net.nodes = {&hub};
  ASSERT_EQ(hub.device.peer_count(), kPeers);
  EXPECT_EQ(hub.device.next_deadline(), kNoDeadline);
  for (int i = 0; i < 50; ++i) {
    net.advance(100ms);
    hub.device.tick(net.now, hub.sink);
  }
  EXPECT_EQ(hub.device.timer_visits(), 0u);

  // Traffic for one peer: staged, an initiation, and its retransmit timer 5 s + jitter later.
  const MonoTime start = net.now.mono;
  ASSERT_EQ(net.send_ip(hub, test::ipv4_packet("10.255.0.1", spoke_tunnel_ip(500), 20)).verdict,
            Verdict::kQueued);
  ASSERT_EQ(hub.sink.out().size(), 1u);
  hub.sink.out().clear();
  const MonoTime deadline = hub.device.next_deadline();
  EXPECT_GE(deadline, start + kRekeyTimeout);
  EXPECT_LE(deadline, start + kRekeyTimeout + std::chrono::milliseconds(kRekeyTimeoutJitterMaxMs));

  // Before the deadline nothing is visited; at it, exactly that peer, which retries.
  net.now.mono = deadline - 1ns;
  hub.device.tick(net.now, hub.sink);
  EXPECT_EQ(hub.device.timer_visits(), 0u);
  EXPECT_TRUE(hub.sink.out().empty());
  net.now.mono = deadline;
  hub.device.tick(net.now, hub.sink);
  EXPECT_EQ(hub.device.timer_visits(), 1u);
  ASSERT_EQ(hub.sink.out().size(), 1u);
  EXPECT_EQ(load_le32(hub.sink.out()[0].bytes.data()), kMessageInitiation);
  EXPECT_EQ(hub.sink.out()[0].to.remote, spoke_addr(500));
  // The retry's own retransmit timer is scheduled in turn.
  EXPECT_GE(hub.device.next_deadline(), deadline + kRekeyTimeout);
  EXPECT_LE(hub.device.next_deadline(),
            deadline + kRekeyTimeout + std::chrono::milliseconds(kRekeyTimeoutJitterMaxMs));
}

// The reference mode visits every peer: the counter above is a real measure.
TEST(TimerSchedule, ReferenceModeVisitsEveryPeer) {
  DeviceOptions reference;
  reference.tick_visits_every_peer = true;
  Node hub("hub", 7, *net::Endpoint::parse("192.0.2.1:51820"), "10.255.0.1", reference);
  std::vector<std::unique_ptr<Node>> spokes;
  for (std::size_t i = 0; i < 20; ++i) {
    spokes.push_back(std::make_unique<Node>("s" + std::to_string(i), 1000 + i, spoke_addr(i),
                                            spoke_tunnel_ip(i)));
    Network::connect(hub, *spokes.back());
  }
  hub.device.tick(Now{MonoTime(1000s), WallTime{}}, hub.sink);
  EXPECT_EQ(hub.device.timer_visits(), 20u);
}

// One hub with `kSpokes` peers, each spoke a Device of its own, on a lossy network.
struct World {
  static constexpr std::size_t kSpokes = 12;

  explicit World(bool reference, std::uint64_t seed)
      : hub("hub", 7, *net::Endpoint::parse("192.0.2.1:51820"), "10.255.0.1", options(reference)),
        loss(seed) {
    net.nodes.push_back(&hub);
    for (std::size_t i = 0; i < kSpokes; ++i) {
      spokes.push_back(std::make_unique<Node>("s" + std::to_string(i), 1000 + i, spoke_addr(i),
                                              spoke_tunnel_ip(i)));
      Node& s = *spokes.back();
      // A third of the spokes keep the path open with persistent keepalives.
      Network::connect(hub, s, true, i % 3 == 0 ? 25 : 0);
      Network::connect(s, hub, true, i % 3 == 1 ? 15 : 0);
      net.nodes.push_back(&s);
    }
    net.lose = [this](const Node& from, const Node& to, const test::Datagram& d) {
      log.push_back(from.name + ">" + to.name + ":" + to_hex(d.bytes));
      return std::uniform_int_distribution<int>(0, 99)(loss) < loss_percent;
    };
  }
  static DeviceOptions options(bool reference) {
    DeviceOptions o;
    o.tick_visits_every_peer = reference;
    return o;
  }

  Node hub;
  std::vector<std::unique_ptr<Node>> spokes;
  Network net;
  std::mt19937_64 loss;
  int loss_percent = 10;
  std::vector<std::string> log;  // every datagram sent, in order
};

TEST(TimerSchedule, SameDatagramsAsVisitingEveryPeer) {
  World heap(false, 99);
  World ref(true, 99);
  std::mt19937_64 script(12345);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(script); };

  std::size_t deadline_ticks = 0;
  for (int step = 0; step < 4000; ++step) {
    // The heap's deadline may be early (a stale entry), never later than the reference's.
    const MonoTime dh = heap.hub.device.next_deadline();
    const MonoTime dr = ref.hub.device.next_deadline();
    ASSERT_LE(dh, dr) << "step " << step;

    // Move time to the next event: a random gap, or an earlier timer deadline (the hub's or a
    // spoke's), exactly as an engine would.
    MonoTime next = heap.net.now.mono + std::chrono::milliseconds(pick(3000));
    const MonoTime timer = std::min(dh, dr);
    if (timer < next) {
      next = std::max(timer, heap.net.now.mono);
      ++deadline_ticks;
    }
    for (std::size_t i = 0; i < World::kSpokes; ++i)
      next = std::min(next, std::max(heap.spokes[i]->device.next_deadline(), heap.net.now.mono));
    for (World* w : {&heap, &ref}) {
      w->net.advance(next - w->net.now.mono);
      w->net.tick_all();
      w->net.run();
    }

    const std::size_t action = pick(10);
    const std::size_t i = pick(World::kSpokes);
    for (World* w : {&heap, &ref}) {
      Node& s = *w->spokes[i];
      switch (action) {
        case 0:
        case 1:
        case 2:
          (void)w->net.send_ip(w->hub, test::ipv4_packet("10.255.0.1", s.tunnel_ip, 40));
          break;
        case 3:
        case 4:
          (void)w->net.send_ip(s, test::ipv4_packet(s.tunnel_ip, "10.255.0.1", 40));
          break;
        case 5: {
          // Switch the hub's persistent keepalive for this spoke on or off.
          ConfigDelta d;
          PeerDelta p;
          p.public_key = s.pub;
          p.update_only = true;
          p.persistent_keepalive = static_cast<std::uint16_t>((step % 2) ? 0 : 7);
          d.peers.push_back(p);
          ASSERT_TRUE(w->hub.device.apply(d, w->net.now, w->hub.sink));
          break;
        }
        case 6:
          w->loss_percent = static_cast<int>(step % 4 == 0 ? 100 : 10);  // outages come and go
          break;
        default:
          break;  // only time passes
      }
      w->net.run();
    }
    ASSERT_EQ(heap.log.size(), ref.log.size()) << "step " << step;
    if (!heap.log.empty()) {
      ASSERT_EQ(heap.log.back(), ref.log.back()) << "step " << step;
    }
  }
  EXPECT_EQ(heap.log, ref.log);
  EXPECT_GT(heap.log.size(), 1000u);  // the scenario did exercise the timers
  EXPECT_GT(deadline_ticks, 100u);
  // And the heap visited fewer peers than the reference.
  EXPECT_LT(heap.hub.device.timer_visits(), ref.hub.device.timer_visits() / 4);
  for (std::size_t i = 0; i < World::kSpokes; ++i)
    EXPECT_EQ(heap.spokes[i]->received, ref.spokes[i]->received);
  EXPECT_EQ(heap.hub.received, ref.hub.received);
}

}  // namespace
}  // namespace warren::wg
