#pragma once
/// The coordinator's STUN responder (mesh endpoint discovery, docs/MESH.md): answers a node's
/// Binding request with the address and port the request came from (XOR-MAPPED-ADDRESS), so the
/// node learns its NAT's public mapping of its WireGuard socket.
///
///   UDP [mesh] stun_port (and stun_alternate_port) ─► server's runtime event loop (readable)
///     ─► StunService::on_readable: recvmmsg batch ─► StunResponder::answer ─► sendmmsg
///
/// StunResponder (pure; time passed in) decides what to answer:
///  * only a well-formed Binding request (stun::parse_binding_request: header, every attribute,
///    FINGERPRINT if present; no authentication asked, no unknown comprehension-required
///    attribute); anything else gets no answer at all, not even an error response, so a forged
///    source address cannot make us send to a victim what it did not ask for;
///  * per source address a token bucket (wg::RateLimiter: 20 a second, burst 5; IPv6 by /64),
///    checked before the full parse so a flood costs a hash lookup per datagram;
///  * no amplification: one answer per request, exactly XOR-MAPPED-ADDRESS plus FINGERPRINT
///    only when the request carried one (IPv4: a 20-byte request gets 32 bytes, a 28-byte one
///    40; IPv6 44/52), no SOFTWARE or other attributes.
/// Thread-safety: StunResponder is not thread-safe; StunService runs on one thread (the loop).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/time.h"
#include "dataplane/engine.h"
#include "net/ip_address.h"
#include "platform/batch.h"
#include "platform/clock.h"
#include "platform/udp.h"
#include "wg/rate_limiter.h"

namespace warren::server {

struct StunResponderCounters {
  std::uint64_t answered = 0;
  std::uint64_t rate_limited = 0;  ///< valid-looking or not: dropped before parsing
  std::uint64_t malformed = 0;     ///< not a well-formed Binding request (no answer)
  std::uint64_t send_errors = 0;   ///< answers the kernel did not take
};

class StunResponder {
 public:
  /// `hash_seed`: random bytes for the rate limiter's table (0 in tests).
  explicit StunResponder(std::uint64_t hash_seed = 0);

  /// The answer to `datagram` from `from`, or nullopt (no answer: counted as rate_limited or
  /// malformed).
  [[nodiscard]] std::optional<std::vector<std::uint8_t>> answer(const net::Endpoint& from,
                                                                ConstBytes datagram, MonoTime now);
  /// Forgets idle sources (about once a second; answer() also does it when due).
  void collect_garbage(MonoTime now);

  [[nodiscard]] const StunResponderCounters& counters() const { return counters_; }
  StunResponderCounters& counters() { return counters_; }

 private:
  wg::RateLimiter limiter_;
  MonoTime last_gc_{};
  StunResponderCounters counters_;
};

/// The responder on its sockets: one bind per configured port (both families), served by the
/// runtime's event loop through on_readable().
class StunService {
 public:
  /// Opens UDP `port` (IPv4 and IPv6; no GRO/GSO). EADDRINUSE etc. with the port named.
  [[nodiscard]] static Result<std::unique_ptr<StunService>> open(platform::BindFactory& binds,
                                                                 platform::Clock& clock,
                                                                 std::uint16_t port,
                                                                 std::uint64_t hash_seed);
  std::size_t socket_count() const { return bind_->socket_count(); }
  int poll_fd(std::size_t socket) const { return bind_->poll_fd(socket); }
  std::uint16_t port() const { return bind_->port(); }
  /// Drains up to one batch from `socket` and answers it.
  void on_readable(std::size_t socket);
  const StunResponderCounters& counters() const { return responder_.counters(); }

 private:
  StunService(std::unique_ptr<platform::UdpBind> bind, platform::Clock& clock,
              std::uint64_t hash_seed);
  static constexpr std::size_t kBatch = 32;
  static constexpr std::size_t kSlot = 576;  // larger requests are not ours: dropped truncated

  std::unique_ptr<platform::UdpBind> bind_;
  platform::Clock& clock_;
  StunResponder responder_;
  std::vector<std::uint8_t> memory_;
  std::array<Bytes, kBatch> views_{};
  std::array<std::size_t, kBatch> sizes_{};
  std::array<net::Path, kBatch> paths_{};
  std::vector<std::vector<std::uint8_t>> answers_;
  std::array<platform::OutDatagram, kBatch> out_{};
};

/// The same answers on the WireGuard port itself, from the engine's StunSink (the engine hands
/// it what is STUN-shaped and not WireGuard). A client that may fall back to QUIC
/// (runtime/transport_choice.h) probes with a Binding request from its WireGuard socket whether
/// UDP to this exact port works both ways again; the answer leaves through `send`
/// (Engine::send_datagram: worker 0's socket, the WireGuard port). On only with `[quic]`: a
/// plain WireGuard server keeps answering nothing that is not WireGuard.
/// Thread-safety: on_stun() runs on any worker, concurrently; a mutex guards the responder.
class WireGuardPortStun final : public dataplane::StunSink {
 public:
  using Send = std::function<void(const net::Endpoint& to, ConstBytes datagram)>;
  WireGuardPortStun(Send send, std::uint64_t hash_seed)
      : send_(std::move(send)), responder_(hash_seed) {}
  void on_stun(const net::Path& from, ConstBytes message, Now now) override;
  StunResponderCounters counters() const;

 private:
  Send send_;
  mutable std::mutex mutex_;
  StunResponder responder_;
};

}  // namespace warren::server
