#pragma once
/// A DNS service on fixed local addresses: names of one dns::Zone answered here, every other name
/// forwarded to upstream resolvers. Two users: the server's resolver on its tunnel address(es)
/// (docs/SERVER.md, "[dns]"; server/dns_service.h builds its zone from the registry), and a mesh
/// node's responder for the mesh domain (docs/MESH.md, "Names"; client/mesh_names.h builds its
/// zone from the roster). Moved here from src/server in issue 13 so that both share it.
///
///   UDP 10.8.0.1:53 ─┐                       ┌─ names of the zone ──► answer (AA)
///   TCP 10.8.0.1:53 ─┼─ source in a tunnel ──┼─ other class / opcode ──► REFUSED / NOTIMP
///   (and the IPv6    │  prefix? rate limit   └─ other names ──► Forwarder ──► upstream socket
///    tunnel address) │  per client address                     (random id; the response must
///                    │                                          match id, question, upstream)
///                    └─ the answer goes back the way the query came (TCP: length-prefixed)
///   a TCP client's upstream answer came truncated (TC) ──► asked again over TCP on a helper
///                    thread (blocking, 2 s deadline) ──► its answer back through a Notifier
///
/// Everything runs on the server's event loop thread (the runtime's loop): the sockets are
/// watched there, and tick() (a runtime timer) expires upstream queries and idle TCP
/// connections. The one exception is the TCP retry towards an upstream (rare: an answer longer
/// than the client's EDNS size), which runs on a helper thread so that a slow upstream never
/// holds up the loop; at most kMaxTcpRetries wait, beyond that the truncated answer is relayed. The
/// DNS work itself is src/dns's (I/O-free); this file only moves bytes.
///
/// Security stance: the sockets are bound to the tunnel addresses only, never to a wildcard,
/// and a query whose source is outside the tunnel prefixes is dropped (a host on the public
/// side that routes to the tunnel address must not find an open resolver). Upstream responses
/// are accepted only from the upstream asked, with the id and question asked. Per client
/// address at most `rate` queries a second (bursts of `burst`) are served; the rest are dropped.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/random.h"
#include "base/result.h"
#include "dns/forwarder.h"
#include "dns/zone.h"
#include "net/ip_address.h"
#include "platform/clock.h"
#include "platform/datagram.h"
#include "platform/notifier.h"
#include "platform/tcp.h"

namespace warren::runtime {

/// How the service has its descriptors watched: the daemon's runtime loop
/// (Runtime::watch_readable / unwatch); `on_readable` runs on the loop's thread.
struct DnsWatcher {
  std::function<Status(int fd, std::function<void()> on_readable)> watch;
  std::function<void(int fd)> unwatch;
};

struct DnsServiceOptions {
  /// The server's tunnel addresses (one socket pair each, at most one per family: a UDP answer
  /// leaves from the socket of the client's family) and the prefixes clients are in.
  std::vector<net::IpAddress> listen;
  std::vector<net::Prefix> client_prefixes;
  std::uint16_t port = 53;
  std::vector<net::Endpoint> upstreams;
  double rate = 100;   ///< queries a second per client address
  double burst = 200;  ///< queries at once per client address
  std::size_t max_tcp_connections = 64;
  Duration tcp_idle = std::chrono::seconds(10);
  dns::ForwarderOptions forwarder;
};

struct DnsCounters {
  std::uint64_t queries = 0;       ///< queries received (UDP and TCP)
  std::uint64_t local = 0;         ///< answered from the zone (and errors formed locally)
  std::uint64_t rate_limited = 0;  ///< dropped by the per-client limit
  std::uint64_t not_client = 0;    ///< dropped: source outside the tunnel prefixes
  std::uint64_t malformed = 0;     ///< dropped: not a query at all
  std::uint64_t tcp_retries = 0;   ///< truncated answers asked for again over TCP
};

/// TCP retries towards upstreams waiting or running at once.
inline constexpr std::size_t kMaxTcpRetries = 32;

class DnsService {
 public:
  /// Opens the sockets and watches them through `watcher`. Errors name the address that failed
  /// ("cannot serve DNS on 10.8.0.1:53: bind: Address already in use"). `random` and `clock`
  /// must outlive the service.
  [[nodiscard]] static Result<std::unique_ptr<DnsService>> start(DnsWatcher watcher,
                                                                 DnsServiceOptions options,
                                                                 dns::Zone zone,
                                                                 RandomSource& random,
                                                                 const platform::Clock& clock);
  ~DnsService();
  DnsService(const DnsService&) = delete;
  DnsService& operator=(const DnsService&) = delete;

  void set_zone(dns::Zone zone) { zone_ = std::move(zone); }
  void set_upstreams(std::vector<net::Endpoint> upstreams);
  const std::vector<net::Endpoint>& upstreams() const { return forwarder_.upstreams(); }
  /// Upstream timeouts and idle TCP connections. Call every few hundred milliseconds.
  void tick();
  const DnsCounters& counters() const { return counters_; }
  const dns::ForwarderStats& forwarder_stats() const { return forwarder_.stats(); }

 private:
  struct TcpClient {
    platform::TcpConnection connection;
    net::IpAddress peer;
    std::string buffer;
    MonoTime last{};
  };

  DnsService(DnsWatcher watcher, DnsServiceOptions options, dns::Zone zone,
             RandomSource& random, const platform::Clock& clock);
  [[nodiscard]] Status open();
  void on_udp(platform::DatagramSocket& socket);
  void on_upstream(platform::DatagramSocket& socket);
  void on_accept(platform::TcpListener& listener);
  void on_tcp(std::uint64_t id);
  void close_tcp(std::uint64_t id);
  // One query from `client`; the answer (if any) goes back through reply().
  void handle(ConstBytes query, const dns::Client& client);
  void reply(const dns::Client& client, ConstBytes response);
  void send_upstream(const dns::UpstreamQuery& q);
  bool from_client(const net::IpAddress& a) const;
  // The TCP retry (see the top): queued from the loop, run by tcp_thread_, answered in retried_.
  struct TcpRetry {
    dns::Client client;
    net::Endpoint upstream;
    dns::Response query;
    dns::Response fallback;  // the truncated answer, relayed if the retry fails
  };
  void retry_over_tcp(dns::Delivery d);
  void tcp_worker();
  void on_tcp_done();

  DnsWatcher watcher_;
  DnsServiceOptions options_;
  dns::Zone zone_;
  dns::Forwarder forwarder_;
  dns::RateLimiter limiter_;
  const platform::Clock& clock_;
  std::vector<std::unique_ptr<platform::DatagramSocket>> udp_;  // per tunnel address
  std::vector<std::unique_ptr<platform::TcpListener>> tcp_;     // per tunnel address
  std::unique_ptr<platform::DatagramSocket> upstream_v4_, upstream_v6_;
  std::map<std::uint64_t, TcpClient> tcp_clients_;
  std::uint64_t next_tcp_id_ = 1;
  std::vector<int> watched_;
  DnsCounters counters_;
  RandomSource& random_;
  std::mutex retry_mutex_;
  std::condition_variable retry_cv_;
  std::deque<TcpRetry> retries_;                                // guarded by retry_mutex_
  std::vector<std::pair<dns::Client, dns::Response>> retried_;  // guarded by retry_mutex_
  std::size_t retries_in_flight_ = 0;                           // guarded by retry_mutex_
  bool stopping_ = false;                                       // guarded by retry_mutex_
  platform::Notifier retry_done_;
  std::thread tcp_thread_;  // last: started when everything it uses exists
};

}  // namespace warren::runtime
