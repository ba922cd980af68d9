// UDP offloads on loopback: what UDP_SEGMENT (send) and UDP_GRO (receive) save per datagram.
//   BM_UdpBatch/gso/gro: one iteration sends 128 WireGuard-sized datagrams (1452 bytes, the
//   transport message for a 1420-byte inner packet) from one UdpBind to another on 127.0.0.1
//   and receives them all. gso/gro = 0/1 switch the offloads (BindOptions). Loopback keeps GSO
//   super-datagrams whole for a GRO receiver, as veth does, so gso=1 gro=1 is the best case;
//   gso=1 gro=0 makes the kernel segment on receive (closer to a NIC without GRO).
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>
#include <vector>

#include "platform/udp.h"

namespace warren::platform {
namespace {

constexpr std::size_t kBatch = 128;
constexpr std::size_t kDatagram = 1452;

void BM_UdpBatch(benchmark::State& state) {
  auto factory = make_system_bind_factory();
  BindOptions o{.ipv6 = false};
  o.gso = state.range(0) != 0;
  o.gro = state.range(1) != 0;
  auto a = factory->open(o);
  auto b = factory->open(o);
  if (!a.ok() || !b.ok()) {
    state.SkipWithError("cannot open UDP binds on loopback");
    return;
  }
  std::vector<std::vector<std::uint8_t>> payloads(kBatch,
                                                  std::vector<std::uint8_t>(kDatagram, 0x5a));
  const net::Path to{{*net::IpAddress::parse("127.0.0.1"), (*b)->port()}, {}, 0};
  std::vector<OutDatagram> out;
  for (auto& p : payloads)
    out.push_back(OutDatagram{p, to, false});
  std::vector<std::vector<std::uint8_t>> storage(kBatch, std::vector<std::uint8_t>(2048));
  std::vector<Bytes> views;
  for (auto& s : storage)
    views.emplace_back(s);
  std::vector<std::size_t> sizes(kBatch);
  std::vector<net::Path> paths(kBatch);
  std::uint64_t lost = 0;
  for (auto _ : state) {
    BatchResult s = (*a)->send(out);
    std::size_t got = 0;
    for (int idle = 0; got < s.count && idle < 1000;) {
      BatchResult r = (*b)->receive(0, views, sizes, paths);
      got += r.count;
      if (r.count == 0) {
        ++idle;
        std::this_thread::yield();
      }
    }
    lost += kBatch - got;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kBatch * kDatagram));
  state.counters["lost"] = static_cast<double>(lost);
  state.counters["gso"] = (*a)->offload_state(0).gso;
  state.counters["gro"] = (*b)->offload_state(0).gro;
}
BENCHMARK(BM_UdpBatch)
    ->ArgNames({"gso", "gro"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1});

}  // namespace
}  // namespace warren::platform

BENCHMARK_MAIN();
