#include "crypto/random.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace warren::crypto {

void SystemRandom::fill(std::span<std::uint8_t> out) {
  // RAND_bytes takes an int length, hence the chunks. A CSPRNG failure leaves no safe way to
  // continue (keys, indices and nonces would be predictable), so it ends the process.
  while (!out.empty()) {
    const std::size_t n = std::min<std::size_t>(out.size(), INT_MAX);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
      std::fprintf(stderr, "warren: RAND_bytes failed; refusing to continue without a CSPRNG\n");
      std::abort();
    }
    out = out.subspan(n);
  }
}

SystemRandom& SystemRandom::instance() {
  static SystemRandom rng;
  return rng;
}

}  // namespace warren::crypto
