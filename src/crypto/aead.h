#pragma once
/// Authenticated encryption, the one place that touches the ciphers (OpenSSL 3 libcrypto for
/// ChaCha20-Poly1305, libsodium for XChaCha20-Poly1305, which OpenSSL lacks).
///
/// Thread-safety: every function may be called from any number of threads at once (cipher
/// contexts are per thread). No function allocates per call after a thread's first call.

#include <cstddef>
#include <cstdint>
#include <span>

namespace warren::crypto {

inline constexpr std::size_t kAeadKeySize = 32;
inline constexpr std::size_t kAeadTagSize = 16;
inline constexpr std::size_t kXNonceSize = 24;

using AeadKeyView = std::span<const std::uint8_t, kAeadKeySize>;

/// ChaCha20-Poly1305 (RFC 8439) with WireGuard's nonce: 4 zero bytes then `counter` as a
/// little-endian u64. Writes ciphertext || 16-byte tag to `out`, which must be exactly
/// plaintext.size() + 16 bytes. `out` may start at the same address as `plaintext` (in place).
[[nodiscard]] bool aead_seal(AeadKeyView key, std::uint64_t counter,
                             std::span<const std::uint8_t> plaintext,
                             std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

/// Verifies and decrypts ciphertext || tag into `out` (exactly ciphertext.size() - 16 bytes;
/// may alias the ciphertext start). Returns false, leaving `out` unspecified, when the tag does
/// not verify or the sizes are wrong.
[[nodiscard]] bool aead_open(AeadKeyView key, std::uint64_t counter,
                             std::span<const std::uint8_t> ciphertext,
                             std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), used only for cookie replies.
[[nodiscard]] bool xaead_seal(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                              std::span<const std::uint8_t> plaintext,
                              std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);
[[nodiscard]] bool xaead_open(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                              std::span<const std::uint8_t> ciphertext,
                              std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

}  // namespace warren::crypto
