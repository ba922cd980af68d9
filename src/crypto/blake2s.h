#pragma once
/// BLAKE2s (RFC 7693) in the three forms WireGuard uses, all from OpenSSL 3:
///   HASH  = BLAKE2s-256, unkeyed            (EVP_MD "BLAKE2S-256")
///   MAC   = keyed BLAKE2s, 16-byte output   (EVP_MAC "BLAKE2SMAC", size parameter 16)
///   HMAC  = RFC 2104 HMAC over BLAKE2s-256  (EVP_MAC "HMAC", digest "BLAKE2S-256")
/// and the WireGuard KDF built on HMAC (whitepaper §5.4.1). Thread-safe (contexts are per
/// thread). MAC never allocates once a thread has warmed up; HASH and HMAC cost one (HASH) or a
/// few (HMAC) small heap allocations per call, because OpenSSL 3.0 re-creates a digest's state
/// on every init. They run on the handshake path only, where X25519 dominates by far.
///
/// Violated preconditions (key or output sizes) are programming errors and abort the process;
/// they never depend on packet contents.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

namespace warren::crypto {

inline constexpr std::size_t kHashSize = 32;
inline constexpr std::size_t kMacSize = 16;

using ByteView = std::span<const std::uint8_t>;
using Hash = std::span<std::uint8_t, kHashSize>;

/// HASH(parts[0] || parts[1] || ...). `out` may alias any part (H := HASH(H || x)).
void blake2s_hash(std::initializer_list<ByteView> parts, Hash out);

/// MAC(key, msg): keyed BLAKE2s with a 16-byte digest; key is 1..32 bytes.
void blake2s_mac(ByteView key, ByteView msg, std::span<std::uint8_t, kMacSize> out);

/// Keyed BLAKE2s with an arbitrary output length (1..32) and key (0..32 bytes); for tests
/// (RFC 7693 self-test) and anything needing other sizes.
/// Limitation: with an EMPTY key (plain BLAKE2s) only out.size() == 32 is supported, because
/// OpenSSL 3.0's BLAKE2S-256 digest has no output-length parameter (added in 3.2) and its
/// BLAKE2SMAC refuses empty keys; an empty key with another size aborts.
void blake2s_keyed(ByteView key, ByteView msg, std::span<std::uint8_t> out);

/// HMAC-BLAKE2s-256(key, parts[0] || parts[1] || ...). Any key length (RFC 2104: keys over 64
/// bytes are hashed first).
void hmac_blake2s(ByteView key, std::initializer_list<ByteView> parts, Hash out);

/// WireGuard KDF_n(key, input): t0 = HMAC(key, input); t1 = HMAC(t0, 0x1);
/// t_i = HMAC(t0, t_{i-1} || i). Writes t1..tn into the non-null outputs. Intermediate values
/// are wiped, and so is the key state the per-thread HMAC context would otherwise keep (HMAC
/// calls leave the context keyed with a dummy key). Outputs may alias `key` or `input`
/// (e.g. kdf2(ck, x, ck, k)): every output is computed before any is written. An output span
/// whose data() is null is skipped.
void kdf1(ByteView key, ByteView input, Hash t1);
void kdf2(ByteView key, ByteView input, Hash t1, Hash t2);
void kdf3(ByteView key, ByteView input, Hash t1, Hash t2, Hash t3);

}  // namespace warren::crypto
