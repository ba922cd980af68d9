#pragma once
// Shared by the tests that run whole engines on the in-memory network fakes
// (platform/fake/fake_network.h): a thread-safe seeded RandomSource and the pump that runs
// engines and the network until nothing moves.

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <random>
#include <span>

#include "base/random.h"
#include "dataplane/engine.h"
#include "platform/fake/fake_network.h"

namespace warren::test {

// Deterministic bytes, safe to share between an engine's workers.
class SeededRandom final : public RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : rng_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    std::lock_guard lock(mutex_);
    for (auto& b : out)
      b = static_cast<std::uint8_t>(rng_());
  }

 private:
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

// Pumps `engines` (single-threaded mode) and delivers the network's datagrams until neither
// has anything left to do; a test fails if that never happens.
inline void pump_engines(std::initializer_list<dataplane::Engine*> engines,
                         platform::fake::FakeNetwork& net) {
  for (int round = 0; round < 1000; ++round) {
    bool did = false;
    for (dataplane::Engine* e : engines)
      did |= e->pump();
    if (!did) {
      net.flush();
      for (dataplane::Engine* e : engines)
        did |= e->pump();
      if (!did)
        return;
    }
  }
  ADD_FAILURE() << "engines never went idle";
}

}  // namespace warren::test
