#pragma once
/// The server's QUIC demultiplexer, without I/O: every UDP payload that reaches the server's
/// QUIC socket goes through receive(), which routes it to its connection by Destination
/// Connection ID, accepts a new connection, answers statelessly, or drops it (and counts why).
///
///   receive(payload, from, local, now, reply_buf)
///     ├─ unparseable header ...................................... drop kMalformed
///     ├─ unsupported version (≥ 1200 bytes) ...................... reply Version Negotiation
///     ├─ DCID of a connection .................................... kConnection (its receive())
///     ├─ short header, reset_secret set, ≥ 41 bytes, under rate .. reply Stateless Reset
///     ├─ not a client Initial (short header, 0-RTT, too small) ... drop kUnknownConnection
///     ├─ connection cap reached .................................. drop kTooManyConnections
///     ├─ Retry on and no token ................................... reply Retry (no state kept)
///     ├─ token invalid / expired / for another address ........... drop kBadToken
///     └─ else: a new Connection (kept only if its first packet is accepted)
///
/// No state is created for a packet that is not a valid Initial, and with `retry` (the
/// default) only for an Initial whose token proves the client receives at its source address
/// (RFC 9000 §8.1.2), so a spoofed source cannot make the server hold state.
///
/// Stateless reset (RFC 9000 §10.3): with `reset_secret`, every connection ID the server issues
/// carries the token HKDF(reset_secret, cid) (ngtcp2_crypto_generate_stateless_reset_token),
/// so an endpoint restarted with the same secret can answer a client's packet for a connection
/// it no longer knows with a Stateless Reset that client accepts, and the client closes at
/// once instead of at its idle timeout. A reset is always shorter than the packet that caused
/// it (so two endpoints cannot loop) and at most `max_resets_per_second` go out.
///
/// Not thread-safe: one thread owns the endpoint and all its connections.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/secure.h"
#include "base/time.h"
#include "net/ip_address.h"
#include "quic/connection.h"
#include "quic/identity.h"

namespace warren::quic {

struct ServerOptions {
  std::shared_ptr<const ServerIdentity> identity;  ///< required
  std::string alpn = std::string(kAlpn);
  ConnectionOptions options;
  /// Address validation by Retry before any state is kept (RFC 9000 §8.1.2).
  bool retry = true;
  /// How long a Retry token stays valid.
  Duration token_lifetime = std::chrono::seconds(10);
  /// New connections beyond this many are dropped.
  std::size_t max_connections = 1024;
  /// DATAGRAM payloads of every connection (see DatagramHandler).
  DatagramHandler on_datagram;
  /// Connection IDs, the Retry token secret, ...; null = crypto::SystemRandom.
  RandomSource* random = nullptr;
  /// Stateless reset key; must survive restarts (derive it from the server's long-term key)
  /// and stay secret: whoever knows it can reset any connection of this server. nullopt =
  /// random tokens and no resets sent. At most ONE live endpoint may use a given secret:
  /// a second one (another process during a restart overlap, SO_REUSEPORT workers, one
  /// endpoint per socket) answers packets of the first one's connections with their valid
  /// token, so anyone who sees a connection ID could learn its token and reset it (RFC 9000
  /// §21.11, stateless reset oracle).
  std::optional<Secret<32>> reset_secret;
  /// At most this many Stateless Resets per second (all clients together); the rest are
  /// withheld (ServerStats::stateless_resets_withheld). 0 = none.
  std::uint32_t max_resets_per_second = 100;
};

/// The shortest packet answered with a Stateless Reset. The reset is one byte shorter and must
/// still be at least 21 bytes (RFC 9000 §10.3: 5 unpredictable bytes + the 16-byte token); 41
/// also leaves room for a short header with our 16-byte connection ID (1 + 16), 4 bytes of
/// packet number/payload and the 16-byte AEAD tag, so smaller packets are not real 1-RTT
/// packets of ours anyway.
inline constexpr std::size_t kMinResetTrigger = 41;

enum class DropReason : std::uint8_t {
  kMalformed,           ///< no QUIC header could be parsed (garbage, truncated)
  kUnknownConnection,   ///< unknown DCID and not an acceptable client Initial
  kTooManyConnections,  ///< max_connections reached
  kBadToken,            ///< Initial with an invalid, expired or foreign token
  kHandshakeFailed,     ///< the new connection rejected its first packet
  kCount
};
const char* to_string(DropReason r);

struct ServerStats {
  std::uint64_t dropped[static_cast<std::size_t>(DropReason::kCount)] = {};
  std::uint64_t version_negotiations = 0;  ///< Version Negotiation packets sent
  std::uint64_t retries = 0;               ///< Retry packets sent
  std::uint64_t accepted = 0;              ///< connections created
  std::uint64_t stateless_resets = 0;      ///< Stateless Resets sent
  /// Resets not sent because max_resets_per_second was reached (the packet is then dropped
  /// as kUnknownConnection).
  std::uint64_t stateless_resets_withheld = 0;
  std::uint64_t drops(DropReason r) const { return dropped[static_cast<std::size_t>(r)]; }
};

/// What receive() decided.
struct ServerReceive {
  enum class Kind : std::uint8_t {
    kDrop,        ///< nothing to do; `drop` says why
    kConnection,  ///< given to `connection` (new if `created`): now call its write() loop.
                  ///< If it closed (connection->closed()), expire() removes it later.
    kReply,       ///< send the first `reply_bytes` of reply_buf back to `from`
  };
  Kind kind = Kind::kDrop;
  DropReason drop = DropReason::kMalformed;
  Connection* connection = nullptr;
  bool created = false;
  std::size_t reply_bytes = 0;
};

class ServerEndpoint {
 public:
  /// EINVAL without an identity.
  [[nodiscard]] static Result<std::unique_ptr<ServerEndpoint>> create(ServerOptions opts);
  ~ServerEndpoint();

  /// One UDP payload from `from`, received on our address `local`. `reply_buf` (at least
  /// kMaxUdpPayload bytes) receives a stateless reply.
  [[nodiscard]] ServerReceive receive(ConstBytes payload, const net::Endpoint& from,
                                      const net::Endpoint& local, MonoTime now, Bytes reply_buf);

  /// The earliest deadline() of all connections (kNoDeadline when there are none).
  MonoTime deadline() const;
  /// Runs on_timer(now) on every connection whose deadline has come. Then call write() on
  /// connections() and expire().
  void on_timer(MonoTime now);
  /// Removes closed connections and hands them over (read reason(); their CONNECTION_CLOSE,
  /// if any, must have been written before).
  std::vector<std::unique_ptr<Connection>> expire();

  /// The live connections, in no particular order (valid until the next receive/expire).
  std::vector<Connection*> connections() const;
  std::size_t size() const { return conns_.size(); }
  const ServerStats& stats() const { return stats_; }

 private:
  explicit ServerEndpoint(ServerOptions opts);
  ServerReceive drop(DropReason r);
  // A Stateless Reset for the short-header packet `payload` whose DCID is `dcid`, or a drop.
  ServerReceive stateless_reset(ConstBytes payload, ConstBytes dcid, MonoTime now, Bytes reply_buf);

  ServerOptions opts_;
  RandomSource* rng_;
  Secret<32> token_secret_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::unordered_map<std::string, Connection*> by_cid_;
  ServerStats stats_;
  MonoTime reset_window_start_ = MonoTime::min();  // the current one-second rate window
  std::uint32_t resets_in_window_ = 0;
};

}  // namespace warren::quic
