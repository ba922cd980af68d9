#pragma once
/// Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (whitepaper §5.4.2-5.4.5) as pure functions over a
/// symmetric state. The prologue and payloads are parameters so the same code reproduces the
/// generic Noise test vector (cacophony) and WireGuard's own (prologue = IDENTIFIER, message 1
/// payload = TAI64N timestamp, message 2 payload = empty).
///
/// Message bodies exclude WireGuard's type/index header and MACs:
///   message 1 = e.pub (32) || AEAD(s.pub) (48) || AEAD(payload) (payload + 16)
///   message 2 = e.pub (32) || AEAD(payload) (payload + 16)

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/bytes.h"
#include "base/secure.h"
#include "crypto/x25519.h"

namespace warren::wg::noise {

inline constexpr std::string_view kConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr std::string_view kIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr std::string_view kLabelMac1 = "mac1----";
inline constexpr std::string_view kLabelCookie = "cookie--";

inline ConstBytes as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// Chaining key, hash and the ephemeral keys of one handshake in progress. Wiped on destruction.
struct State {
  Secret<32> chaining_key;
  std::array<std::uint8_t, 32> hash{};
  crypto::PrivateKey local_ephemeral;
  crypto::PublicKey remote_ephemeral;

  ~State() { secure_zero(hash.data(), hash.size()); }
  void clear() {
    chaining_key.clear();
    secure_zero(hash.data(), hash.size());
    local_ephemeral.clear();
    remote_ephemeral = {};
  }
};

/// ck = HASH(CONSTRUCTION); h = HASH(HASH(ck || prologue) || responder_static). The part before
/// mixing the responder key depends only on the prologue; callers may cache it.
void initialize(State& s, ConstBytes prologue, const crypto::PublicKey& responder_static);

inline constexpr std::size_t msg1_size(std::size_t payload) {
  return 32 + 48 + payload + 16;
}
inline constexpr std::size_t msg2_size(std::size_t payload) {
  return 32 + payload + 16;
}

/// Initiator. `ephemeral` becomes s.local_ephemeral. `static_static` = DH(s_i, S_r), usually
/// precomputed per peer. False if a DH result is zero or sizes are wrong.
[[nodiscard]] bool write_message1(State& s, const crypto::PrivateKey& ephemeral,
                                  const crypto::PublicKey& initiator_static,
                                  const crypto::PublicKey& responder_static,
                                  const crypto::SharedSecret& static_static, ConstBytes payload,
                                  Bytes out);

/// Responder, first half: consumes e, es, s; returns the initiator's static key.
[[nodiscard]] bool read_message1_static(State& s, const crypto::PrivateKey& responder_private,
                                        ConstBytes message, crypto::PublicKey& initiator_static);
/// Responder, second half: ss and the payload. `static_static` = DH(s_r, S_i).
[[nodiscard]] bool read_message1_payload(State& s, const crypto::SharedSecret& static_static,
                                         ConstBytes message, Bytes payload_out);

/// Responder writes message 2 (e, ee, se, psk, payload).
[[nodiscard]] bool write_message2(State& s, const crypto::PrivateKey& ephemeral,
                                  const crypto::PublicKey& initiator_static,
                                  const Secret<32>& preshared, ConstBytes payload, Bytes out);

/// Initiator reads message 2. `initiator_private` is s_i.
[[nodiscard]] bool read_message2(State& s, const crypto::PrivateKey& initiator_private,
                                 const Secret<32>& preshared, ConstBytes message,
                                 Bytes payload_out);

/// Transport keys: (initiator_send, responder_send) = KDF2(ck, empty). Wipes the state.
void split(State& s, Secret<32>& initiator_send, Secret<32>& responder_send);

}  // namespace warren::wg::noise
