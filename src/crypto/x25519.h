#pragma once
/// Curve25519 keys as WireGuard uses them: 32-byte public keys, clamped private keys, and
/// Diffie-Hellman that refuses an all-zero shared secret (low-order points). X25519 comes from
/// libsodium (about twice OpenSSL 3.0's EVP_PKEY throughput here; figures in x25519.cc). All
/// functions are thread-safe; generate_private_key is as thread-safe as the RandomSource.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/random.h"
#include "base/secure.h"

namespace warren::crypto {

inline constexpr std::size_t kKeySize = 32;

struct PublicKey {
  std::array<std::uint8_t, kKeySize> bytes{};

  std::span<const std::uint8_t, kKeySize> span() const { return bytes; }
  bool is_zero() const;
  std::string to_base64() const;
  std::string to_hex() const;
  static std::optional<PublicKey> from_base64(std::string_view text);
  static std::optional<PublicKey> from_hex(std::string_view text);

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
  friend auto operator<=>(const PublicKey&, const PublicKey&) = default;
};

/// Private keys and preshared keys are secrets: wiped on destruction.
using PrivateKey = Secret<kKeySize>;
using PresharedKey = Secret<kKeySize>;
using SharedSecret = Secret<kKeySize>;

/// sk[0] &= 248; sk[31] = (sk[31] & 127) | 64.
void clamp(PrivateKey& key);

/// A fresh, clamped private key.
PrivateKey generate_private_key(RandomSource& rng);

/// X25519(key, 9). The key need not be clamped (X25519 clamps internally).
PublicKey derive_public_key(const PrivateKey& key);

/// X25519(private, public). False (and `out` zeroed) when the result is all zero.
[[nodiscard]] bool x25519(const PrivateKey& priv, const PublicKey& pub, SharedSecret& out);

/// Secret keys in the encodings wg uses; parse functions return false on malformed text.
std::string secret_to_base64(const Secret<kKeySize>& key);
std::string secret_to_hex(const Secret<kKeySize>& key);
[[nodiscard]] bool secret_from_base64(std::string_view text, Secret<kKeySize>& out);
[[nodiscard]] bool secret_from_hex(std::string_view text, Secret<kKeySize>& out);

}  // namespace warren::crypto

template <>
struct std::hash<warren::crypto::PublicKey> {
  std::size_t operator()(const warren::crypto::PublicKey& k) const noexcept {
    std::size_t h;
    static_assert(sizeof h <= warren::crypto::kKeySize);
    __builtin_memcpy(&h, k.bytes.data(), sizeof h);
    return h;
  }
};
