#include "wg/noise.h"

#include "crypto/aead.h"
#include "crypto/blake2s.h"

namespace warren::wg::noise {
namespace {

using crypto::kdf1;
using crypto::kdf2;
using crypto::kdf3;

void mix_hash(State& s, ConstBytes data) {
  crypto::blake2s_hash({s.hash, data}, s.hash);
}

// Each key in the handshake encrypts exactly once, so the nonce is always 0.
bool encrypt_and_hash(State& s, const Secret<32>& key, ConstBytes plaintext, Bytes out) {
  if (out.size() != plaintext.size() + crypto::kAeadTagSize)
    return false;
  if (!crypto::aead_seal(key.span(), 0, plaintext, s.hash, out))
    return false;
  mix_hash(s, out);
  return true;
}

bool decrypt_and_hash(State& s, const Secret<32>& key, ConstBytes ciphertext, Bytes out) {
  if (ciphertext.size() != out.size() + crypto::kAeadTagSize)
    return false;
  if (!crypto::aead_open(key.span(), 0, ciphertext, s.hash, out))
    return false;
  mix_hash(s, ciphertext);
  return true;
}

// (ck, k) = KDF2(ck, DH(priv, pub)); false on an all-zero DH result.
bool mix_dh(State& s, const crypto::PrivateKey& priv, const crypto::PublicKey& pub,
            Secret<32>* key) {
  crypto::SharedSecret dh;
  if (!crypto::x25519(priv, pub, dh))
    return false;
  if (key) {
    kdf2(s.chaining_key.span(), dh.span(), s.chaining_key.span(), key->span());
  } else {
    kdf1(s.chaining_key.span(), dh.span(), s.chaining_key.span());
  }
  return true;
}

void mix_ephemeral(State& s, const crypto::PublicKey& e) {
  kdf1(s.chaining_key.span(), e.span(), s.chaining_key.span());
  mix_hash(s, e.span());
}

}  // namespace

void initialize(State& s, ConstBytes prologue, const crypto::PublicKey& responder_static) {
  crypto::blake2s_hash({as_bytes(kConstruction)}, s.chaining_key.span());
  crypto::blake2s_hash({s.chaining_key.span(), prologue}, s.hash);
  mix_hash(s, responder_static.span());
}

bool write_message1(State& s, const crypto::PrivateKey& ephemeral,
                    const crypto::PublicKey& initiator_static,
                    const crypto::PublicKey& responder_static,
                    const crypto::SharedSecret& static_static, ConstBytes payload, Bytes out) {
  if (out.size() != msg1_size(payload.size()))
    return false;
  s.local_ephemeral = ephemeral;
  const crypto::PublicKey e_pub = crypto::derive_public_key(ephemeral);
  std::memcpy(out.data(), e_pub.bytes.data(), 32);
  mix_ephemeral(s, e_pub);
  Secret<32> key;
  if (!mix_dh(s, ephemeral, responder_static, &key))
    return false;
  if (!encrypt_and_hash(s, key, initiator_static.span(), out.subspan(32, 48)))
    return false;
  if (static_static.is_zero())
    return false;
  kdf2(s.chaining_key.span(), static_static.span(), s.chaining_key.span(), key.span());
  return encrypt_and_hash(s, key, payload, out.subspan(80));
}

bool read_message1_static(State& s, const crypto::PrivateKey& responder_private, ConstBytes message,
                          crypto::PublicKey& initiator_static) {
  if (message.size() < msg1_size(0))
    return false;
  std::memcpy(s.remote_ephemeral.bytes.data(), message.data(), 32);
  mix_ephemeral(s, s.remote_ephemeral);
  Secret<32> key;
  if (!mix_dh(s, responder_private, s.remote_ephemeral, &key))
    return false;
  return decrypt_and_hash(s, key, message.subspan(32, 48), initiator_static.bytes);
}

bool read_message1_payload(State& s, const crypto::SharedSecret& static_static, ConstBytes message,
                           Bytes payload_out) {
  if (message.size() != msg1_size(payload_out.size()))
    return false;
  if (static_static.is_zero())
    return false;
  Secret<32> key;
  kdf2(s.chaining_key.span(), static_static.span(), s.chaining_key.span(), key.span());
  return decrypt_and_hash(s, key, message.subspan(80), payload_out);
}

namespace {
// psk token: (ck, tau, k) = KDF3(ck, psk); h = HASH(h || tau).
void mix_preshared(State& s, const Secret<32>& preshared, Secret<32>& key) {
  Secret<32> tau;
  kdf3(s.chaining_key.span(), preshared.span(), s.chaining_key.span(), tau.span(), key.span());
  mix_hash(s, tau.span());
}
}  // namespace

bool write_message2(State& s, const crypto::PrivateKey& ephemeral,
                    const crypto::PublicKey& initiator_static, const Secret<32>& preshared,
                    ConstBytes payload, Bytes out) {
  if (out.size() != msg2_size(payload.size()))
    return false;
  s.local_ephemeral = ephemeral;
  const crypto::PublicKey e_pub = crypto::derive_public_key(ephemeral);
  std::memcpy(out.data(), e_pub.bytes.data(), 32);
  mix_ephemeral(s, e_pub);
  if (!mix_dh(s, ephemeral, s.remote_ephemeral, nullptr))
    return false;
  if (!mix_dh(s, ephemeral, initiator_static, nullptr))
    return false;
  Secret<32> key;
  mix_preshared(s, preshared, key);
  return encrypt_and_hash(s, key, payload, out.subspan(32));
}

bool read_message2(State& s, const crypto::PrivateKey& initiator_private,
                   const Secret<32>& preshared, ConstBytes message, Bytes payload_out) {
  if (message.size() != msg2_size(payload_out.size()))
    return false;
  std::memcpy(s.remote_ephemeral.bytes.data(), message.data(), 32);
  mix_ephemeral(s, s.remote_ephemeral);
  if (!mix_dh(s, s.local_ephemeral, s.remote_ephemeral, nullptr))
    return false;
  if (!mix_dh(s, initiator_private, s.remote_ephemeral, nullptr))
    return false;
  Secret<32> key;
  mix_preshared(s, preshared, key);
  return decrypt_and_hash(s, key, message.subspan(32), payload_out);
}

void split(State& s, Secret<32>& initiator_send, Secret<32>& responder_send) {
  kdf2(s.chaining_key.span(), {}, initiator_send.span(), responder_send.span());
  s.clear();
}

}  // namespace warren::wg::noise
