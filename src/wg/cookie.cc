#include "wg/cookie.h"

#include <cstring>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "wg/constants.h"
#include "wg/messages.h"
#include "wg/noise.h"

namespace warren::wg {
namespace {

void derive_keys(const crypto::PublicKey& key, std::array<std::uint8_t, 32>& mac1_key,
                 std::array<std::uint8_t, 32>& cookie_key) {
  crypto::blake2s_hash({noise::as_bytes(noise::kLabelMac1), key.span()}, mac1_key);
  crypto::blake2s_hash({noise::as_bytes(noise::kLabelCookie), key.span()}, cookie_key);
}

std::size_t handshake_mac1_offset(ConstBytes message) {
  return message.size() == kInitiationSize ? msg::kInitMac1 : msg::kRespMac1;
}

}  // namespace

std::array<std::uint8_t, 18> cookie_source_bytes(const net::Endpoint& from, std::size_t& len) {
  std::array<std::uint8_t, 18> b{};
  const std::size_t n = from.address.size();
  std::memcpy(b.data(), from.address.data(), n);
  store_be16(b.data() + n, from.port);
  len = n + 2;
  return b;
}

void CookieChecker::set_public_key(const crypto::PublicKey& ours) {
  derive_keys(ours, mac1_key_, cookie_key_);
}

bool CookieChecker::check_mac1(ConstBytes message) const {
  const std::size_t off = handshake_mac1_offset(message);
  Mac mac;
  crypto::blake2s_mac(mac1_key_, message.first(off), mac);
  return constant_time_equal(mac, message.subspan(off, 16));
}

Mac CookieChecker::cookie_for(const net::Endpoint& from, MonoTime now, RandomSource* rng) {
  // Called with mu_ held. The secret is renewed lazily once it is two minutes old.
  if (rng && (!have_secret_ || now - secret_set_ > kCookieRefreshTime)) {
    rng->fill(secret_.span());
    secret_set_ = now;
    have_secret_ = true;
  }
  std::size_t len = 0;
  auto src = cookie_source_bytes(from, len);
  Mac cookie;
  crypto::blake2s_mac(secret_.span(), std::span<const std::uint8_t>(src.data(), len), cookie);
  return cookie;
}

bool CookieChecker::check_mac2(ConstBytes message, const net::Endpoint& from, MonoTime now) {
  std::lock_guard lock(mu_);
  if (!have_secret_ || now - secret_set_ > kCookieRefreshTime)
    return false;
  const Mac cookie = cookie_for(from, now, nullptr);
  const std::size_t off = handshake_mac1_offset(message) + 16;
  Mac mac;
  crypto::blake2s_mac(cookie, message.first(off), mac);
  return constant_time_equal(mac, message.subspan(off, 16));
}

void CookieChecker::create_reply(ConstBytes message, std::uint32_t receiver_index,
                                 const net::Endpoint& from, MonoTime now, RandomSource& rng,
                                 std::span<std::uint8_t, 64> out) {
  Mac cookie;
  {
    std::lock_guard lock(mu_);
    cookie = cookie_for(from, now, &rng);
  }
  msg::write_header(out.data(), kMessageCookieReply);
  store_le32(out.data() + msg::kCookieReceiver, receiver_index);
  auto nonce = out.subspan<msg::kCookieNonce, 24>();
  rng.fill(nonce);
  const std::size_t off = handshake_mac1_offset(message);
  // AD = the mac1 of the message we answer, so only its sender can use the cookie.
  bool sealed = crypto::xaead_seal(cookie_key_, nonce, cookie, message.subspan(off, 16),
                                   out.subspan(msg::kCookieEncrypted, 32));
  (void)sealed;  // cannot fail with these fixed sizes
  secure_zero(cookie.data(), cookie.size());
}

void CookieChecker::set_secret_for_test(const Secret<32>& secret, MonoTime set_at) {
  std::lock_guard lock(mu_);
  secret_ = secret;
  secret_set_ = set_at;
  have_secret_ = true;
}

void CookieGenerator::set_peer_public_key(const crypto::PublicKey& peer) {
  derive_keys(peer, mac1_key_, cookie_key_);
  clear();
}

void CookieGenerator::add_macs(Bytes message, MonoTime now) {
  const std::size_t off = handshake_mac1_offset(message);
  crypto::blake2s_mac(mac1_key_, message.first(off), message.subspan(off).first<16>());
  std::memcpy(last_mac1_.data(), message.data() + off, 16);
  have_last_mac1_ = true;
  auto mac2 = message.subspan(off + 16).first<16>();
  if (have_cookie_ && now - cookie_set_ < kCookieRefreshTime) {
    crypto::blake2s_mac(cookie_.span(), message.first(off + 16), mac2);
  } else {
    std::memset(mac2.data(), 0, 16);
  }
}

bool CookieGenerator::consume_reply(ConstBytes reply, MonoTime now) {
  if (!have_last_mac1_ || reply.size() != kCookieReplySize)
    return false;
  auto nonce = reply.subspan<msg::kCookieNonce, 24>();
  Secret<16> cookie;
  if (!crypto::xaead_open(cookie_key_, nonce, reply.subspan(msg::kCookieEncrypted, 32), last_mac1_,
                          cookie.span())) {
    return false;
  }
  cookie_ = cookie;
  cookie_set_ = now;
  have_cookie_ = true;
  return true;
}

void CookieGenerator::clear() {
  cookie_.clear();
  have_cookie_ = false;
  have_last_mac1_ = false;
  last_mac1_ = {};
}

}  // namespace warren::wg
