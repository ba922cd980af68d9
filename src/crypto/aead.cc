// ChaCha20-Poly1305 through OpenSSL's EVP interface and XChaCha20-Poly1305 through libsodium.
//
// Per-packet cost is what matters here (performance.md §3.3: at 1420 bytes OpenSSL spends a
// large share of each call outside the cipher loops), so:
//   * every thread owns two EVP_CIPHER_CTX (one sealing, one opening), created on the thread's
//     first call and re-initialised in place afterwards: no allocation per packet;
//   * each context remembers the key it was last keyed with; when the next call uses the same key
//     (the common case: one session key for thousands of packets) only the nonce is reset, which
//     skips the key schedule and measured ~5 % faster at 1420 bytes. The comparison is constant
//     time, so its timing says nothing about either key;
//   * the tag is read and written through OSSL_PARAMs directly rather than EVP_CIPHER_CTX_ctrl,
//     which in OpenSSL 3.0 converts to the same params via a string table (~5 % at 1420 bytes).

#include "crypto/aead.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/bytes.h"
#include "base/secure.h"

namespace warren::crypto {
namespace {

// EVP takes int lengths; anything longer is refused rather than truncated.
constexpr std::size_t kMaxAeadInput = static_cast<std::size_t>(INT_MAX) - kAeadTagSize;

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "warren: crypto failure: %s\n", what);
  std::abort();
}

// True when [a, a+an) and [b, b+bn) overlap without starting at the same address: the one
// aliasing EVP and libsodium cannot handle (exact in-place operation is fine).
bool partially_overlaps(const std::uint8_t* a, std::size_t an, const std::uint8_t* b,
                        std::size_t bn) {
  if (an == 0 || bn == 0) {
    return false;
  }
  auto pa = reinterpret_cast<std::uintptr_t>(a);
  auto pb = reinterpret_cast<std::uintptr_t>(b);
  if (pa == pb) {
    return false;
  }
  return pa < pb + bn && pb < pa + an;
}

// Constant-time 32-byte comparison on four 64-bit words. CRYPTO_memcmp's byte loop cost ~20 ns
// per packet (3 % of a 64-byte seal); this is a handful of instructions with no data-dependent
// branch or memory access.
bool keys_equal(const std::uint8_t* a, const std::uint8_t* b) {
  std::uint64_t diff = 0;
  for (std::size_t i = 0; i < kAeadKeySize; i += 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    diff |= x ^ y;
  }
  return diff == 0;
}

const EVP_CIPHER* chacha20_poly1305() {
  // Fetched once and kept for the life of the process (never freed: thread-exit destructors of
  // the per-thread contexts may still run after static destructors).
  static EVP_CIPHER* const cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
    if (c == nullptr) {
      fatal("EVP_CIPHER_fetch(ChaCha20-Poly1305)");
    }
    return c;
  }();
  return cipher;
}

// Bumped by aead_retire_keys(): a context keyed before the current value holds a key that may
// belong to a destroyed keypair.
std::atomic<std::uint64_t> g_retired_epoch{0};

class CipherContext {
 public:
  explicit CipherContext(int encrypt) : encrypt_(encrypt), ctx_(EVP_CIPHER_CTX_new()) {
    if (ctx_ == nullptr ||
        EVP_CipherInit_ex(ctx_, chacha20_poly1305(), nullptr, nullptr, nullptr, encrypt_) != 1) {
      fatal("EVP_CIPHER_CTX setup");
    }
  }
  ~CipherContext() {
    EVP_CIPHER_CTX_free(ctx_);  // cleanses the key schedule
    secure_zero(key_.data(), key_.size());
  }
  CipherContext(const CipherContext&) = delete;
  CipherContext& operator=(const CipherContext&) = delete;

