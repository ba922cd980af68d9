#pragma once
/// TransportChoice: whether a client reaches its server over WireGuard's UDP or over QUIC
/// (issue 15; the config's `#@warren Transport`, client/config.h). Pure: the runtime ticks it
/// (about once a second) with what it observed and applies the answer: it points the server
/// peer at the carrier (the engine's path seam, dataplane/transport.h) and sends a UDP probe
/// (a STUN Binding request from the WireGuard socket to the server's WireGuard port) when told.
///
/// Mode `wireguard`: always UDP, never a probe. Mode `quic`: always QUIC, never a probe.
/// Mode `auto`:
///
///   start ─► UDP ──no UDP handshake completed within fallback_after of the start──► QUIC
///   UDP (after a handshake) ──the last UDP handshake older than handshake_max_age──► QUIC
///   QUIC ──every probe interval (first probe one interval after the switch)──► send a probe
///   QUIC ──a probe answered (at or after the first probe since the switch)──► UDP (trial)
///   UDP trial ──no handshake within fallback_after──► QUIC, and the probe interval doubles
///                (capped at max_probe_interval), so that a path that answers STUN but drops
///                WireGuard (a DPI box) does not flap every 15 s
///   UDP ──handshakes working for stable_after──► the probe interval is back at probe_interval
///   QUIC, QUIC connection down ──► probes at probe_interval (not the doubled one): no carrier
///                works, so look for UDP at the base rate
///
/// "A UDP handshake completed" is the caller's `last_udp_handshake`: the time of the last
/// handshake with the server completed over UDP (not over QUIC). Moving to UDP does not start a
/// handshake by itself (the session's keys simply continue on the new path), so on every
/// switch to UDP (Decision::switched) the caller makes the Device initiate one; that handshake
/// is what the trial waits for. `handshake_max_age` assumes traffic or a persistent keepalive
/// (the server pushes 25 s by default): WireGuard renews a session every 120 s while packets
/// flow, so a last handshake older than 120 s + a few retries means UDP stopped working.
/// Thread-compatible (the runtime's loop thread).

#include <cstdint>
#include <optional>

#include "base/time.h"

namespace warren::runtime {

class TransportChoice {
 public:
  enum class Mode : std::uint8_t { kAuto, kWireguard, kQuic };
  enum class Carrier : std::uint8_t { kUdp, kQuic };

  struct Options {
    Duration fallback_after = std::chrono::seconds(5);
    Duration probe_interval = std::chrono::seconds(15);
    Duration max_probe_interval = std::chrono::minutes(5);
    /// UDP handshakes working this long since the switch to UDP: the probe interval resets.
    Duration stable_after = std::chrono::minutes(2);
    /// On UDP after a handshake: a last handshake older than this means the path died
    /// (kRekeyAfterTime 120 s + three kRekeyTimeout 5 s attempts).
    Duration handshake_max_age = std::chrono::seconds(135);
  };

  /// What the runtime observed, each tick.
  struct Input {
    MonoTime now{};
    /// The last handshake with the server completed over UDP; nullopt = none yet.
    std::optional<MonoTime> last_udp_handshake;
    /// The QUIC connection is established (authenticated, assignment received).
    bool quic_up = false;
    /// The latest time a UDP probe was answered; nullopt = never.
    std::optional<MonoTime> probe_answered;
  };

  struct Decision {
    Carrier carrier = Carrier::kUdp;  ///< where the server peer's datagrams go now
    bool send_probe = false;          ///< send one UDP probe now
    bool switched = false;            ///< `carrier` differs from the previous tick's
  };

  /// Starts at `start` (on UDP in auto and wireguard mode, on QUIC in quic mode).
  TransportChoice(Mode mode, MonoTime start) : TransportChoice(mode, Options{}, start) {}
  TransportChoice(Mode mode, Options options, MonoTime start);

  /// One step; `in.now` never goes backwards.
  [[nodiscard]] Decision tick(const Input& in);

  Mode mode() const { return mode_; }
  Carrier carrier() const { return carrier_; }
  /// The probe interval in force (doubled after each failed trial, up to the cap).
  Duration probe_interval() const { return interval_; }

 private:
  void to_quic(MonoTime now, bool failed_trial);
  void to_udp(MonoTime now);

  Mode mode_;
  Options options_;
  Carrier carrier_;
  MonoTime since_;                       ///< the switch to the current carrier (or the start)
  bool trial_ = false;                   ///< on UDP because a probe was answered
  std::optional<MonoTime> udp_working_;  ///< first handshake after the switch to UDP
  Duration interval_;
  std::optional<MonoTime> last_probe_;   ///< the last probe sent since the switch to QUIC
  std::optional<MonoTime> first_probe_;  ///< the first probe sent since the switch to QUIC
};

/// "auto", "wireguard", "quic" / "udp", "quic".
[[nodiscard]] const char* mode_name(TransportChoice::Mode m);
[[nodiscard]] const char* carrier_name(TransportChoice::Carrier c);

}  // namespace warren::runtime
