#include "client/reconnect.h"

#include <algorithm>

namespace warren::client {

Duration Backoff::next() {
  Duration base = options_.initial;
  for (unsigned i = 0; i < attempts_ && base < options_.max; ++i)
    base *= 2;
  base = std::min(base, options_.max);
  ++attempts_;
  const auto half = base / 2;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(base - half).count();
  const auto jitter =
      std::chrono::milliseconds(ms > 0 ? rng_.uniform(static_cast<std::uint32_t>(ms) + 1) : 0);
  return half + jitter;
}

const char* peer_state_name(PeerState s) {
  switch (s) {
    case PeerState::kConnecting:
      return "connecting";
    case PeerState::kConnected:
      return "connected";
    case PeerState::kReconnecting:
      return "reconnecting";
  }
  return "?";
}

bool PeerWatch::observe(Now now, const wg::PeerSnapshot& peer) {
  if (!last_rx_bytes_ || peer.rx_bytes != *last_rx_bytes_) {
    if (peer.rx_bytes > 0)
      last_rx_change_ = now.mono;
    last_rx_bytes_ = peer.rx_bytes;
  }
  const bool handshake_fresh =
      peer.last_handshake_sec != 0 &&
      now.wall - WallTime(std::chrono::seconds(peer.last_handshake_sec)) < kRejectAfter;
  const bool heard_recently = last_rx_change_ && now.mono - *last_rx_change_ < dead_after_;
  if (peer.has_session && handshake_fresh && heard_recently) {
    state_ = PeerState::kConnected;
    ever_connected_ = true;
    backoff_.reset();
    next_attempt_.reset();
    return false;
  }
  state_ = ever_connected_ ? PeerState::kReconnecting : PeerState::kConnecting;
  if (next_attempt_ && now.mono < *next_attempt_)
    return false;
  next_attempt_ = now.mono + backoff_.next();
  ++attempts_total_;
  return true;
}

}  // namespace warren::client