  // Starts a new message under (key, nonce).
  bool start(AeadKeyView key, const std::uint8_t* nonce) {
    const std::uint64_t epoch = g_retired_epoch.load(std::memory_order_relaxed);
    const bool same_key = keyed_ && epoch_ == epoch && keys_equal(key_.data(), key.data());
    if (same_key) {
      // A nonce-only init resets the Poly1305 state and the text/AAD lengths; the one-time
      // Poly1305 key is derived again from (cached key, new nonce) on the first update.
      return EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, encrypt_) == 1;
    }
    keyed_ = false;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, key.data(), nonce, encrypt_) != 1) {
      return false;
    }
    std::memcpy(key_.data(), key.data(), kAeadKeySize);
    keyed_ = true;
    epoch_ = epoch;
    return true;
  }

  bool keyed() const { return keyed_; }
  bool retired() const {
    return keyed_ && epoch_ != g_retired_epoch.load(std::memory_order_relaxed);
  }

  // Re-keys the context with an all-zero key so neither it nor the cache holds a real key.
  void wipe() {
    if (!keyed_) {
      return;
    }
    keyed_ = false;
    secure_zero(key_.data(), key_.size());
    const std::uint8_t nonce[kAeadNonceSize] = {};
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, key_.data(), nonce, encrypt_) != 1) {
      fatal("EVP_CipherInit_ex while wiping keys");
    }
  }

  EVP_CIPHER_CTX* get() { return ctx_; }

 private:
  int encrypt_;
  EVP_CIPHER_CTX* ctx_;
  std::array<std::uint8_t, kAeadKeySize> key_{};
  bool keyed_ = false;
  std::uint64_t epoch_ = 0;  // g_retired_epoch when key_ was set
};

CipherContext& seal_context() {
  thread_local CipherContext ctx(1);
  return ctx;
}

CipherContext& open_context() {
  thread_local CipherContext ctx(0);
  return ctx;
}

bool update_ad(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> ad) {
  if (ad.empty()) {
    return true;
  }
  int len = 0;
  return EVP_CipherUpdate(ctx, nullptr, &len, ad.data(), static_cast<int>(ad.size())) == 1;
}

bool seal12(AeadKeyView key, const std::uint8_t* nonce, std::span<const std::uint8_t> plaintext,
            std::span<const std::uint8_t> ad, std::span<std::uint8_t> out) {
  const std::size_t n = plaintext.size();
  if (n > kMaxAeadInput || ad.size() > static_cast<std::size_t>(INT_MAX) ||
      out.size() != n + kAeadTagSize ||
      partially_overlaps(out.data(), out.size(), plaintext.data(), n)) {
    return false;
  }
  CipherContext& c = seal_context();
  EVP_CIPHER_CTX* ctx = c.get();
  if (!c.start(key, nonce) || !update_ad(ctx, ad)) {
    return false;
  }
  int len = 0;
  if (n != 0 &&
      EVP_CipherUpdate(ctx, out.data(), &len, plaintext.data(), static_cast<int>(n)) != 1) {
    return false;
  }
  std::uint8_t* tag = out.data() + n;
  if (EVP_CipherFinal_ex(ctx, tag, &len) != 1) {
    return false;  // writes no bytes, computes tag
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kAeadTagSize),
      OSSL_PARAM_construct_end()};
  return EVP_CIPHER_CTX_get_params(ctx, params) == 1;
}

bool open12(AeadKeyView key, const std::uint8_t* nonce, std::span<const std::uint8_t> ciphertext,
            std::span<const std::uint8_t> ad, std::span<std::uint8_t> out) {
  if (ciphertext.size() < kAeadTagSize) {
    return false;
  }
  const std::size_t n = ciphertext.size() - kAeadTagSize;
  if (n > kMaxAeadInput || ad.size() > static_cast<std::size_t>(INT_MAX) || out.size() != n ||
      partially_overlaps(out.data(), n, ciphertext.data(), ciphertext.size())) {
    return false;
  }
  CipherContext& c = open_context();
  EVP_CIPHER_CTX* ctx = c.get();
  if (!c.start(key, nonce)) {
    return false;
  }
  // The expected tag is copied into the context before decrypting, so decrypting in place can
  // never clobber it (it lies past `out` anyway).
  std::array<std::uint8_t, kAeadTagSize> tag;
  std::memcpy(tag.data(), ciphertext.data() + n, kAeadTagSize);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag.data(), tag.size()),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_set_params(ctx, params) != 1 || !update_ad(ctx, ad)) {
    return false;
  }
  int len = 0;
  if (n != 0 &&
      EVP_CipherUpdate(ctx, out.data(), &len, ciphertext.data(), static_cast<int>(n)) != 1) {
    return false;
  }
  std::uint8_t scratch[kAeadTagSize];  // Final writes nothing; it only needs a valid pointer
  if (EVP_CipherFinal_ex(ctx, scratch, &len) != 1) {
    // Forged or corrupted: do not leave unauthenticated plaintext where a careless caller
    // might use it. Anyone can send forgeries, so make sure nothing accumulates in this
    // thread's OpenSSL error queue either.
    if (n != 0) {
      std::memset(out.data(), 0, n);
    }
    ERR_clear_error();
    return false;
  }
  return true;
}

