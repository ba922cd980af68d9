#pragma once
/// The relay's switchboard (docs/MESH.md "Relay"): which connection is which node, and what
/// each decoded frame makes the relay send. No sockets, no clocks (time is passed in), no
/// threads: the socket glue (server/relay_service.h) feeds it frames and writes what it queues.
///
///   glue: open(conn) ───────────────► queues challenge
///   glue: frame(conn, f, now) ─┬─ auth:  Challenger::verify ─► authorized(key)? ─► auth ok
///                              │         (same key on another conn: that one is closed, roaming)
///                              ├─ send:  rate limit ─► recv{src,datagram} queued on dst's conn
///                              │         (or error kUnknownDestination)
///                              └─ ping:  pong
///   glue: take_ready() ─► conns with output or to close ─► output(conn) / closing(conn)
///
/// Refusals: a data frame before auth gets kAuthRequired (connection stays); a proof that does
/// not verify gets kAuthFailed, an unauthorized key kNotEnrolled, a second auth, a challenge or
/// an auth-ok from the node kProtocol — each then closes the connection (after the error frame
/// is written). Over the rate (per node key, so reconnecting does not reset it): one
/// kRateLimited error per second at most, the frame dropped.
/// Output per connection is bounded (max_queued_bytes): frames that do not fit are dropped and
/// counted (a slow reader never makes the relay buffer without bound or block); control answers
/// (pong, errors) may use kControlSlack more, past which the connection is closed. An
/// unauthenticated connection is closed at auth_timeout (expire()).
/// Thread-compatible: one thread (the relay's loop) owns it.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/random.h"
#include "base/time.h"
#include "crypto/x25519.h"
#include "mesh/relay.h"

namespace warren::mesh::relay {

struct SwitchboardOptions {
  /// Per node: sustained bytes (datagram bytes) and frames a second it may send; a burst of
  /// one second's worth. 0 = unlimited.
  std::uint64_t rate_bytes = 8 * 1024 * 1024;
  std::uint64_t rate_frames = 4096;
  /// Output held per connection before frames to it are dropped.
  std::size_t max_queued_bytes = 1024 * 1024;
  /// An unauthenticated connection is closed after this.
  Duration auth_timeout = std::chrono::seconds(5);
};

struct SwitchboardCounters {
  std::uint64_t forwarded_frames = 0;
  std::uint64_t forwarded_bytes = 0;  ///< datagram bytes
  std::uint64_t auth_ok = 0;
  std::uint64_t auth_failed = 0;  ///< proof did not verify, or not enrolled
  std::uint64_t replaced = 0;     ///< a connection replaced by a newer one with the same key
  std::uint64_t revoked = 0;      ///< connections closed because the key lost its right
  std::uint64_t auth_timeouts = 0;
  std::uint64_t drop_unknown_destination = 0;
  std::uint64_t drop_rate_limited = 0;
  std::uint64_t drop_queue_full = 0;
  std::uint64_t drop_auth_required = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t overflow_closed = 0;  ///< closed: control answers unread past kControlSlack
};

/// Control answers and errors may exceed SwitchboardOptions::max_queued_bytes by this much;
/// a connection that would go past it is closed.
inline constexpr std::size_t kControlSlack = 64 * 1024;

using ConnId = std::uint64_t;

class Switchboard {
 public:
  /// May `key` use the relay (enrolled, not revoked, not disabled)? Called at each auth.
  using Authorizer = std::function<bool(const crypto::PublicKey&)>;

  /// `random` (the CSPRNG in production) must outlive the switchboard.
  Switchboard(SwitchboardOptions options, Authorizer authorized, RandomSource& random);

  /// A new connection (the id unused so far): queues its challenge.
  void open(ConnId conn, MonoTime now);
  /// A new connection (the id unused so far) whose key the glue has proven already (UDP: the
  /// StatelessChallenger): checks the authorizer and roams as an auth frame would, then queues
  /// auth ok, or error kNotEnrolled and closes.
  void open_proven(ConnId conn, const crypto::PublicKey& key, MonoTime now);
  /// The transport is gone (closed by the peer, by the glue, or after closing()): forgets it.
  void close(ConnId conn);
  /// One decoded frame from `conn`.
  void frame(ConnId conn, const Frame& frame, MonoTime now);
  /// The transport failed to decode `conn`'s stream: queues kProtocol and closes.
  void protocol_error(ConnId conn, std::string_view what);
  /// Closes connections not authenticated within auth_timeout.
  void expire(MonoTime now);
  /// Asks the authorizer again for every authenticated connection and closes the ones that
  /// lost the right (revoked, disabled). Call after the roster changes.
  void revalidate();

  /// Connections whose output or closing state changed since the last call.
  [[nodiscard]] std::vector<ConnId> take_ready();
  /// Frames waiting to be written to `conn` (the glue pops what it wrote); null if unknown.
  std::deque<std::vector<std::uint8_t>>* output(ConnId conn);
  /// The glue tells what it has written from output() (for the queue bound).
  void written(ConnId conn, std::size_t bytes);
  /// True when `conn` is to be closed once its output is written.
  [[nodiscard]] bool closing(ConnId conn) const;
  /// The node key `conn` proved, if any.
  [[nodiscard]] std::optional<crypto::PublicKey> node(ConnId conn) const;

  [[nodiscard]] std::size_t authenticated() const { return by_key_.size(); }
  [[nodiscard]] std::size_t connections() const { return conns_.size(); }
  [[nodiscard]] const SwitchboardCounters& counters() const { return counters_; }
  /// When the earliest auth timeout falls (kNoDeadline if none).
  [[nodiscard]] MonoTime next_deadline() const;

 private:
  struct Bucket {
    double tokens = 0;
    MonoTime last{};
    bool take(double amount, std::uint64_t rate, MonoTime now);
  };
  struct Conn {
    std::optional<Challenger> challenger;
    std::optional<crypto::PublicKey> key;
    MonoTime opened{};
    std::deque<std::vector<std::uint8_t>> out;
    std::size_t queued = 0;
    bool closing = false;
    MonoTime last_rate_error{};
    bool rate_error_sent = false;
  };
  /// Per node key, not per connection: reconnecting does not refill them. Forgotten when the
  /// key loses its right (revalidate); at most one per enrolled key otherwise.
  struct Rate {
    Bucket bytes, frames;
  };

  /// Queues `bytes` for `conn` unless over the bound (then counted as drop_queue_full).
  bool queue(ConnId id, Conn& c, std::vector<std::uint8_t> bytes, bool must = false);
  void fail(ConnId id, Conn& c, ErrorCode code, std::string_view text);
  void authenticate(ConnId id, Conn& c, const Frame& f);
  void admit(ConnId id, Conn& c, const crypto::PublicKey& key);
  void forward(ConnId id, Conn& c, const Frame& f, MonoTime now);
  void mark(ConnId id);

  SwitchboardOptions options_;
  Authorizer authorized_;
  RandomSource& random_;
  std::map<ConnId, Conn> conns_;
  std::map<crypto::PublicKey, ConnId> by_key_;
  std::map<crypto::PublicKey, Rate> rates_;
  std::vector<ConnId> ready_;
  SwitchboardCounters counters_;
};

}  // namespace warren::mesh::relay
