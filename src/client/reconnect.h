#pragma once
/// Reconnecting to the server: exponential backoff with jitter, and the per-peer watch that
/// decides when to try again. Pure logic (time and randomness injected); the daemon does the
/// attempt itself: re-resolve the endpoint name (getaddrinfo), update the peer's endpoint and
/// prod a handshake (WireGuard alone gives up after 90 s without new traffic).
///
/// A peer is healthy while it has a session whose handshake is younger than Reject-After-Time
/// (180 s) and something arrived from it within `dead_after` (a handshake response counts, so
/// an idle but live server answers the prod and is healthy again). Otherwise the watch asks
/// for an attempt at once, then after 1, 2, 4, ... 60 s (each delay drawn from [d/2, d]).

#include <cstdint>
#include <optional>

#include "base/random.h"
#include "base/time.h"
#include "wg/config.h"

namespace warren::client {

struct BackoffOptions {
  Duration initial = std::chrono::seconds{1};
  Duration max = std::chrono::seconds{60};
};

class Backoff {
 public:
  Backoff(BackoffOptions options, RandomSource& rng) : options_(options), rng_(rng) {}
  /// The delay before the next attempt: base = min(max, initial * 2^attempts), drawn
  /// uniformly from [base/2, base] ("equal jitter": spread out, never a zero wait).
  Duration next();
  void reset() { attempts_ = 0; }
  unsigned attempts() const { return attempts_; }

 private:
  BackoffOptions options_;
  RandomSource& rng_;
  unsigned attempts_ = 0;
};

enum class PeerState : std::uint8_t { kConnecting, kConnected, kReconnecting };
const char* peer_state_name(PeerState s);  ///< "connecting", "connected", "reconnecting"

class PeerWatch {
 public:
  PeerWatch(Duration dead_after, BackoffOptions backoff, RandomSource& rng)
      : dead_after_(dead_after), backoff_(backoff, rng) {}

  /// Feeds the peer's current snapshot (`now.mono` monotonic, `now.wall` Unix time). Returns
  /// true when the caller should make a reconnect attempt now.
  bool observe(Now now, const wg::PeerSnapshot& peer);
  PeerState state() const { return state_; }
  unsigned attempts() const { return attempts_total_; }

 private:
  static constexpr Duration kRejectAfter = std::chrono::seconds{180};  // WireGuard Reject-After-Time
  Duration dead_after_;
  Backoff backoff_;
  PeerState state_ = PeerState::kConnecting;
  bool ever_connected_ = false;
  std::optional<std::uint64_t> last_rx_bytes_;
  std::optional<MonoTime> last_rx_change_;
  std::optional<MonoTime> next_attempt_;
  unsigned attempts_total_ = 0;
};

}  // namespace warren::client