void wireguard_nonce(std::uint64_t counter, std::uint8_t (&nonce)[kAeadNonceSize]) {
  std::memset(nonce, 0, 4);
  store_le64(nonce + 4, counter);
}

void ensure_sodium() {
  // sodium_init is itself thread-safe and idempotent; the magic static just avoids calling it
  // on every cookie reply.
  static const bool ok = sodium_init() >= 0;
  if (!ok) {
    fatal("sodium_init");
  }
}

}  // namespace

bool aead_seal(AeadKeyView key, std::uint64_t counter, std::span<const std::uint8_t> plaintext,
               std::span<const std::uint8_t> ad, std::span<std::uint8_t> out) {
  std::uint8_t nonce[kAeadNonceSize];
  wireguard_nonce(counter, nonce);
  return seal12(key, nonce, plaintext, ad, out);
}

bool aead_open(AeadKeyView key, std::uint64_t counter, std::span<const std::uint8_t> ciphertext,
               std::span<const std::uint8_t> ad, std::span<std::uint8_t> out) {
  std::uint8_t nonce[kAeadNonceSize];
  wireguard_nonce(counter, nonce);
  return open12(key, nonce, ciphertext, ad, out);
}

void aead_wipe_thread_keys() {
  seal_context().wipe();
  open_context().wipe();
}

void aead_retire_keys() {
  g_retired_epoch.fetch_add(1, std::memory_order_relaxed);
}

void aead_wipe_thread_keys_if_retired() {
  if (seal_context().retired())
    seal_context().wipe();
  if (open_context().retired())
    open_context().wipe();
}

bool aead_thread_holds_key() {
  return seal_context().keyed() || open_context().keyed();
}

bool aead_seal_nonce12(AeadKeyView key, std::span<const std::uint8_t, kAeadNonceSize> nonce,
                       std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> ad,
                       std::span<std::uint8_t> out) {
  return seal12(key, nonce.data(), plaintext, ad, out);
}

bool aead_open_nonce12(AeadKeyView key, std::span<const std::uint8_t, kAeadNonceSize> nonce,
                       std::span<const std::uint8_t> ciphertext, std::span<const std::uint8_t> ad,
                       std::span<std::uint8_t> out) {
  return open12(key, nonce.data(), ciphertext, ad, out);
}

bool xaead_seal(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                std::span<const std::uint8_t> plaintext, std::span<const std::uint8_t> ad,
                std::span<std::uint8_t> out) {
  ensure_sodium();
  const std::size_t n = plaintext.size();
  if (n > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX || n > kMaxAeadInput ||
      out.size() != n + kAeadTagSize ||
      partially_overlaps(out.data(), out.size(), plaintext.data(), n)) {
    return false;
  }
  unsigned long long out_len = 0;
  // libsodium accepts null pointers only together with zero lengths; spans of size zero may
  // carry any pointer, so normalise.
  const unsigned char* m = n != 0 ? plaintext.data() : nullptr;
  const unsigned char* a = ad.empty() ? nullptr : ad.data();
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &out_len, m, n, a, ad.size(), nullptr,
                                                 nonce.data(), key.data()) != 0) {
    return false;
  }
  return out_len == out.size();
}

bool xaead_open(AeadKeyView key, std::span<const std::uint8_t, kXNonceSize> nonce,
                std::span<const std::uint8_t> ciphertext, std::span<const std::uint8_t> ad,
                std::span<std::uint8_t> out) {
  ensure_sodium();
  if (ciphertext.size() < kAeadTagSize) {
    return false;
  }
  const std::size_t n = ciphertext.size() - kAeadTagSize;
  if (n > kMaxAeadInput || out.size() != n ||
      partially_overlaps(out.data(), n, ciphertext.data(), ciphertext.size())) {
    return false;
  }
  // libsodium verifies the tag before it writes any plaintext, so `out` is untouched on failure;
  // zero it anyway to honour the same contract as aead_open.
  unsigned char scratch[1];
  unsigned char* m = n != 0 ? out.data() : scratch;
  const unsigned char* a = ad.empty() ? nullptr : ad.data();
  unsigned long long out_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(m, &out_len, nullptr, ciphertext.data(),
                                                 ciphertext.size(), a, ad.size(), nonce.data(),
                                                 key.data()) != 0) {
    if (n != 0) {
      std::memset(out.data(), 0, n);
    }
    return false;
  }
  return out_len == n;
}

}  // namespace warren::crypto
