// wg::Device promises that encapsulate/decapsulate/tick/apply/snapshot may run at once on many
// threads. Hammer that promise (run it under `-DWARREN_SANITIZE=thread` to check for races):
// data both ways on several threads, while another thread reconfigures the peers (keepalive
// toggles, unrelated prefixes added and removed), snapshots and ticks. No packet may be lost.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/wg_harness.h"

namespace warren::wg {
namespace {

using test::Network;
using test::Node;

TEST(DeviceConcurrency, DataFlowsWhileConfigChanges) {
  Node a("a", 1, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1");
  Node b("b", 2, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2");
  Network net;
  net.nodes = {&a, &b};
  Network::connect(a, b);
  Network::connect(b, a);
  net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 10));
  net.run();
  net.send_ip(b, test::ipv4_packet("10.0.0.2", "10.0.0.1", 10));
  net.run();
  ASSERT_EQ(b.received.size(), 1u);
  const Now now = net.now;

  constexpr int kPerThread = 3000;
  std::atomic<bool> stop{false};
  std::atomic<int> delivered{0};
  auto pump = [&](Node& from, Node& to, const char* src, const char* dst) {
    test::CollectingSink sink_from, sink_to;
    const auto pkt = test::ipv4_packet(src, dst, 200);
    std::vector<std::uint8_t> buf(kSendHeadroom + pkt.size() + kSendTailroom);
    for (int i = 0; i < kPerThread; ++i) {
      std::memcpy(buf.data() + kSendHeadroom, pkt.data(), pkt.size());
      auto s = from.device.encapsulate(buf, pkt.size(), now, sink_from);
      if (s.verdict != Verdict::kToNetwork)
        continue;
      auto r = to.device.decapsulate({from.addr, std::nullopt, 0}, Bytes(buf.data(), s.length), now,
                                     sink_to);
      if (r.verdict == Verdict::kToTun)
        delivered.fetch_add(1);
    }
  };
  std::thread config([&] {
    test::CollectingSink sink;
    std::uint16_t ka = 0;
    while (!stop.load()) {
      ConfigDelta d;
      PeerDelta p;
      p.public_key = b.pub;
      p.persistent_keepalive = ka = static_cast<std::uint16_t>(ka == 0 ? 25 : 0);
      p.allowed_ips_add.push_back(*net::Prefix::parse("172.16.0.0/12"));
      p.allowed_ips_remove.push_back(*net::Prefix::parse("172.16.0.0/12"));
      d.peers.push_back(p);
      EXPECT_TRUE(a.device.apply(d, now, sink));
      auto snap = a.device.snapshot();
      EXPECT_EQ(snap.peers.size(), 1u);
      a.device.tick(now, sink);
      b.device.tick(now, sink);
      (void)a.device.next_deadline();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back(pump, std::ref(a), std::ref(b), "10.0.0.1", "10.0.0.2");
    workers.emplace_back(pump, std::ref(b), std::ref(a), "10.0.0.2", "10.0.0.1");
  }
  for (auto& w : workers)
    w.join();
  stop.store(true);
  config.join();
  // Nonces are unique across threads, and every packet lands inside the 8128-packet window.
  EXPECT_EQ(delivered.load(), 4 * kPerThread);
  EXPECT_EQ(b.device.drop_count(Drop::kReplayedCounter), 0u);
}

}  // namespace
}  // namespace warren::wg
