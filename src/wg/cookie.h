#pragma once
/// mac1/mac2 and cookie replies (whitepaper §5.4.4, §5.4.7, §6.6).
///
/// CookieChecker is the receiving side of one interface: it checks mac1 under our own public key
/// and, under load, mac2 under a cookie bound to the sender's source address, and writes cookie
/// replies. CookieGenerator is the sending side towards one peer: it adds mac1 (and mac2 when it
/// holds a fresh cookie) and opens the cookie replies that peer sends us.
///
/// Thread-safety: CookieChecker is internally synchronised; CookieGenerator is guarded by its
/// owner (the peer's lock).

#include <array>
#include <cstdint>
#include <mutex>
#include <span>

#include "base/bytes.h"
#include "base/random.h"
#include "base/secure.h"
#include "base/time.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"

namespace warren::wg {

using Mac = std::array<std::uint8_t, 16>;

/// The bytes a cookie is bound to: the source IP followed by the UDP port, big-endian. The
/// encoding is private to the responder (it only has to be stable).
std::array<std::uint8_t, 18> cookie_source_bytes(const net::Endpoint& from, std::size_t& len);

class CookieChecker {
 public:
  void set_public_key(const crypto::PublicKey& ours);
  /// mac1 of a type-1 or type-2 message (exact size already checked).
  [[nodiscard]] bool check_mac1(ConstBytes message) const;
  /// mac2 against the cookie for `from`; false once the secret is older than kCookieRefreshTime.
  [[nodiscard]] bool check_mac2(ConstBytes message, const net::Endpoint& from, MonoTime now);
  /// Writes a 64-byte type-3 reply to `message` (whose sender index is `receiver_index`).
  void create_reply(ConstBytes message, std::uint32_t receiver_index, const net::Endpoint& from,
                    MonoTime now, RandomSource& rng, std::span<std::uint8_t, 64> out);
  /// For the test vector: fix the secret and the time it was set.
  void set_secret_for_test(const Secret<32>& secret, MonoTime set_at);

 private:
  Mac cookie_for(const net::Endpoint& from, MonoTime now, RandomSource* rng);

  std::array<std::uint8_t, 32> mac1_key_{};
  std::array<std::uint8_t, 32> cookie_key_{};
  mutable std::mutex mu_;
  Secret<32> secret_;
  MonoTime secret_set_{};
  bool have_secret_ = false;
};

class CookieGenerator {
 public:
  void set_peer_public_key(const crypto::PublicKey& peer);
  /// Fills mac1 and mac2 of a type-1 or type-2 message in place; remembers mac1.
  void add_macs(Bytes message, MonoTime now);
  /// Opens a cookie reply with the last mac1 we sent; stores the cookie. False if we sent no
  /// handshake message yet or the reply does not authenticate.
  [[nodiscard]] bool consume_reply(ConstBytes reply, MonoTime now);
  void clear();

 private:
  std::array<std::uint8_t, 32> mac1_key_{};
  std::array<std::uint8_t, 32> cookie_key_{};
  Secret<16> cookie_;
  MonoTime cookie_set_{};
  bool have_cookie_ = false;
  Mac last_mac1_{};
  bool have_last_mac1_ = false;
};

}  // namespace warren::wg
