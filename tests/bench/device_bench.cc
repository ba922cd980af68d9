// The per-packet path of the protocol core and the handshake, measured on one core.
//   BM_Encapsulate / BM_Decapsulate: a 1420-byte IP packet through wg::Device (lookup, nonce,
//     padding, ChaCha20-Poly1305 in place / decrypt, replay window, allowed-IPs source check).
//   BM_HandshakeInitiator / BM_HandshakeResponder: one side's share of a complete handshake;
//   BM_HandshakeComplete: both sides, initiation -> response -> confirmation, on one core.
//   BM_TickIdlePeers/N: one timer round (tick + next_deadline, 100 ms of fake time apart) of a
//     device with N configured, idle peers: the timer cost a server pays per tick.

#include <benchmark/benchmark.h>

#include "support/wg_harness.h"

namespace warren {
namespace {

using test::Network;
using test::Node;

struct Pair {
  Pair()
      : a("a", 1, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1"),
        b("b", 2, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2") {
    net.nodes = {&a, &b};
    Network::connect(a, b);
    Network::connect(b, a);
    net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 10));
    net.run();
  }
  Node a, b;
  Network net;
};

void BM_Encapsulate(benchmark::State& state) {
  Pair p;
  const std::size_t len = static_cast<std::size_t>(state.range(0));
  auto pkt = test::ipv4_packet("10.0.0.1", "10.0.0.2", len - 20);
  std::vector<std::uint8_t> buf(wg::kSendHeadroom + len + wg::kSendTailroom);
  for (auto _ : state) {
    std::memcpy(buf.data() + wg::kSendHeadroom, pkt.data(), len);
    auto r = p.a.device.encapsulate(buf, len, p.net.now, p.a.sink);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}
BENCHMARK(BM_Encapsulate)->Arg(1420)->Arg(64);

void BM_Decapsulate(benchmark::State& state) {
  Pair p;
  const std::size_t len = static_cast<std::size_t>(state.range(0));
  auto pkt = test::ipv4_packet("10.0.0.1", "10.0.0.2", len - 20);
  // Pre-encrypt a run of packets with increasing counters (the replay window forbids reuse).
  constexpr std::size_t kRun = 1 << 14;
  std::vector<std::vector<std::uint8_t>> wire(kRun);
  for (auto& w : wire) {
    std::vector<std::uint8_t> buf(wg::kSendHeadroom + len + wg::kSendTailroom);
    std::memcpy(buf.data() + wg::kSendHeadroom, pkt.data(), len);
    auto r = p.a.device.encapsulate(buf, len, p.net.now, p.a.sink);
    w.assign(buf.begin(), buf.begin() + r.length);
  }
  std::vector<std::uint8_t> scratch(wire[0].size());
  std::size_t i = 0;
  const net::Path from{p.a.addr, std::nullopt, 0};
  for (auto _ : state) {
    if (i == kRun) {
      state.PauseTiming();
      for (auto& w : wire) {  // a fresh run with newer counters
        std::vector<std::uint8_t> buf(wg::kSendHeadroom + len + wg::kSendTailroom);
        std::memcpy(buf.data() + wg::kSendHeadroom, pkt.data(), len);
        auto r = p.a.device.encapsulate(buf, len, p.net.now, p.a.sink);
        w.assign(buf.begin(), buf.begin() + r.length);
      }
      i = 0;
      state.ResumeTiming();
    }
    std::memcpy(scratch.data(), wire[i].data(), wire[i].size());
    auto r = p.b.device.decapsulate(from, scratch, p.net.now, p.b.sink);
    if (r.verdict != wg::Verdict::kToTun)
      state.SkipWithError("decapsulate failed");
    ++i;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}
BENCHMARK(BM_Decapsulate)->Arg(1420)->Arg(64);

// One complete handshake between two devices, both sides on this core.
void BM_HandshakeComplete(benchmark::State& state) {
  Pair p;
  for (auto _ : state) {
    // 5 s later each time: initiations are limited to one per REKEY_TIMEOUT per peer.
    p.net.advance(std::chrono::seconds(6));
    p.a.sink.out().clear();
    p.b.sink.out().clear();
    auto r = p.net.send_ip(p.a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 10));
    (void)r;
    p.net.run();
    benchmark::DoNotOptimize(p.b.received.size());
    state.PauseTiming();
    // Expire the session so the next iteration handshakes again.
    p.net.advance(wg::kRejectAfterTime);
    p.b.received.clear();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HandshakeComplete)->Unit(benchmark::kMicrosecond);

void BM_TickIdlePeers(benchmark::State& state) {
  const auto peers = static_cast<std::size_t>(state.range(0));
  test::ScriptedRandom rng(9);
  wg::Device device(rng);
  wg::ConfigDelta d;
  d.private_key = crypto::generate_private_key(rng);
  for (std::size_t i = 0; i < peers; ++i) {
    wg::PeerDelta p;
    p.public_key = crypto::derive_public_key(crypto::generate_private_key(rng));
    p.endpoint = net::Endpoint{*net::IpAddress::parse("192.0.2.1"),
                               static_cast<std::uint16_t>(1024 + i % 60000)};
    auto ip = std::to_string(10) + "." + std::to_string((i >> 16) & 255) + "." +
              std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + "/32";
    p.allowed_ips_add.push_back(*net::Prefix::parse(ip));
    d.peers.push_back(p);
  }
  test::CollectingSink sink;
  Now now{MonoTime(std::chrono::seconds(1000)), WallTime(std::chrono::seconds(1700000000))};
  if (!device.apply(d, now, sink))
    state.SkipWithError("apply failed");
  for (auto _ : state) {
    now.mono += std::chrono::milliseconds(100);
    device.tick(now, sink);
    benchmark::DoNotOptimize(device.next_deadline());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TickIdlePeers)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace warren

BENCHMARK_MAIN();
