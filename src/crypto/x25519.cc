// X25519 through libsodium rather than OpenSSL's EVP_PKEY interface.
//
// Measured on the project VM (2-vCPU Zen 4, idle): libsodium 1.0.18 crypto_scalarmult does
// ~30 k ops/s (its AVX "sandy2x" ladder, selected by sodium_init) and crypto_scalarmult_base
// ~33 k ops/s, while one OpenSSL 3.0 EVP_PKEY_derive round (new raw private key, new raw public
// key, derive) does ~16 k ops/s with ~29 heap allocations: importing a raw private key makes
// OpenSSL compute its public key as well, so every DH pays for a second scalar multiplication.
// X25519 bounds the handshake rate (4 per handshake per side), hence libsodium.
//
// Both libraries clamp the scalar themselves (RFC 7748 §5), so unclamped private keys behave as
// their clamped form, and both ignore the top bit of u.

#include "crypto/x25519.h"

#include <sodium.h>

#include <cstdio>
#include <cstdlib>

#include "base/encoding.h"

namespace warren::crypto {
namespace {

static_assert(crypto_scalarmult_BYTES == kKeySize && crypto_scalarmult_SCALARBYTES == kKeySize);

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "warren: crypto failure: %s\n", what);
  std::abort();
}

void ensure_sodium() {
  // Also selects the fastest scalar-multiplication code for this CPU.
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    fatal("sodium_init");
  }
}

}  // namespace

bool PublicKey::is_zero() const {
  return constant_time_is_zero(bytes);
}

std::string PublicKey::to_base64() const {
  return warren::to_base64(bytes);
}

std::string PublicKey::to_hex() const {
  return warren::to_hex(bytes);
}

std::optional<PublicKey> PublicKey::from_base64(std::string_view text) {
  PublicKey k;
  if (!warren::from_base64(text, k.bytes)) {
    return std::nullopt;
  }
  return k;
}

std::optional<PublicKey> PublicKey::from_hex(std::string_view text) {
  PublicKey k;
  if (!warren::from_hex(text, k.bytes)) {
    return std::nullopt;
  }
  return k;
}

void clamp(PrivateKey& key) {
  std::uint8_t* k = key.data();
  k[0] &= 248;
  k[31] = static_cast<std::uint8_t>((k[31] & 127) | 64);
}

PrivateKey generate_private_key(RandomSource& rng) {
  PrivateKey key;
  rng.fill(key.span());
  clamp(key);
  return key;
}

PublicKey derive_public_key(const PrivateKey& key) {
  ensure_sodium();
  PublicKey pub;
  // Fixed-base multiplication; a clamped scalar is never 0 mod the group order, so this cannot
  // produce the all-zero point and libsodium has no failure path here.
  if (crypto_scalarmult_base(pub.bytes.data(), key.data()) != 0) {
    fatal("crypto_scalarmult_base");
  }
  return pub;
}

bool x25519(const PrivateKey& priv, const PublicKey& pub, SharedSecret& out) {
  ensure_sodium();
  // Computed into a temporary so `out` may alias `priv`.
  SharedSecret result;
  const int rc = crypto_scalarmult(result.data(), priv.data(), pub.bytes.data());
  // libsodium already refuses small-order points and all-zero results (rc = -1), but the
  // WireGuard rule is ours to enforce, so check the output again, in constant time.
  const bool zero = result.is_zero();
  if ((rc != 0) | zero) {
    out.clear();
    return false;
  }
  out = result;
  return true;
}

std::string secret_to_base64(const Secret<kKeySize>& key) {
  return warren::to_base64(key.span());
}

std::string secret_to_hex(const Secret<kKeySize>& key) {
  return warren::to_hex(key.span());
}

bool secret_from_base64(std::string_view text, Secret<kKeySize>& out) {
  // Decoded into a wiped temporary so `out` is untouched unless the whole text is valid.
  Secret<kKeySize> tmp;
  if (!warren::from_base64(text, tmp.span())) {
    return false;
  }
  out = tmp;
  return true;
}

bool secret_from_hex(std::string_view text, Secret<kKeySize>& out) {
  Secret<kKeySize> tmp;
  if (!warren::from_hex(text, tmp.span())) {
    return false;
  }
  out = tmp;
  return true;
}

}  // namespace warren::crypto
