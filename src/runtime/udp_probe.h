#pragma once
/// UdpProbe: does UDP between this daemon's WireGuard socket and one server's WireGuard port
/// work both ways? A client on the QUIC fallback (runtime/transport_choice.h) asks it now and
/// then, without moving its WireGuard peer off QUIC: one STUN Binding request from the
/// WireGuard socket (Engine::send_datagram: the same source port and NAT mapping) to the
/// server's WireGuard endpoint, which answers it there when `[quic]` is on
/// (server::WireGuardPortStun). An answer with the outstanding transaction id is the "yes".
///
///   runtime timer ─► TransportChoice says "probe" ─► send(to) ─► Engine::send_datagram
///   worker: not WireGuard, stun::is_stun ─► on_stun() ─► id and source match ─► answered_at
///
/// Only the latest request counts (a new one replaces the id); an answer from any other
/// address, with another id or malformed is ignored. Thread-safety: on_stun() runs on any
/// worker; send() and answered_at() on the runtime's thread; a mutex guards the state, and the
/// engine is called without it.

#include <mutex>
#include <optional>

#include "base/random.h"
#include "base/time.h"
#include "dataplane/engine.h"
#include "mesh/stun.h"

namespace warren::runtime {

class UdpProbe final : public dataplane::StunSink {
 public:
  /// `random` must outlive this object.
  explicit UdpProbe(RandomSource& random) : random_(random) {}

  /// Sends a new probe to `to` through `engine` (forgetting any outstanding one).
  void send(dataplane::Engine& engine, const net::Endpoint& to);
  /// When the latest answer arrived (nullopt: none since this object was made).
  [[nodiscard]] std::optional<MonoTime> answered_at() const;
  std::uint64_t answers() const;

  void on_stun(const net::Path& from, ConstBytes message, Now now) override;

 private:
  RandomSource& random_;
  mutable std::mutex mutex_;
  std::optional<mesh::stun::TransactionId> outstanding_;
  net::Endpoint target_{};
  std::optional<MonoTime> answered_at_;
  std::uint64_t answers_ = 0;
};

}  // namespace warren::runtime
