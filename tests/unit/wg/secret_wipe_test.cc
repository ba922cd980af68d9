// Key material is wiped when the objects holding it die: a session's keypair (send and receive
// keys) and a handshake's Noise state (chaining key, hash, ephemeral private key). Each object
// is built in storage the test owns, destroyed explicitly, and the storage searched for the key
// bytes (reading the storage after the object's lifetime is fine: it is still ours).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

#include "wg/noise.h"
#include "wg/peer.h"

namespace warren::wg {
namespace {

template <std::size_t N>
bool contains(const unsigned char* storage, std::size_t size,
              const std::array<std::uint8_t, N>& needle) {
  return std::search(storage, storage + size, needle.begin(), needle.end()) != storage + size;
}

std::array<std::uint8_t, 32> pattern(std::uint8_t seed) {
  std::array<std::uint8_t, 32> a{};
  for (std::size_t i = 0; i < a.size(); ++i)
    a[i] = static_cast<std::uint8_t>(seed + 7 * i + 1);
  return a;
}

TEST(SecretWipe, KeypairDestructorWipesBothKeys) {
  alignas(Keypair) unsigned char storage[sizeof(Keypair)];
  const auto send = pattern(0x10), recv = pattern(0x90);
  auto* kp = new (storage) Keypair();
  kp->send_key = Secret<32>(send);
  kp->recv_key = Secret<32>(recv);
  ASSERT_TRUE(contains(storage, sizeof storage, send));
  ASSERT_TRUE(contains(storage, sizeof storage, recv));
  kp->~Keypair();
  EXPECT_FALSE(contains(storage, sizeof storage, send));
  EXPECT_FALSE(contains(storage, sizeof storage, recv));
}

TEST(SecretWipe, NoiseStateDestructorWipesChainingKeyHashAndEphemeral) {
  alignas(noise::State) unsigned char storage[sizeof(noise::State)];
  const auto ck = pattern(0x21), h = pattern(0x42), e = pattern(0x63);
  auto* s = new (storage) noise::State();
  s->chaining_key = Secret<32>(ck);
  std::copy(h.begin(), h.end(), s->hash.begin());
  s->local_ephemeral = crypto::PrivateKey(e);
  ASSERT_TRUE(contains(storage, sizeof storage, ck));
  ASSERT_TRUE(contains(storage, sizeof storage, h));
  ASSERT_TRUE(contains(storage, sizeof storage, e));
  s->~State();
  EXPECT_FALSE(contains(storage, sizeof storage, ck));
  EXPECT_FALSE(contains(storage, sizeof storage, h));
  EXPECT_FALSE(contains(storage, sizeof storage, e));
}

TEST(SecretWipe, NoiseStateClearWipesWithoutDestruction) {
  noise::State s;
  s.chaining_key = Secret<32>(pattern(1));
  s.hash = pattern(2);
  s.local_ephemeral = crypto::PrivateKey(pattern(3));
  s.clear();
  EXPECT_TRUE(s.chaining_key.is_zero());
  EXPECT_TRUE(std::all_of(s.hash.begin(), s.hash.end(), [](auto b) { return b == 0; }));
  EXPECT_TRUE(s.local_ephemeral.is_zero());
}

}  // namespace
}  // namespace warren::wg
