// aead.h promises no allocation per call once a thread has warmed up, and blake2s.h promises the
// same for MAC. OpenSSL allocates through CRYPTO_malloc, whose functions can be replaced before
// the library's first allocation: this file installs counting wrappers from a static
// initialiser (nothing in this binary touches OpenSSL before main) and counts the allocations
// made by this thread during the calls under test.

#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

#include "crypto/aead.h"
#include "crypto/blake2s.h"

namespace warren::crypto {
namespace {

thread_local long t_allocations = 0;

void* counting_malloc(std::size_t n, const char*, int) {
  ++t_allocations;
  return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char*, int) {
  ++t_allocations;
  return std::realloc(p, n);
}
void counting_free(void* p, const char*, int) {
  std::free(p);
}

// A C function: cannot throw.
const bool g_hooked =  // NOLINT(cert-err58-cpp)
    CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free);

TEST(Allocations, AeadSealAndOpenDoNotAllocateAfterWarmUp) {
  if (!g_hooked) {
    GTEST_SKIP() << "OpenSSL allocated before the hook could be installed";
  }
  std::array<std::uint8_t, kAeadKeySize> k1{}, k2{};
  k1.fill(1);
  k2.fill(2);
  std::vector<std::uint8_t> buf(1420 + kAeadTagSize, 0x33);
  const std::array<std::uint8_t, 8> ad{};
  const std::span<std::uint8_t> pt(buf.data(), 1420);
  // Warm-up: the first call on a thread creates its contexts.
  ASSERT_TRUE(aead_seal(k1, 0, pt, ad, buf));
  ASSERT_TRUE(aead_open(k1, 0, buf, ad, pt));

  const long before = t_allocations;
  for (std::uint64_t i = 1; i < 200; ++i) {
    const auto& key = i % 3 == 0 ? k2 : k1;  // key changes too, not just the nonce
    ASSERT_TRUE(aead_seal(key, i, pt, ad, buf));
    ASSERT_TRUE(aead_open(key, i, buf, ad, pt));
    buf[5] ^= 1;
    ASSERT_FALSE(aead_open(key, i, buf, ad, pt));  // failures must not allocate either
    if (i % 50 == 0) {
      aead_wipe_thread_keys();
    }
  }
  EXPECT_EQ(t_allocations - before, 0);
}

TEST(Allocations, MacDoesNotAllocateAfterWarmUp) {
  if (!g_hooked) {
    GTEST_SKIP() << "OpenSSL allocated before the hook could be installed";
  }
  std::array<std::uint8_t, 32> key{};
  std::array<std::uint8_t, 116> msg{};
  std::array<std::uint8_t, kMacSize> mac{};
  blake2s_mac(key, msg, mac);
  const long before = t_allocations;
  for (int i = 0; i < 100; ++i) {
    key[0] = static_cast<std::uint8_t>(i);
    blake2s_mac(key, msg, mac);
  }
  EXPECT_EQ(t_allocations - before, 0);
}

TEST(Allocations, HookSeesOpenSslAllocations) {
  // Guards the two tests above against passing vacuously: a fresh thread's first seal must be
  // seen allocating its cipher context.
  if (!g_hooked) {
    GTEST_SKIP() << "OpenSSL allocated before the hook could be installed";
  }
  long seen = 0;
  std::thread([&seen] {
    std::array<std::uint8_t, kAeadKeySize> key{};
    std::array<std::uint8_t, kAeadTagSize> tag{};
    if (aead_seal(key, 0, {}, {}, tag)) {
      seen = t_allocations;
    }
  }).join();
  EXPECT_GT(seen, 0);
}

}  // namespace
}  // namespace warren::crypto
