// The engine's receive path end to end, pumped on one thread over the in-memory fakes: what the
// STUN/WireGuard demultiplexer (engine.cc, one 32-bit compare per datagram) adds to it.
//   BM_EngineTunnel: one iteration injects 128 1420-byte IP packets into A's TUN and pumps A and
//     B until B wrote them all to its TUN (A: read, encrypt, send; B: receive batch, demux,
//     decrypt, write). items/s = packets through the tunnel.
//   BM_EngineTunnelWithSink: the same with a StunSink set on B (the demux then runs is_stun for
//     non-WireGuard datagrams; data packets still take only the first compare).
// Both are dominated by ChaCha20-Poly1305 and the fakes' copies; compare the two, and a build
// without the demux, run to run (--benchmark_repetitions).
#include <benchmark/benchmark.h>

#include <mutex>
#include <random>

#include "crypto/x25519.h"
#include "dataplane/engine.h"
#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "unit/platform/test_packets.h"

namespace warren::dataplane {
namespace {

class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : rng_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>(rng_());
  }

 private:
  std::mt19937_64 rng_;
};

struct NullSink final : StunSink {
  void on_stun(const net::Path&, ConstBytes, Now) override {}
};

struct Side {
  Side(platform::fake::FakeNetwork& net, const char* addr, const char* tun_name, std::uint64_t seed,
       platform::Clock& clock, std::uint16_t port)
      : rng(seed), host(net.add_host({*net::IpAddress::parse(addr)})) {
    auto t = std::make_unique<platform::fake::FakeTun>(tun_name, 1, 1420);
    tun = t.get();
    engine = std::move(*Engine::create(std::move(t), host, clock, rng, nullptr,
                                       EngineOptions{.listen_port = port}));
    key = crypto::generate_private_key(rng);
  }
  SeededRandom rng;
  platform::fake::FakeHost& host;
  platform::fake::FakeTun* tun = nullptr;
  std::unique_ptr<Engine> engine;
  crypto::PrivateKey key;
};

void run(benchmark::State& state, bool sink) {
  platform::ManualClock clock;
  platform::fake::FakeNetwork net;
  Side a(net, "192.0.2.1", "wbnA", 1, clock, 51820);
  Side b(net, "192.0.2.2", "wbnB", 2, clock, 51821);
  NullSink null_sink;
  if (sink)
    b.engine->set_stun_sink(&null_sink);
  wg::ConfigDelta da;
  da.private_key = a.key;
  wg::PeerDelta pa;
  pa.public_key = crypto::derive_public_key(b.key);
  pa.endpoint = net::Endpoint{*net::IpAddress::parse("192.0.2.2"), 51821};
  pa.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.2/32"));
  da.peers.push_back(pa);
  wg::ConfigDelta db;
  db.private_key = b.key;
  wg::PeerDelta pb;
  pb.public_key = crypto::derive_public_key(a.key);
  pb.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.1/32"));
  db.peers.push_back(pb);
  if (!a.engine->apply(da) || !b.engine->apply(db)) {
    state.SkipWithError("configuration failed");
    return;
  }
  const auto packet = testing::make_ip_packet(*net::IpAddress::parse("10.0.0.1"),
                                              *net::IpAddress::parse("10.0.0.2"), 1400, 0x11);
  auto pump = [&] {
    for (int i = 0; i < 100; ++i) {
      bool did = a.engine->pump();
      did |= b.engine->pump();
      if (!did)
        return;
    }
  };
  a.tun->inject(packet);  // the handshake
  pump();
  (void)b.tun->take_written();
  std::size_t moved = 0;
  for (auto _ : state) {
    for (int i = 0; i < 128; ++i)
      a.tun->inject(packet);
    pump();
    moved += b.tun->take_written().size();
  }
  if (moved != 128 * static_cast<std::size_t>(state.iterations()))
    state.SkipWithError("packets lost");
  state.SetItemsProcessed(static_cast<std::int64_t>(moved));
}

void BM_EngineTunnel(benchmark::State& state) {
  run(state, false);
}
void BM_EngineTunnelWithSink(benchmark::State& state) {
  run(state, true);
}
BENCHMARK(BM_EngineTunnel)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_EngineTunnelWithSink)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace warren::dataplane

BENCHMARK_MAIN();
