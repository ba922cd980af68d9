#pragma once
/// StunClient: a node's STUN Binding transactions (RFC 5389 §7.2.1), without I/O — what to send
/// when, which answers to believe, and what they taught us (the reflexive endpoint per server,
/// and whether the NAT maps endpoint-independently).
///
///   owner's timer ─► tick(now, out) ─► (server, Binding request) ─► send from the WG socket
///   datagram from the WG socket that stun::is_stun ─► on_datagram(from, bytes, now) ─► verdict
///   results() / mapping() ─► status, logs
///
/// Per server, one transaction at a time: a fresh 96-bit id (from the injected RandomSource,
/// a CSPRNG in production), sent at once and retransmitted after initial_rto, 2·rto, 4·rto ...
/// up to max_sends sends; no answer within the last wait is a timeout (the server's result is
/// then marked timed out and the last reflexive endpoint kept as stale), retried after
/// retry_after_failure. A success ends the transaction and the next one starts after `refresh`
/// (NAT mappings expire; the endpoint we tell others must stay current).
///
/// An answer is accepted only if it parses (stun::parse: FINGERPRINT checked when present), its
/// transaction id is one of the outstanding ones, and it comes from the endpoint that id was
/// sent to (IPv4-mapped IPv6 sources compare as IPv4). Everything else is dropped and counted by
/// reason; a stale or unsolicited answer changes nothing.
///
/// Mapping classification (RFC 4787 §4.1): with fresh answers from two or more different server
/// endpoints, the same reflexive endpoint from all is an endpoint-independent mapping; differing
/// ones mean an address- or port-dependent ("symmetric") mapping, where a reflexive endpoint
/// learned from one server is of no use to another peer. With two ports of one server host, an
/// address-dependent mapping looks endpoint-independent (the address is the same); two server
/// hosts tell them apart.
///
/// Not thread-safe: the owner serialises calls (the runtime holds a mutex).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/time.h"
#include "mesh/stun.h"
#include "net/ip_address.h"

namespace warren::mesh {

struct StunClientOptions {
  Duration initial_rto = std::chrono::milliseconds(250);
  /// Sends per transaction (the first plus retransmissions); the timeout follows the last one
  /// after one more doubled wait: 250 ms · (1+2+4+8+16+32) ≈ 16 s with the defaults.
  int max_sends = 6;
  /// A new transaction this long after a success.
  Duration refresh = std::chrono::seconds(60);
  /// ... and this long after a timeout or an error response.
  Duration retry_after_failure = std::chrono::seconds(15);
};

enum class StunVerdict : std::uint8_t {
  kAccepted,            ///< a success response to an outstanding request: result updated
  kErrorResponse,       ///< an error response to an outstanding request: transaction ended
  kUnknownTransaction,  ///< no outstanding request has this id (stale, duplicate, unsolicited)
  kWrongSource,         ///< the id is ours, but it came from another endpoint than we asked
  kMalformed,           ///< not a valid STUN response (parse error, a request, no address)
};

enum class MappingKind : std::uint8_t {
  kUnknown,              ///< fewer than two fresh answers from different servers
  kEndpointIndependent,  ///< the same reflexive endpoint from every server
  kEndpointDependent,    ///< different reflexive endpoints: address/port-dependent mapping
};
const char* mapping_kind_name(MappingKind k);  ///< "unknown", "endpoint-independent", ...

struct StunServerResult {
  enum class State : std::uint8_t { kPending, kOk, kTimedOut, kError };
  net::Endpoint server;
  State state = State::kPending;
  std::optional<net::Endpoint> reflexive;  ///< the last one learned (kept when stale)
  WallTime learned_at{};                   ///< when `reflexive` was learned
  Duration rtt{};                          ///< first send of the transaction to the answer
};
const char* stun_state_name(StunServerResult::State s);  ///< "pending", "ok", "timeout", "error"

struct StunClientCounters {
  std::uint64_t requests_sent = 0;  ///< including retransmissions
  std::uint64_t accepted = 0;
  std::uint64_t error_responses = 0;
  std::uint64_t unknown_transaction = 0;
  std::uint64_t wrong_source = 0;
  std::uint64_t malformed = 0;
  std::uint64_t timeouts = 0;
};

class StunClient {
 public:
  struct Request {
    net::Endpoint to;
    std::vector<std::uint8_t> datagram;
  };

  /// `servers` (port != 0; duplicates are ignored) are asked in this order. `random` must
  /// outlive the client.
  StunClient(std::vector<net::Endpoint> servers, RandomSource& random,
             StunClientOptions options = {});

  /// Starts, retransmits and times out transactions due at `now`; appends the requests to send
  /// to `out`. Call again at next_deadline() (earlier calls are harmless).
  void tick(Now now, std::vector<Request>& out);
  /// Forgets every transaction and result and asks every server again at the next tick(): the
  /// socket's port changed (a new listen_port), so the old mapping is not ours any more.
  void restart();
  /// The earliest time tick() has something to do.
  [[nodiscard]] MonoTime next_deadline() const;

  /// A STUN datagram received on the WireGuard socket from `from`.
  [[nodiscard]] StunVerdict on_datagram(const net::Endpoint& from, ConstBytes datagram, Now now);

  /// One entry per server, in the order given.
  [[nodiscard]] const std::vector<StunServerResult>& results() const { return results_; }
  [[nodiscard]] MappingKind mapping() const;
  [[nodiscard]] const StunClientCounters& counters() const { return counters_; }

 private:
  struct Transaction {
    bool active = false;
    stun::TransactionId id{};
    int sends = 0;
    MonoTime first_sent{};
    MonoTime next_event{};  // next send, or the timeout after the last one
  };
  RandomSource& random_;
  StunClientOptions options_;
  std::vector<StunServerResult> results_;
  std::vector<Transaction> transactions_;  // parallel to results_
  std::vector<MonoTime> next_round_;       // parallel: when the next transaction starts
  StunClientCounters counters_;
};

}  // namespace warren::mesh
