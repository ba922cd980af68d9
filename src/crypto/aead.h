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
/// plaintext.size() + 16 bytes. `out` may start at the same address as `plaintext` (in place);
/// any other overlap between the two is refused. Returns false (never UB) on wrong sizes, a
/// plaintext over INT_MAX - 16 bytes, or a refused overlap. `ad` may overlap anything.
[[nodiscard]] bool aead_seal(AeadKeyView key, std::uint64_t counter,
                             std::span<const std::uint8_t> plaintext,
                             std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

/// Verifies and decrypts ciphertext || tag into `out` (exactly ciphertext.size() - 16 bytes;
/// may alias the ciphertext start). Returns false when the tag does not verify or the sizes are
/// wrong; after a tag failure `out` is zero-filled, so no unauthenticated plaintext is left
/// behind. The tag comparison is constant time.
[[nodiscard]] bool aead_open(AeadKeyView key, std::uint64_t counter,
                             std::span<const std::uint8_t> ciphertext,
                             std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

/// ChaCha20-Poly1305 with an explicit 96-bit nonce, exactly as RFC 8439 §2.8 defines it. The
/// counter functions above are these with nonce = 4 zero bytes || LE64(counter); these exist for
/// the RFC's known-answer vectors (whose nonces do not start with zeros). Same size, aliasing and
/// failure rules as aead_seal / aead_open.
inline constexpr std::size_t kAeadNonceSize = 12;
[[nodiscard]] bool aead_seal_nonce12(AeadKeyView key,
                                     std::span<const std::uint8_t, kAeadNonceSize> nonce,
                                     std::span<const std::uint8_t> plaintext,
                                     std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);
[[nodiscard]] bool aead_open_nonce12(AeadKeyView key,
                                     std::span<const std::uint8_t, kAeadNonceSize> nonce,
                                     std::span<const std::uint8_t> ciphertext,
                                     std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

/// Erases the key material this thread's ChaCha20-Poly1305 contexts still hold (the last key
/// each was used with, kept so consecutive packets under one key skip the key setup). Session
/// keys are otherwise only erased from a thread when it exits or uses another key, so call this
/// from threads that outlive their keys (whitepaper §6.3 key erasure), e.g. when a worker goes
/// idle or after keypairs are destroyed. Cheap and allocation-free.
void aead_wipe_thread_keys();

/// Says that session keys were destroyed somewhere (a keypair's destructor calls it). Every
/// thread's cached key from before this call is then no longer reused (the next message re-keys
/// its context) and is wiped by aead_wipe_thread_keys_if_retired(). Any thread; one atomic add.
void aead_retire_keys();
/// Wipes this thread's cached keys if aead_retire_keys() was called since they were set. For
/// threads that may sleep holding a key: the engine's workers call it before they block, so a
/// destroyed session's key does not linger in an idle worker. One atomic load when nothing
/// was retired.
void aead_wipe_thread_keys_if_retired();
/// Whether this thread's contexts hold a real key now (tests of key erasure).
bool aead_thread_holds_key();

/// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha), used only for cookie replies. Same size,
/// aliasing and failure rules as aead_seal / aead_open.
[[nodiscard]] bool xaead_seal(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                              std::span<const std::uint8_t> plaintext,
                              std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);
[[nodiscard]] bool xaead_open(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                              std::span<const std::uint8_t> ciphertext,
                              std::span<const std::uint8_t> ad, std::span<std::uint8_t> out);

}  // namespace warren::crypto
