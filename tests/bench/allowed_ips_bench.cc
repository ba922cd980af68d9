// AllowedIps lookups, the per-packet cryptokey-routing step, with 1k and 100k random prefixes.
// Half the queried addresses fall inside stored prefixes (random host bits), half are random.

#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "net/ip_address.h"
#include "wg/allowed_ips.h"

namespace {

using warren::net::IpAddress;
using warren::net::Prefix;
using warren::wg::AllowedIps;
using warren::wg::PeerId;

IpAddress random_address(std::mt19937_64& rng, bool v6) {
  if (!v6) {
    return IpAddress::v4(static_cast<std::uint32_t>(rng()));
  }
  std::array<std::uint8_t, 16> b{};
  const std::uint64_t hi = rng();
  const std::uint64_t lo = rng();
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    b[static_cast<std::size_t>(8 + i)] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  // Keep to 2000::/4 like global unicast, so prefixes share their top bits as in real tables.
  b[0] = static_cast<std::uint8_t>(0x20 | (b[0] & 0x0f));
  return IpAddress::v6(b);
}

// `address` with bits from `keep` on replaced by those of `noise`.
IpAddress blend(const IpAddress& address, unsigned keep, const IpAddress& noise) {
  std::array<std::uint8_t, 16> b{};
  for (std::size_t i = 0; i < address.size(); ++i) {
    const unsigned lo = static_cast<unsigned>(i) * 8;
    std::uint8_t m = keep >= lo + 8 ? 0xff
                     : keep <= lo   ? 0
                                    : static_cast<std::uint8_t>(0xff << (8 - (keep - lo)));
    b[i] = static_cast<std::uint8_t>((address.data()[i] & m) | (noise.data()[i] & ~m));
  }
  return *IpAddress::from_bytes(b.data(), address.size());
}

struct Fixture {
  AllowedIps table;
  std::vector<IpAddress> queries;
};

Fixture make_fixture(std::size_t prefixes, bool v6) {
  Fixture f;
  std::mt19937_64 rng(42);
  std::vector<Prefix> stored;
  while (f.table.size() < prefixes) {
    // Lengths like real allowed IPs: mostly /16../32 (v4) or /32../128 (v6), many host routes.
    const unsigned max = v6 ? 128 : 32;
    const unsigned min = v6 ? 32 : 16;
    const unsigned length =
        rng() % 4 == 0 ? max : min + static_cast<unsigned>(rng() % (max - min + 1));
    const Prefix p{random_address(rng, v6), static_cast<std::uint8_t>(length)};
    f.table.insert(p, static_cast<PeerId>(rng() % 1000));
    stored.push_back(p);
  }
  constexpr std::size_t kQueries = 1 << 14;
  for (std::size_t i = 0; i < kQueries; ++i) {
    if (i % 2 == 0) {
      const Prefix& p = stored[rng() % stored.size()];
      f.queries.push_back(blend(p.address, p.length, random_address(rng, v6)));
    } else {
      f.queries.push_back(random_address(rng, v6));
    }
  }
  return f;
}

void lookup_bench(benchmark::State& state, bool v6) {
  const Fixture f = make_fixture(static_cast<std::size_t>(state.range(0)), v6);
  std::size_t i = 0;
  std::size_t hits = 0;
  for (auto _ : state) {
    const auto peer = f.table.lookup(f.queries[i]);
    benchmark::DoNotOptimize(peer);
    hits += peer.has_value();
    i = (i + 1) & (f.queries.size() - 1);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hit_ratio"] = static_cast<double>(hits) /
                                static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
}

void BM_AllowedIpsLookupV4(benchmark::State& state) {
  lookup_bench(state, false);
}
void BM_AllowedIpsLookupV6(benchmark::State& state) {
  lookup_bench(state, true);
}

BENCHMARK(BM_AllowedIpsLookupV4)->Arg(1000)->Arg(100000);
BENCHMARK(BM_AllowedIpsLookupV6)->Arg(1000)->Arg(100000);

// Building the table: the configuration path, for scale.
void BM_AllowedIpsInsert(benchmark::State& state) {
  const bool v6 = state.range(1) != 0;
  std::mt19937_64 rng(7);
  std::vector<Prefix> prefixes;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    prefixes.push_back(Prefix{random_address(rng, v6), static_cast<std::uint8_t>(v6 ? 64 : 24)});
  }
  for (auto _ : state) {
    AllowedIps table;
    for (const auto& p : prefixes) {
      table.insert(p, 1);
    }
    benchmark::DoNotOptimize(table.size());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_AllowedIpsInsert)->Args({100000, 0})->Args({100000, 1})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
