#pragma once
/// Per-peer protocol state: handshake, the three keypair slots, timers, endpoint, counters.
/// Internal to the Device; every field below `mu` is guarded by it.

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/secure.h"
#include "base/time.h"
#include "crypto/aead.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"
#include "wg/allowed_ips.h"
#include "wg/constants.h"
#include "wg/cookie.h"
#include "wg/noise.h"
#include "wg/replay_window.h"
#include "wg/tai64n.h"

namespace warren::wg {

/// A timer that is not running; a deadline that never comes.
inline constexpr MonoTime kNever = kNoDeadline;

/// One session's transport keys (whitepaper §5.4.5). The send counter is atomic so several
/// threads may encrypt with the same keypair; the replay window has its own lock.
struct Keypair {
  Keypair() = default;
  Keypair(const Keypair&) = delete;
  Keypair& operator=(const Keypair&) = delete;
  /// The keys wipe themselves (Secret); copies that threads' AEAD contexts cached are retired,
  /// so every thread drops them on its next use or before it sleeps (whitepaper §6.3).
  ~Keypair() { crypto::aead_retire_keys(); }

  Secret<32> send_key;
  Secret<32> recv_key;
  std::atomic<std::uint64_t> send_nonce{0};
  std::mutex replay_mu;
  ReplayWindow replay;
  MonoTime created{};
  bool initiator = false;
  std::uint32_t local_index = 0;
  std::uint32_t remote_index = 0;
};

enum class HandshakeStage : std::uint8_t {
  kZeroed,
  kInitiationCreated,   ///< we sent an initiation and wait for the response
  kInitiationConsumed,  ///< transient, while answering
};

struct Peer {
  PeerId id = 0;
  crypto::PublicKey public_key;

  std::mutex mu;
  crypto::PresharedKey preshared_key;
  crypto::SharedSecret static_static;  ///< DH(our static, their static), precomputed
  bool static_static_ok = false;       ///< false for low-order keys: never handshake

  noise::State handshake;
  HandshakeStage stage = HandshakeStage::kZeroed;
  std::uint32_t handshake_local_index = 0;
  std::uint32_t handshake_remote_index = 0;
  /// The initiation we sent while stage == kInitiationCreated, kept to send once more when the
  /// peer's own initiation crosses it (Device::Impl::consume_initiation, "simultaneous").
  std::array<std::uint8_t, kInitiationSize> sent_initiation{};
  Tai64n last_timestamp{};
  MonoTime last_initiation_consumed = kNever;  ///< kNever = none yet
  MonoTime last_sent_handshake = kNever;
  MonoTime initiation_sent = kNever;  ///< when the pending initiation (stage kInitiationCreated) left
  /// Round-trip time of the last completed handshake (zero = none yet): initiation sent →
  /// response received on the initiator's side, response sent → first packet on the new
  /// session (key confirmation) on the responder's.
  Duration handshake_rtt{};

  std::shared_ptr<Keypair> previous;
  std::shared_ptr<Keypair> current;
  std::shared_ptr<Keypair> next;

  std::optional<net::Path> endpoint;
  std::uint16_t persistent_keepalive = 0;
  CookieGenerator cookies;

  // Timers (whitepaper §6; wireguard-go timers.go) as absolute monotonic deadlines. Every
  // write of a finite deadline goes through Device::Impl::set_timer, which keeps
  // `scheduled_at` <= the earliest of them (see the timer schedule in device.cc).
  MonoTime timer_retransmit = kNever;
  MonoTime timer_send_keepalive = kNever;
  MonoTime timer_new_handshake = kNever;
  MonoTime timer_zero_keys = kNever;
  MonoTime timer_persistent_keepalive = kNever;
  /// The deadline of this peer's live entry in the device's timer heap (kNever = none). Only
  /// an entry whose time equals it is live; older entries are skipped when they surface.
  /// Written under `mu`; atomic only so the heap's compaction may read it without `mu`.
  std::atomic<MonoTime> scheduled_at{kNever};
  int handshake_attempts = 0;
  bool need_another_keepalive = false;
  bool sent_last_minute_handshake = false;

  WallTime last_handshake_wall{};  ///< the epoch = never

  std::deque<std::vector<std::uint8_t>> staged;  ///< IP packets waiting for a session

  std::atomic<std::uint64_t> rx_bytes{0};
  std::atomic<std::uint64_t> tx_bytes{0};
  std::atomic<std::uint64_t> rx_packets{0};
  std::atomic<std::uint64_t> tx_packets{0};
};

}  // namespace warren::wg
