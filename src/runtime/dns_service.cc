// A DNS service on local addresses: sockets and the event loop around src/dns (see dns_service.h).

#include "runtime/dns_service.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>

#include "platform/log.h"

namespace warren::runtime {
namespace {

// The largest UDP query worth reading (EDNS lets a client say more, but a query is a question).
constexpr std::size_t kMaxUdpQuery = 4096;
// An upstream's UDP answer is at most what we advertise... or what the client's EDNS allowed,
// which the query carries unchanged: up to 64 KiB in theory.
constexpr std::size_t kMaxUpstreamDatagram = 65535;

}  // namespace

DnsService::DnsService(DnsWatcher watcher, DnsServiceOptions options, dns::Zone zone,
                       RandomSource& random, const platform::Clock& clock)
    : watcher_(std::move(watcher)),
      options_(std::move(options)),
      zone_(std::move(zone)),
      forwarder_(options_.upstreams, options_.forwarder, random),
      limiter_(options_.rate, options_.burst),
      clock_(clock),
      random_(random) {}

Result<std::unique_ptr<DnsService>> DnsService::start(DnsWatcher watcher,
                                                      DnsServiceOptions options, dns::Zone zone,
                                                      RandomSource& random,
                                                      const platform::Clock& clock) {
  std::unique_ptr<DnsService> s(
      new DnsService(std::move(watcher), std::move(options), std::move(zone), random, clock));
  if (auto st = s->open(); !st)
    return st.error();
  return s;
}

Status DnsService::open() {
  for (const auto& a : options_.listen) {
    const net::Endpoint at{a, options_.port};
    auto u = platform::open_datagram_socket(at);
    if (!u)
      return u.error().with_context("cannot serve DNS on " + at.to_string() + " (UDP)");
    auto t = platform::tcp_listen(at.to_string());
    if (!t)
      return t.error().with_context("cannot serve DNS on " + at.to_string() + " (TCP)");
    platform::DatagramSocket* us = u->get();
    if (auto st = watcher_.watch(us->poll_fd(), [this, us] { on_udp(*us); });
        !st)
      return st;
    watched_.push_back(us->poll_fd());
    platform::TcpListener* ls = t->get();
    if (auto st = watcher_.watch(ls->native_handle(), [this, ls] { on_accept(*ls); });
        !st)
      return st;
    watched_.push_back(ls->native_handle());
    udp_.push_back(std::move(*u));
    tcp_.push_back(std::move(*t));
  }
  if (auto st = watcher_.watch(retry_done_.fd(), [this] { on_tcp_done(); });
      !st)
    return st;
  watched_.push_back(retry_done_.fd());
  tcp_thread_ = std::thread([this] { tcp_worker(); });
  // Towards the upstreams: one socket per family on a port the kernel picks at random.
  for (bool v6 : {false, true}) {
    const net::Endpoint any{v6 ? *net::IpAddress::parse("::") : net::IpAddress{}, 0};
    auto u = platform::open_datagram_socket(any);
    if (!u) {
      // A host without IPv6 has no IPv6 upstream either.
      platform::log_verbose("DNS: no %s socket for upstream queries: %s", v6 ? "IPv6" : "IPv4",
                            u.message().c_str());
      continue;
    }
    platform::DatagramSocket* us = u->get();
    if (auto st = watcher_.watch(us->poll_fd(), [this, us] { on_upstream(*us); });
        !st)
      return st;
    watched_.push_back(us->poll_fd());
    (v6 ? upstream_v6_ : upstream_v4_) = std::move(*u);
  }
  return ok();
}

DnsService::~DnsService() {
  if (tcp_thread_.joinable()) {
    {
      std::lock_guard lock(retry_mutex_);
      stopping_ = true;
    }
    retry_cv_.notify_all();
    tcp_thread_.join();  // a retry in progress ends at its deadline (2 s)
  }
  for (const auto& [id, c] : tcp_clients_)
    watcher_.unwatch(c.connection.native_handle());
  for (int fd : watched_)
    watcher_.unwatch(fd);
}

void DnsService::set_upstreams(std::vector<net::Endpoint> upstreams) {
  forwarder_.set_upstreams(std::move(upstreams));
}

bool DnsService::from_client(const net::IpAddress& a) const {
  return std::any_of(options_.client_prefixes.begin(), options_.client_prefixes.end(),
                     [&](const net::Prefix& p) { return p.contains(a); });
}

void DnsService::on_udp(platform::DatagramSocket& socket) {
  std::array<std::uint8_t, kMaxUdpQuery> buf{};
  // A bounded batch per wake-up, so that a flood on one socket cannot starve the loop.
  for (int i = 0; i < 64; ++i) {
    auto r = socket.receive(buf);
    if (!r)
      return;  // EAGAIN (or an ICMP error of an earlier answer): nothing more now
    if (r->truncated) {
      ++counters_.malformed;
      continue;
    }
    handle(ConstBytes(buf.data(), r->size), dns::Client{r->from, 0, dns::Transport::kUdp});
  }
}

void DnsService::handle(ConstBytes query, const dns::Client& client) {
  ++counters_.queries;
  const net::IpAddress& from = client.endpoint.address;
  if (!from_client(from)) {
    ++counters_.not_client;
    return;
  }
  const MonoTime now = clock_.now().mono;
  if (!limiter_.allow(from, now)) {
    ++counters_.rate_limited;
    return;
  }
  auto a = zone_.answer(query, client.transport);
  if (!a) {
    ++counters_.malformed;
    return;
  }
  if (auto* r = std::get_if<dns::Response>(&*a)) {
    ++counters_.local;
    reply(client, *r);
    return;
  }
  // Outside the zone. Only class IN goes upstream: other classes (CH version.bind, HS) would
  // only tell the asker about the upstream.
  auto q = dns::parse_question(query);
  if (!q) {
    ++counters_.malformed;
    return;
  }
  if (q->klass != 1 /* IN */) {
    if (auto r = dns::error_response(query, dns::Rcode::kRefused)) {
      ++counters_.local;
      reply(client, *r);
    }
    return;
  }
  auto up = forwarder_.forward(query, client, now);
  if (!up) {
    const dns::Rcode rcode = up.code() == EBADMSG ? dns::Rcode::kFormErr : dns::Rcode::kServFail;
    if (up.code() != EBADMSG)
      platform::log_verbose("DNS: cannot forward a query from %s: %s", from.to_string().c_str(),
                            up.message().c_str());
    if (auto r = dns::error_response(query, rcode))
      reply(client, *r);
    return;
  }
  send_upstream(*up);
}

void DnsService::send_upstream(const dns::UpstreamQuery& q) {
  platform::DatagramSocket* s =
      q.upstream.address.is_v4() ? upstream_v4_.get() : upstream_v6_.get();
  if (!s)
    return;  // no socket of that family: the query times out and the next upstream is tried
  if (auto st = s->send(q.datagram, q.upstream); !st)
    platform::log_verbose("DNS: cannot send to upstream %s: %s", q.upstream.to_string().c_str(),
                          st.message().c_str());
}

void DnsService::on_upstream(platform::DatagramSocket& socket) {
  std::vector<std::uint8_t> buf(kMaxUpstreamDatagram);
  for (int i = 0; i < 64; ++i) {
    auto r = socket.receive(buf);
    if (!r)
      return;
    auto d = forwarder_.on_response(r->from, ConstBytes(buf.data(), r->size));
    if (!d) {
      // Late answers after a retry land here too; only the verbose log hears of them.
      platform::log_verbose("DNS: dropped a datagram from %s: %s", r->from.to_string().c_str(),
                            d.message().c_str());
      continue;
    }
    if (d->client.transport == dns::Transport::kTcp && dns::truncated(d->response)) {
      retry_over_tcp(std::move(*d));
      continue;
    }
    reply(d->client, d->response);
  }
}

void DnsService::retry_over_tcp(dns::Delivery d) {
  {
    std::lock_guard lock(retry_mutex_);
    if (retries_in_flight_ < kMaxTcpRetries) {
      ++retries_in_flight_;
      retries_.push_back({d.client, d.upstream, std::move(d.query), std::move(d.response)});
      ++counters_.tcp_retries;
      retry_cv_.notify_one();
      return;
    }
  }
  reply(d.client, d.response);  // too many waiting: the client gets what there is
}

namespace {

// One query over TCP (RFC 7766) to `upstream` under a fresh id; the answer with `query`'s id
// back, if it is a response to the same question. Blocking, bounded by `deadline`.
Result<dns::Response> ask_over_tcp(const net::Endpoint& upstream, const dns::Response& query,
                                   RandomSource& random,
                                   std::chrono::steady_clock::time_point deadline) {
  auto asked = dns::parse_question(query);
  if (!asked)
    return asked.error();
  std::array<std::uint8_t, 2> id_bytes{};
  random.fill(id_bytes);
  const auto id = static_cast<std::uint16_t>(id_bytes[0] << 8 | id_bytes[1]);
  auto out = dns::with_id(query, id);
  if (!out)
    return out.error();
  auto c = platform::tcp_connect(upstream.address.to_string(), upstream.port, deadline);
  if (!c)
    return c.error();
  std::string framed;
  framed += static_cast<char>(out->size() >> 8);
  framed += static_cast<char>(out->size() & 0xFF);
  framed.append(reinterpret_cast<const char*>(out->data()), out->size());
  if (auto s = c->write_all(framed, deadline); !s)
    return s.error();
  std::string in;
  std::array<char, 4096> buf{};
  std::size_t want = 2;
  while (in.size() < want) {
    auto n = c->read_some(buf, deadline);
    if (!n)
      return n.error();
    if (*n == 0)
      return Error(ECONNRESET, "the upstream closed the connection");
    in.append(buf.data(), *n);
    if (want == 2 && in.size() >= 2)
      want = 2 + (static_cast<std::size_t>(static_cast<std::uint8_t>(in[0])) << 8 |
                  static_cast<std::uint8_t>(in[1]));
  }
  const ConstBytes answer(reinterpret_cast<const std::uint8_t*>(in.data()) + 2, want - 2);
  auto got = dns::parse_question(answer);
  if (!got)
    return got.error();
  if ((answer[2] & 0x80u) == 0 || got->id != id || got->name != asked->name ||
      got->type != asked->type || got->klass != asked->klass)
    return Error(EPERM, "the upstream's TCP answer does not match the question");
  return dns::with_id(answer, asked->id);
}

}  // namespace

void DnsService::tcp_worker() {
  for (;;) {
    TcpRetry job;
    {
      std::unique_lock lock(retry_mutex_);
      retry_cv_.wait(lock, [&] { return stopping_ || !retries_.empty(); });
      if (stopping_)
        return;
      job = std::move(retries_.front());
      retries_.pop_front();
    }
    auto r = ask_over_tcp(job.upstream, job.query, random_,
                          std::chrono::steady_clock::now() + std::chrono::seconds(2));
    if (!r)
      platform::log_verbose("DNS: TCP retry to %s failed: %s", job.upstream.to_string().c_str(),
                            r.message().c_str());
    {
      std::lock_guard lock(retry_mutex_);
      retried_.emplace_back(job.client, r ? std::move(*r) : std::move(job.fallback));
    }
    retry_done_.set();
  }
}

void DnsService::on_tcp_done() {
  retry_done_.clear();
  std::vector<std::pair<dns::Client, dns::Response>> done;
  {
    std::lock_guard lock(retry_mutex_);
    done.swap(retried_);
    retries_in_flight_ -= done.size();
  }
  for (const auto& [client, response] : done)
    reply(client, response);
}

void DnsService::reply(const dns::Client& client, ConstBytes response) {
  if (client.transport == dns::Transport::kUdp) {
    for (auto& s : udp_) {
      if (s->local().address.is_v4() == client.endpoint.address.is_v4()) {
        (void)s->send(response, client.endpoint);  // a full buffer: the client asks again
        return;
      }
    }
    return;
  }
  auto it = tcp_clients_.find(client.connection);
  if (it == tcp_clients_.end())
    return;  // closed meanwhile
  std::string framed;
  framed.reserve(response.size() + 2);
  framed += static_cast<char>(response.size() >> 8);
  framed += static_cast<char>(response.size() & 0xFF);
  framed.append(reinterpret_cast<const char*>(response.data()), response.size());
  // Answers are small and the socket buffer empty: this does not wait in practice. A client
  // that does not read gets cut off after a short while instead of holding up the loop.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  if (!it->second.connection.write_all(framed, deadline))
    close_tcp(client.connection);
}

void DnsService::on_accept(platform::TcpListener& listener) {
  for (int i = 0; i < 16; ++i) {
    auto a = listener.try_accept();
    if (!a)
      return;
    if (!from_client(a->peer)) {
      ++counters_.not_client;
      continue;  // closed as it goes out of scope
    }
    if (tcp_clients_.size() >= options_.max_tcp_connections)
      continue;  // refused by closing; the client retries
    const std::uint64_t id = next_tcp_id_++;
    const int fd = a->connection.native_handle();
    TcpClient c{std::move(a->connection), a->peer, {}, clock_.now().mono};
    auto [it, inserted] = tcp_clients_.emplace(id, std::move(c));
    if (!watcher_.watch(fd, [this, id] { on_tcp(id); }))
      tcp_clients_.erase(it);
  }
}

void DnsService::on_tcp(std::uint64_t id) {
  auto it = tcp_clients_.find(id);
  if (it == tcp_clients_.end())
    return;
  TcpClient& c = it->second;
  std::array<char, 4096> buf{};
  auto n = c.connection.read_some(buf, std::chrono::steady_clock::now());
  if (!n && n.error().would_block())
    return;
  if (!n || *n == 0) {
    close_tcp(id);
    return;
  }
  c.buffer.append(buf.data(), *n);
  c.last = clock_.now().mono;
  // Every complete length-prefixed message in the buffer (RFC 7766: several may be pipelined).
  while (c.buffer.size() >= 2) {
    const std::size_t len =
        static_cast<std::uint8_t>(c.buffer[0]) << 8 | static_cast<std::uint8_t>(c.buffer[1]);
    if (c.buffer.size() < 2 + len)
      break;
    const std::vector<std::uint8_t> msg(c.buffer.begin() + 2, c.buffer.begin() + 2 + len);
    c.buffer.erase(0, 2 + len);
    handle(msg, dns::Client{net::Endpoint{c.peer, 0}, id, dns::Transport::kTcp});
    if (!tcp_clients_.contains(id))
      return;  // handle() closed it (a failed write)
  }
}

void DnsService::close_tcp(std::uint64_t id) {
  auto it = tcp_clients_.find(id);
  if (it == tcp_clients_.end())
    return;
  watcher_.unwatch(it->second.connection.native_handle());
  tcp_clients_.erase(it);
  forwarder_.forget_connection(id);
}

void DnsService::tick() {
  const MonoTime now = clock_.now().mono;
  auto e = forwarder_.expire(now);
  for (const auto& q : e.resend)
    send_upstream(q);
  for (const auto& f : e.failed)
    reply(f.client, f.response);
  std::vector<std::uint64_t> idle;
  for (const auto& [id, c] : tcp_clients_)
    if (now - c.last >= options_.tcp_idle)
      idle.push_back(id);
  for (auto id : idle)
    close_tcp(id);
}

}  // namespace warren::runtime
