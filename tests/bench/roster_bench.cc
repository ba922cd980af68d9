// Coordinator: roster fan-out (issue 13's benchmark "roster fan-out time for 1,000 simulated
// nodes"). The roster core (server/roster_service.h) holds N nodes, each with a session that
// took its snapshot; one iteration is one node's changed endpoint report and the tick that
// turns it into every session's frame — from the change to every session's bytes being
// produced (what the service thread then hands to the EnrollServer; the TLS writes are not
// included). A second benchmark measures the snapshot every session gets after a coordinator
// restart (all N request version 0 in one tick).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "server/roster_service.h"

namespace {

using namespace warren;

crypto::PublicKey key(int i) {
  crypto::PrivateKey k;
  k.data()[3] = static_cast<std::uint8_t>(i);
  k.data()[4] = static_cast<std::uint8_t>(i >> 8);
  k.data()[6] = 77;
  return crypto::derive_public_key(k);
}

/// N mesh nodes as the registry keeps them; collision indexes as the coordinator assigns them.
std::vector<server::ClientRecord> clients(int n) {
  const mesh::AddressPlan plan;
  std::set<net::IpAddress> taken;
  std::vector<server::ClientRecord> out;
  for (int i = 0; i < n; ++i) {
    server::ClientRecord c;
    c.name = "node" + std::to_string(i);
    c.public_key = key(i);
    c.invite_id = "0123456789abcdef";
    c.enrolled_at = i;
    const std::string id = c.public_key.to_base64();
    auto a = *plan.assign_v4(id, [&](const net::IpAddress& x) { return taken.count(x) != 0; });
    taken.insert(a.address);
    c.mesh_v4_index = a.index;
    c.leases = {server::Lease{a.address, false}, server::Lease{plan.v6(id), false}};
    out.push_back(std::move(c));
  }
  return out;
}

net::Endpoint endpoint(int i) {
  return *net::Endpoint::parse("198.51." + std::to_string(i / 250 % 250) + "." +
                               std::to_string(1 + i % 250) + ":" + std::to_string(40000 + i % 20000));
}

void BM_RosterFanOutOneChange(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  server::RosterCore core(mesh::AddressPlan(), [](const std::string&) {});
  core.set_clients(clients(n));
  for (int i = 0; i < n; ++i) {
    core.request(static_cast<server::SessionId>(i + 1), key(i), 0);
    core.report_endpoints(key(i), {{endpoint(i)}, endpoint(i + 1)});
  }
  while (!core.tick().empty()) {
  }  // every session has its snapshot now (a tick's byte budget may take several ticks)
  std::size_t bytes = 0;
  int step = 0;
  for (auto _ : state) {
    ++step;
    core.report_endpoints(key(step % n), {{endpoint(step)}, endpoint(step + 7)});
    auto frames = core.tick();
    if (frames.size() != static_cast<std::size_t>(n))
      state.SkipWithError("not every session got the delta");
    bytes = frames.empty() ? 0 : frames.front().message->size();
    benchmark::DoNotOptimize(frames);
  }
  state.counters["sessions"] = n;
  state.counters["frame_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RosterFanOutOneChange)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_RosterSnapshotToEverySession(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  server::RosterCore core(mesh::AddressPlan(), [](const std::string&) {});
  core.set_clients(clients(n));
  for (int i = 0; i < n; ++i)
    core.report_endpoints(key(i), {{endpoint(i)}, endpoint(i + 1)});
  (void)core.tick();
  // All of them in one tick: the time to produce every session's snapshot, without the byte
  // budget that spreads them over several ticks in the service.
  core.set_max_bytes_per_tick(SIZE_MAX);
  std::size_t bytes = 0;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i)
      core.request(static_cast<server::SessionId>(i + 1), key(i), 0);
    auto frames = core.tick();
    bytes = frames.empty() ? 0 : frames.front().message->size();
    benchmark::DoNotOptimize(frames);
  }
  state.counters["sessions"] = n;
  state.counters["snapshot_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RosterSnapshotToEverySession)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
