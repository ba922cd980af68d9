// BLAKE2s, keyed BLAKE2s and HMAC-BLAKE2s from OpenSSL 3 providers.
//
// Algorithms are fetched once per process (fetching walks the provider store and takes locks);
// contexts are per thread and re-initialised for every call. In OpenSSL 3.0:
//   * EVP_MAC_init on a BLAKE2SMAC context re-keys the existing state in place: no allocation;
//   * EVP_DigestInit_ex2 always frees and re-creates the provider's digest state (one small
//     allocation), and HMAC's init re-initialises three digest contexts the same way. Nothing in
//     the 3.0 API avoids that (EVP_MD_CTX_copy_ex duplicates, i.e. allocates, too), so HASH and
//     HMAC accept it: they run per handshake, not per packet.
// Any OpenSSL failure here can only be an allocation failure or a broken installation, and the
// functions return void, so it is fatal rather than a silently wrong hash.

#include "crypto/blake2s.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/secure.h"

namespace warren::crypto {
namespace {

constexpr std::size_t kBlake2sMaxKey = 32;

[[noreturn]] void fatal(const char* what) {
  std::fprintf(stderr, "warren: crypto failure: %s\n", what);
  std::abort();
}

void check(int openssl_result, const char* what) {
  if (openssl_result != 1) {
    fatal(what);
  }
}

// A non-null pointer for zero-length inputs: OpenSSL treats a null key pointer as "no key
// given" rather than "empty key".
const std::uint8_t kEmpty[1] = {0};
const std::uint8_t* ptr(ByteView v) {
  return v.empty() ? kEmpty : v.data();
}

// Algorithms live for the whole process: never freed, because per-thread contexts may be
// destroyed (at thread exit) after static destructors have run.
const EVP_MD* blake2s_md() {
  static EVP_MD* const md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "BLAKE2S-256", nullptr);
    if (m == nullptr) {
      fatal("EVP_MD_fetch(BLAKE2S-256)");
    }
    return m;
  }();
  return md;
}

EVP_MAC* fetch_mac(const char* name) {
  EVP_MAC* m = EVP_MAC_fetch(nullptr, name, nullptr);
  if (m == nullptr) {
    fatal("EVP_MAC_fetch");
  }
  return m;
}

EVP_MAC* blake2s_mac_alg() {
  static EVP_MAC* const mac = fetch_mac("BLAKE2SMAC");
  return mac;
}

EVP_MAC* hmac_alg() {
  static EVP_MAC* const mac = fetch_mac("HMAC");
  return mac;
}

class DigestContext {
 public:
  DigestContext() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) {
      fatal("EVP_MD_CTX_new");
    }
  }
  ~DigestContext() { EVP_MD_CTX_free(ctx_); }
  DigestContext(const DigestContext&) = delete;
  DigestContext& operator=(const DigestContext&) = delete;
  EVP_MD_CTX* get() { return ctx_; }

 private:
  EVP_MD_CTX* ctx_;
};

class MacContext {
 public:
  explicit MacContext(EVP_MAC* alg) : ctx_(EVP_MAC_CTX_new(alg)) {
    if (ctx_ == nullptr) {
      fatal("EVP_MAC_CTX_new");
    }
  }
  ~MacContext() { EVP_MAC_CTX_free(ctx_); }  // cleanses keys and state
  MacContext(const MacContext&) = delete;
  MacContext& operator=(const MacContext&) = delete;
  EVP_MAC_CTX* get() { return ctx_; }

 private:
  EVP_MAC_CTX* ctx_;
};

EVP_MD_CTX* digest_context() {
  thread_local DigestContext ctx;
  return ctx.get();
}

EVP_MAC_CTX* keyed_context() {
  thread_local MacContext ctx(blake2s_mac_alg());
  return ctx.get();
}

// HMAC's digest is fixed for the context's life; only keys change per call.
class HmacContext : public MacContext {
 public:
  HmacContext() : MacContext(hmac_alg()) {
    char digest[] = "BLAKE2S-256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    check(EVP_MAC_CTX_set_params(get(), params), "HMAC digest parameter");
  }
};

EVP_MAC_CTX* hmac_context() {
  thread_local HmacContext ctx;
  return ctx.get();
}

void mac_update(EVP_MAC_CTX* ctx, ByteView data) {
  if (!data.empty()) {
    check(EVP_MAC_update(ctx, data.data(), data.size()), "EVP_MAC_update");
  }
}

void keyed_impl(ByteView key, ByteView msg, std::span<std::uint8_t> out) {
  if (key.empty() || key.size() > kBlake2sMaxKey || out.empty() || out.size() > kHashSize) {
    fatal("blake2s keyed: key must be 1..32 bytes, output 1..32 bytes");
  }
  EVP_MAC_CTX* ctx = keyed_context();
  std::size_t size = out.size();
  // The output length is part of BLAKE2's parameter block, so it must be set before the key
  // is absorbed: EVP_MAC_init applies params first.
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_construct_end()};
  check(EVP_MAC_init(ctx, key.data(), key.size(), params), "EVP_MAC_init(BLAKE2SMAC)");
  mac_update(ctx, msg);
  std::size_t written = 0;
  check(EVP_MAC_final(ctx, out.data(), &written, out.size()), "EVP_MAC_final(BLAKE2SMAC)");
  if (written != out.size()) {
    fatal("BLAKE2SMAC output size");
  }
}

