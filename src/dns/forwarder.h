#pragma once
/// The forwarding half of a tunnel resolver: queries a local zone leaves to the upstreams go out
/// under fresh random ids, and only a response that matches an outstanding query — same id,
/// same question, from the upstream it was sent to — goes back to the client. I/O-free: the
/// caller (runtime/dns_service.h) owns the sockets and the clock.
///
///   client query ──forward──► {upstream, datagram with a fresh random id}     (table += entry)
///   upstream datagram ──on_response──► {client, response with the client's id, fitted to the
///                                       client's transport (TC over UDP when too long)}
///                                  └─► error: unknown id / other upstream / other question
///                                       (dropped; the entry stays for the real answer)
///   expire(now) ──► timed-out entries: resent to the next upstream (new id) while attempts
///                   remain, else SERVFAIL to the client
///
/// Spoofing: an off-path attacker must guess a 16-bit id that is in use *and* the question *and*
/// send from the upstream's address and port; a wrong guess changes nothing (no entry is
/// consumed). The table is bounded (max_outstanding): a full table refuses new queries (EAGAIN,
/// the caller answers SERVFAIL) rather than evicting queries already in flight.
///
/// Thread-compatible: one thread (the server's event loop) drives it.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/result.h"
#include "base/time.h"
#include "dns/message.h"
#include "net/ip_address.h"

namespace warren::dns {

/// Where a query came from, so that its answer can go back there.
struct Client {
  net::Endpoint endpoint;        ///< the asker's address and port
  std::uint64_t connection = 0;  ///< a TCP connection's id given by the caller; 0 over UDP
  Transport transport = Transport::kUdp;
  friend bool operator==(const Client&, const Client&) = default;
};

struct ForwarderOptions {
  std::size_t max_outstanding = 1024;
  /// How long one upstream has to answer before the next is tried.
  Duration timeout = std::chrono::milliseconds(1500);
  /// Upstreams tried for one query (each a fresh id), at most the number of upstreams.
  std::size_t attempts = 3;
};

/// A datagram to send to an upstream resolver.
struct UpstreamQuery {
  net::Endpoint upstream;
  Response datagram;
};

/// A response to send to a client.
struct Delivery {
  Client client;
  Response response;
  /// The upstream that answered and the client's query (its own id): a TCP client whose
  /// answer came truncated (TC) may be asked for again over TCP (runtime/dns_service.h).
  net::Endpoint upstream;
  Response query;
};

/// Whether `response` has the TC bit (false for anything shorter than a header).
[[nodiscard]] bool truncated(ConstBytes response);

struct ForwarderStats {
  std::uint64_t forwarded = 0;   ///< queries sent upstream (first attempts)
  std::uint64_t answered = 0;    ///< matching responses relayed to clients
  std::uint64_t retried = 0;     ///< resends to another upstream after a timeout
  std::uint64_t timed_out = 0;   ///< queries given up (SERVFAIL)
  std::uint64_t mismatched = 0;  ///< responses dropped: unknown id, other upstream/question
  std::uint64_t table_full = 0;  ///< queries refused because max_outstanding were in flight
};

class Forwarder {
 public:
  /// `random` must outlive the forwarder (the ids come from it: use the system CSPRNG).
  Forwarder(std::vector<net::Endpoint> upstreams, ForwarderOptions options, RandomSource& random);

  /// New upstreams (a reload). Queries in flight keep waiting for the upstream they were sent to.
  void set_upstreams(std::vector<net::Endpoint> upstreams);
  const std::vector<net::Endpoint>& upstreams() const { return upstreams_; }

  /// Takes `query` from `client` (the zone said Forward). Errors, each for the caller to answer
  /// with dns::error_response: EBADMSG (no single question: FORMERR), ENETUNREACH (no
  /// upstreams: SERVFAIL), EAGAIN (table full: SERVFAIL).
  [[nodiscard]] Result<UpstreamQuery> forward(ConstBytes query, const Client& client, MonoTime now);

  /// A datagram that arrived from `from` on the upstream socket. Errors (the caller drops the
  /// datagram; `stats().mismatched` counts it): EBADMSG when it is not a DNS response with one
  /// question, ENOENT when no query with its id is outstanding, EPERM when the id is in use but
  /// the sender or the question differ. The response relayed keeps everything the upstream
  /// said but carries the client's id; over UDP it is cut (TC) to what the client accepts.
  [[nodiscard]] Result<Delivery> on_response(const net::Endpoint& from, ConstBytes response);

  struct Expired {
    std::vector<UpstreamQuery> resend;  ///< to the next upstream, under a new id
    std::vector<Delivery> failed;       ///< SERVFAIL for the client
  };
  /// Handles every entry whose deadline is at or before `now`.
  [[nodiscard]] Expired expire(MonoTime now);
  /// The earliest deadline of an outstanding query, or kNoDeadline.
  [[nodiscard]] MonoTime next_deadline() const;
  std::size_t outstanding() const { return table_.size(); }
  /// Forgets the queries of TCP connection `connection` (it closed; nobody awaits them).
  void forget_connection(std::uint64_t connection);
  const ForwarderStats& stats() const { return stats_; }

 private:
  struct Entry {
    Client client;
    std::uint16_t client_id = 0;
    Question question;
    Response query;  // as the client sent it (its id), for resends
    net::Endpoint upstream;
    std::size_t upstream_index = 0;
    std::size_t attempt = 1;
    MonoTime deadline{};
  };
  std::uint16_t fresh_id();
  // Sends `e` (already in the table under `id`) to its upstream.
  Result<UpstreamQuery> datagram_for(std::uint16_t id, const Entry& e) const;

  std::vector<net::Endpoint> upstreams_;
  ForwarderOptions options_;
  RandomSource& random_;
  std::size_t next_upstream_ = 0;  // round robin of first attempts
  std::map<std::uint16_t, Entry> table_;
  ForwarderStats stats_;
};

/// A per-address token bucket: `rate` queries a second, bursts of `burst`. At most
/// `max_addresses` are tracked; when a new address would exceed that, addresses whose bucket
/// has refilled are forgotten first, and if none has, the new address is refused (the table
/// never grows without bound). I/O-free; one thread.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst, std::size_t max_addresses = 4096);
  /// Whether `address` may send one more query at `now` (and takes a token if so).
  [[nodiscard]] bool allow(const net::IpAddress& address, MonoTime now);
  std::size_t tracked() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    MonoTime last{};
  };
  double rate_;
  double burst_;
  std::size_t max_;
  std::map<net::IpAddress, Bucket> buckets_;
};

/// The upstream resolvers named in resolv.conf text (`nameserver ADDRESS` lines, port 53), in
/// order, without duplicates and without any of `own` (the tunnel resolver's own addresses:
/// forwarding to itself would loop). Link-local IPv6 with a zone ("fe80::1%eth0") is skipped:
/// the address alone does not say which link. Other lines are ignored.
[[nodiscard]] std::vector<net::Endpoint> upstreams_from_resolv_conf(
    std::string_view text, const std::vector<net::IpAddress>& own);

}  // namespace warren::dns
