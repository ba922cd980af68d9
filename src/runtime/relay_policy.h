#pragma once
/// RelayPolicy: when a node points a peer at the relay and when it tries the direct path again
/// (docs/MESH.md, "Relay path of a node"). Pure: the runtime feeds it a device snapshot once a
/// second and applies the endpoint changes it returns; the protocol core does the rest (an
/// authenticated packet moves a peer's endpoint to the path it came over, whatever the tag).
///
///   direct (UDP) ──no session, sent but nothing received for `fallback_after`──► relay
///   direct (UDP) ──session, data sent but nothing received for `dead_after`──► relay
///                  (the path died under a live session: the peer's NAT rebound, it roamed)
///   no endpoint at all ──relay connected──► relay
///   relay ──every `direct_retry`──► trial: endpoint = the last direct endpoint
///   trial ──something received while still direct──► direct (the direct path works)
///   trial ──nothing received for `fallback_after`, or roamed back to the relay──► relay
///   relay ──relay disconnected──► the last direct endpoint
///
/// Only the side that times out switches: its initiation reaches the other side through the
/// relay, whose core then answers over the path the initiation came from (roaming).
/// Thread-compatible (the runtime's loop thread).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "base/time.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"
#include "wg/config.h"

namespace warren::runtime {

struct RelayPolicyOptions {
  Duration fallback_after = std::chrono::seconds(5);
  Duration direct_retry = std::chrono::seconds(30);
  /// With a session: a live peer answers data within wg::kKeepaliveTimeout (10 s) at the
  /// latest (its passive keepalive), so data sent and nothing back for longer means the direct
  /// path is dead. Counted from the first such send after the last receive; keepalives alone
  /// do not count (the peer never answers those).
  Duration dead_after = std::chrono::seconds(12);
};

/// Which carrier the relay transport connects over (docs/MESH.md, "Relay over UDP or TCP/TLS"):
/// UDP first; when a UDP attempt gets no authentication within `udp_timeout` (UDP blocked on
/// the way, or the relay's UDP side down), TCP/TLS, and UDP is tried again at the first
/// reconnect `udp_retry` after that silence. A UDP attempt that was answered (even by a
/// refusal) keeps UDP: the relay is reachable over it. A TCP/TLS session is never cut to try
/// UDP again; the next reconnect decides. Pure, thread-compatible (the link thread).
///
///   start ──► UDP ──authenticated──► UDP (every reconnect)
///              └──nothing within udp_timeout──► TCP/TLS ──reconnect ≥ udp_retry later──► UDP
class RelayCarrierChoice {
 public:
  enum class Carrier : std::uint8_t { kUdp, kTcp };
  struct Options {
    Duration udp_timeout = std::chrono::seconds(3);
    Duration udp_retry = std::chrono::minutes(5);
    bool udp = true;  ///< false: TCP/TLS only
  };
  explicit RelayCarrierChoice(Options options) : options_(options) {}

  /// The carrier of the next connection attempt, made at `now`.
  [[nodiscard]] Carrier next(MonoTime now) const;
  /// The UDP attempt started at `started` ended at `now`; `answered`: the relay answered over
  /// UDP (a challenge came back).
  void udp_result(bool answered, MonoTime now);
  Duration udp_timeout() const { return options_.udp_timeout; }

 private:
  Options options_;
  std::optional<MonoTime> udp_silent_since_;
};

[[nodiscard]] const char* carrier_name(RelayCarrierChoice::Carrier c);

class RelayPolicy {
 public:
  /// The relay's endpoint for a key (RelayTransport::endpoint_for); nullopt = cannot relay it.
  using RelayEndpoint = std::function<std::optional<net::Endpoint>(const crypto::PublicKey&)>;

  explicit RelayPolicy(RelayPolicyOptions options) : options_(options) {}

  /// One step. `peers` as Engine::snapshot() gives them (a non-UDP endpoint is hidden, its
  /// endpoint_transport kept); `relay_tag` the transport's tag. Returns the endpoint changes to
  /// apply (update_only peer deltas with endpoint and transport set).
  [[nodiscard]] std::vector<wg::PeerDelta> tick(const std::vector<wg::PeerSnapshot>& peers,
                                                MonoTime now, std::uint8_t relay_tag,
                                                bool relay_connected,
                                                const RelayEndpoint& relay_endpoint);

  /// Peers the policy has pointed at the relay (or found there) at the last tick.
  std::size_t relayed_count() const;

 private:
  struct PeerState {
    std::uint64_t rx = 0, tx = 0, tx_bytes = 0;
    MonoTime rx_changed{};
    bool sent_since_rx = false;
    std::optional<MonoTime> unanswered;  // first send of more than keepalives since the last receive
    bool relayed = false;
    MonoTime relayed_since{};
    std::optional<net::Endpoint> direct;  // the last UDP endpoint seen
    std::optional<MonoTime> trial;        // trying `direct` since
    std::uint64_t rx_at_trial = 0;
  };
  RelayPolicyOptions options_;
  std::map<crypto::PublicKey, PeerState> peers_;
};

}  // namespace warren::runtime