// HMAC over the concatenation of `parts` with a key already set (or re-armed) on `ctx`.
void hmac_finish(EVP_MAC_CTX* ctx, std::initializer_list<ByteView> parts,
                 std::span<std::uint8_t, kHashSize> out) {
  for (ByteView p : parts) {
    mac_update(ctx, p);
  }
  std::size_t written = 0;
  check(EVP_MAC_final(ctx, out.data(), &written, out.size()), "EVP_MAC_final(HMAC)");
  if (written != kHashSize) {
    fatal("HMAC output size");
  }
}

void hmac_rekey(EVP_MAC_CTX* ctx, ByteView key) {
  check(EVP_MAC_init(ctx, ptr(key), key.size(), nullptr), "EVP_MAC_init(HMAC)");
}

// After use, the HMAC context still holds a copy of the key and the inner/outer states derived
// from it, which are as good as the key: left alone, a KDF's t0 (and so the session keys it
// yields) would stay recoverable from this thread's context until its next HMAC. Re-keying with
// a fixed dummy key overwrites both.
void hmac_scrub(EVP_MAC_CTX* ctx) {
  static const std::uint8_t kDummy[kHashSize] = {};
  hmac_rekey(ctx, kDummy);
}

// KDF core: fills t[0..n) with t1..tn. `t` is local storage, so outputs aliasing the key or
// input cannot disturb the computation.
void kdf(ByteView key, ByteView input, std::array<std::uint8_t, kHashSize>* t, int n) {
  std::array<std::uint8_t, kHashSize> t0;
  EVP_MAC_CTX* ctx = hmac_context();
  hmac_rekey(ctx, key);
  hmac_finish(ctx, {input}, t0);
  // Every t_i is keyed with t0: key it once; later rounds re-arm the same key (HMAC_Init_ex with
  // a null key restarts from the saved ipad state instead of rehashing the key).
  hmac_rekey(ctx, t0);
  for (int i = 0; i < n; ++i) {
    const std::uint8_t counter = static_cast<std::uint8_t>(i + 1);
    if (i > 0) {
      check(EVP_MAC_init(ctx, nullptr, 0, nullptr), "EVP_MAC_init(HMAC, rearm)");
    }
    if (i == 0) {
      hmac_finish(ctx, {ByteView(&counter, 1)}, t[0]);
    } else {
      hmac_finish(ctx, {ByteView(t[i - 1]), ByteView(&counter, 1)}, t[i]);
    }
  }
  hmac_scrub(ctx);
  secure_zero(t0.data(), t0.size());
}

void emit(const std::array<std::uint8_t, kHashSize>& t, Hash out) {
  if (out.data() != nullptr) {
    std::memcpy(out.data(), t.data(), kHashSize);
  }
}

}  // namespace

void blake2s_hash(std::initializer_list<ByteView> parts, Hash out) {
  EVP_MD_CTX* ctx = digest_context();
  check(EVP_DigestInit_ex2(ctx, blake2s_md(), nullptr), "EVP_DigestInit_ex2(BLAKE2S-256)");
  for (ByteView p : parts) {
    if (!p.empty()) {
      check(EVP_DigestUpdate(ctx, p.data(), p.size()), "EVP_DigestUpdate");
    }
  }
  unsigned int written = 0;
  check(EVP_DigestFinal_ex(ctx, out.data(), &written), "EVP_DigestFinal_ex");
  if (written != kHashSize) {
    fatal("BLAKE2s-256 output size");
  }
}

void blake2s_mac(ByteView key, ByteView msg, std::span<std::uint8_t, kMacSize> out) {
  keyed_impl(key, msg, out);
}

void blake2s_keyed(ByteView key, ByteView msg, std::span<std::uint8_t> out) {
  if (key.empty()) {
    // Plain BLAKE2s: only the 32-byte digest is reachable through OpenSSL 3.0 (see header).
    if (out.size() != kHashSize) {
      fatal("blake2s_keyed: empty key needs a 32-byte output");
    }
    blake2s_hash({msg}, Hash(out.data(), kHashSize));
    return;
  }
  keyed_impl(key, msg, out);
}

void hmac_blake2s(ByteView key, std::initializer_list<ByteView> parts, Hash out) {
  EVP_MAC_CTX* ctx = hmac_context();
  hmac_rekey(ctx, key);
  hmac_finish(ctx, parts, out);
  hmac_scrub(ctx);
}

void kdf1(ByteView key, ByteView input, Hash t1) {
  std::array<std::uint8_t, kHashSize> t[1];
  kdf(key, input, t, 1);
  emit(t[0], t1);
  secure_zero(t, sizeof t);
}

void kdf2(ByteView key, ByteView input, Hash t1, Hash t2) {
  std::array<std::uint8_t, kHashSize> t[2];
  kdf(key, input, t, 2);
  emit(t[0], t1);
  emit(t[1], t2);
  secure_zero(t, sizeof t);
}

void kdf3(ByteView key, ByteView input, Hash t1, Hash t2, Hash t3) {
  std::array<std::uint8_t, kHashSize> t[3];
  kdf(key, input, t, 3);
  emit(t[0], t1);
  emit(t[1], t2);
  emit(t[2], t3);
  secure_zero(t, sizeof t);
}

}  // namespace warren::crypto
