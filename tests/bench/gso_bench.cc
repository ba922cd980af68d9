// The TUN offload work in userspace (net/gso), on one core:
//   BM_Checksum: the Internet checksum over N bytes.
//   BM_SplitTso: one 64 KiB IPv4 TSO super-packet (gso_size 1368, TCP timestamps) parsed and
//     split into 47 complete packets with fresh IPv4/TCP checksums (the TUN read side).
//   BM_Coalesce: 47 MTU-size TCP segments of one flow grouped into one super-packet, each
//     member's checksum verified (the TUN write side; the payloads are not copied, the TUN
//     write gathers them).
//   BM_CoalesceFourFlows: 128 segments of four interleaved flows.
// Bytes/s are IP bytes moved.

#include <benchmark/benchmark.h>

#include "net/gso.h"
#include "unit/net/gso_packets.h"

namespace warren {
namespace {

using testing::build_packet;
using testing::PacketSpec;
using Packet = std::vector<std::uint8_t>;

constexpr std::uint16_t kSeg = 1368;  // MSS for a 1420 tunnel MTU with TCP timestamps

Packet tso_frame() {
  PacketSpec s{.tcp_options = testing::timestamp_option(1, 2), .payload = 47 * kSeg};
  Packet p = build_packet(s);
  Packet f(net::kVirtioNetHdrSize);
  net::VirtioNetHdr h{net::kVirtioNeedsCsum, net::kGsoTcpV4, 52, kSeg, 20, 16};
  net::encode_virtio_net_hdr(h, f.data());
  f.insert(f.end(), p.begin(), p.end());
  return f;
}

std::vector<Packet> segments(std::size_t n, int flows) {
  std::vector<Packet> out;
  for (std::size_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(i % static_cast<std::size_t>(flows));
    const std::size_t nth = i / static_cast<std::size_t>(flows);
    PacketSpec s{.sport = static_cast<std::uint16_t>(40000 + k),
                 .seq = static_cast<std::uint32_t>(nth * kSeg),
                 .tcp_options = testing::timestamp_option(1, 2),
                 .id = static_cast<std::uint16_t>(nth),
                 .payload = kSeg};
    out.push_back(build_packet(s));
  }
  return out;
}

void BM_Checksum(benchmark::State& state) {
  Packet d(static_cast<std::size_t>(state.range(0)), 0x5a);
  for (auto _ : state) {
    auto s = net::checksum_add(d);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * d.size()));
}
BENCHMARK(BM_Checksum)->Arg(1420)->Arg(65535);

void BM_SplitTso(benchmark::State& state) {
  const Packet frame = tso_frame();
  std::vector<Packet> out(64, Packet(2048));
  std::size_t segs = 0;
  for (auto _ : state) {
    net::GsoParse r = net::parse_gso_frame(frame);
    for (std::size_t i = 0; i < r.frame.segments; ++i)
      benchmark::DoNotOptimize(net::split_segment(r.frame, i, out[i]));
    segs = r.frame.segments;
  }
  state.SetBytesProcessed(
      static_cast<std::int64_t>(state.iterations() * (frame.size() - net::kVirtioNetHdrSize)));
  state.counters["segments"] = static_cast<double>(segs);
}
BENCHMARK(BM_SplitTso);

void coalesce(benchmark::State& state, int flows, std::size_t n) {
  const std::vector<Packet> in = segments(n, flows);
  const std::vector<ConstBytes> views(in.begin(), in.end());
  net::GroCoalescer c;
  std::size_t frames = 0, bytes = 0;
  for (const Packet& p : in)
    bytes += p.size();
  for (auto _ : state) {
    frames = c.coalesce(views);
    benchmark::DoNotOptimize(c.frame(0));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["frames"] = static_cast<double>(frames);
}

void BM_Coalesce(benchmark::State& state) {
  coalesce(state, 1, 47);
}
BENCHMARK(BM_Coalesce);

void BM_CoalesceFourFlows(benchmark::State& state) {
  coalesce(state, 4, 128);
}
BENCHMARK(BM_CoalesceFourFlows);

}  // namespace
}  // namespace warren

BENCHMARK_MAIN();
