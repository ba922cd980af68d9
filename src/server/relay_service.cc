// The relay over TCP/TLS (see relay_service.h).
//
// A connection's life (loop thread):
//   accept ─► kHandshake ─► kOpen (read frames, write the switchboard's output) ─► close
//   A refusal marks it closing in the switchboard: its output (the error frame) is written,
//   then close_notify and close; at close_linger at the latest.

#include "server/relay_service.h"

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "crypto/random.h"
#include "net/source_limiter.h"
#include "platform/batch.h"
#include "platform/event_loop.h"
#include "platform/tcp.h"
#include "platform/udp.h"

namespace warren::server {

using control::ControlError;
using control::SteadyClock;
using control::TlsServerSession;
namespace relay = mesh::relay;

namespace {

MonoTime mono_now() {
  return MonoTime{
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

constexpr std::size_t kReadChunk = 16 * 1024;
// Bytes read from one connection per readiness event, so one busy node cannot starve others.
constexpr std::size_t kReadBudget = 256 * 1024;
// UDP: ids of UDP sources have this bit (TCP connections count up from 1).
constexpr relay::ConnId kUdpBit = relay::ConnId{1} << 62;
constexpr std::size_t kUdpBatch = 16;
// A UDP source silent this long is forgotten (nodes send keepalives more often).
constexpr auto kUdpIdle = std::chrono::seconds(60);

// A UDP source's address and port as the bytes its cookie is computed over.
std::vector<std::uint8_t> source_bytes(const net::Endpoint& e) {
  std::vector<std::uint8_t> b(e.address.data(), e.address.data() + e.address.size());
  b.push_back(static_cast<std::uint8_t>(e.port >> 8));
  b.push_back(static_cast<std::uint8_t>(e.port));
  return b;
}

}  // namespace

struct RelayService::Impl {
  using Io = TlsServerSession::Io;

  struct Conn {
    relay::ConnId id = 0;
    net::IpAddress source;
    std::unique_ptr<TlsServerSession> tls;
    bool handshaken = false;
    SteadyClock::time_point hello_deadline;
    std::optional<SteadyClock::time_point> close_deadline;
    relay::StreamReader reader;
    std::string in;
    std::size_t out_offset = 0;  // into the switchboard's first queued frame
    std::uint32_t watching = platform::kReadable;
  };

  Impl(control::TlsIdentity id, std::string_view listen, Authorizer authorized,
       RelayServiceOptions o)
      : identity(std::move(id)),
        options(o),
        board(o.switchboard, std::move(authorized), crypto::SystemRandom::instance()),
        cookies(crypto::SystemRandom::instance()) {
    platform::ignore_sigpipe();
    auto l = platform::tcp_listen(listen);
    if (!l)
      throw ControlError("cannot listen on " + std::string(listen) +
                         " (mesh.relay_port): " + l.message());
    listener = std::move(*l);
    if (o.udp) {
      udp_binds = platform::make_system_bind_factory();
      platform::BindOptions b;
      b.port = listener->port();
      b.reuse_port = false;
      b.buffer_bytes = 1 << 20;
      b.gso = false;
      b.gro = false;
      auto u = udp_binds->open(b);
      if (!u.ok())
        throw ControlError("cannot open the relay's UDP port " + std::to_string(b.port) + ": " +
                           u.message());
      udp = std::move(*u);
      udp_memory.resize(kUdpBatch * relay::kMaxFrameSize);
      for (std::size_t i = 0; i < kUdpBatch; ++i)
        udp_views[i] = Bytes(udp_memory.data() + i * relay::kMaxFrameSize, relay::kMaxFrameSize);
    }
  }

  control::TlsIdentity identity;
  RelayServiceOptions options;
  std::unique_ptr<platform::TcpListener> listener;
  std::unique_ptr<platform::EventLoop> loop;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> revalidate_due{false};

  // Loop thread only.
  relay::Switchboard board;
  relay::StatelessChallenger cookies;  // UDP: no state per source before a key is proven
  std::uint64_t udp_challenges = 0, udp_auth_refused = 0;
  std::map<relay::ConnId, std::unique_ptr<Conn>> conns;
  net::SourceLimiter per_source{options.max_connections_per_source};
  relay::ConnId next_id = 1;
  std::uint64_t refused = 0, hello_timeouts = 0;
  std::optional<SteadyClock::time_point> listener_paused_until;

  // UDP (loop thread only): the same frames, one per datagram, on the relay's port number.
  struct UdpPeer {
    net::Path path;
    net::IpAddress source;
    SteadyClock::time_point last;
  };
  std::unique_ptr<platform::BindFactory> udp_binds;
  std::unique_ptr<platform::UdpBind> udp;
  std::map<net::Endpoint, relay::ConnId> udp_ids;
  std::map<relay::ConnId, UdpPeer> udp_peers;
  std::vector<std::uint8_t> udp_memory;
  std::array<Bytes, kUdpBatch> udp_views{};
  std::array<std::size_t, kUdpBatch> udp_sizes{};
  std::array<net::Path, kUdpBatch> udp_paths{};

  mutable std::mutex published_mutex;
  RelayCounters published;  // guarded by published_mutex

  void start() {
    auto l = platform::make_event_loop();
    if (!l.ok())
      throw ControlError("cannot create the relay's event loop: " + l.message());
    loop = std::move(*l);
    if (auto s = loop->add(listener->native_handle(), platform::kReadable,
                           [this](std::uint32_t) { on_listener(); });
        !s.ok())
      throw ControlError("cannot watch the relay socket: " + s.message());
    for (std::size_t i = 0; udp && i < udp->socket_count(); ++i)
      if (auto st = loop->add(udp->poll_fd(i), platform::kReadable,
                              [this, i](std::uint32_t) { on_udp(i); });
          !st.ok())
        throw ControlError("cannot watch the relay's UDP socket: " + st.message());
    loop->set_wake_handler([] {});
    thread = std::thread([this] { run(); });
  }

  void stop() {
    stopping = true;
    if (loop)
      loop->wake();
    if (thread.joinable())
      thread.join();
  }

  void run() {
    while (!stopping) {
      (void)loop->run_once(timeout());
      if (revalidate_due.exchange(false))
        board.revalidate();
      board.expire(mono_now());
      expire(SteadyClock::now());
      flush_ready();
      publish();
    }
    while (!conns.empty())
      close(conns.begin()->first);
    while (!udp_peers.empty())
      udp_forget(udp_peers.begin()->first);
    for (std::size_t i = 0; udp && i < udp->socket_count(); ++i)
      (void)loop->remove(udp->poll_fd(i));
    (void)loop->remove(listener->native_handle());
    publish();
  }

  Duration timeout() const {
    auto next = SteadyClock::now() + std::chrono::seconds(1);
    if (listener_paused_until)
      next = std::min(next, *listener_paused_until);
    for (const auto& [id, c] : conns) {
      if (!c->handshaken && !c->tls->client_hello_received())
        next = std::min(next, c->hello_deadline);
      if (c->close_deadline)
        next = std::min(next, *c->close_deadline);
    }
    Duration d = std::chrono::duration_cast<Duration>(next - SteadyClock::now());
    const MonoTime auth = board.next_deadline();
    if (auth != kNoDeadline)
      d = std::min(d, auth - mono_now());
    return std::max(Duration::zero(), d);
  }

  void expire(SteadyClock::time_point now) {
    if (listener_paused_until && now >= *listener_paused_until) {
      listener_paused_until.reset();
      (void)loop->modify(listener->native_handle(), platform::kReadable);
    }
    std::vector<relay::ConnId> late;
    for (const auto& [id, c] : conns) {
      if (!c->handshaken && !c->tls->client_hello_received() && now >= c->hello_deadline) {
        ++hello_timeouts;
        late.push_back(id);
      } else if (c->close_deadline && now >= *c->close_deadline) {
        late.push_back(id);
      }
    }
    for (auto id : late)
      close(id);
    std::vector<relay::ConnId> idle;
    for (const auto& [id, p] : udp_peers)
      if (now - p.last >= kUdpIdle)
        idle.push_back(id);
    for (auto id : idle)
      udp_forget(id);
  }

  void udp_forget(relay::ConnId id) {
    auto it = udp_peers.find(id);
    if (it == udp_peers.end())
      return;
    per_source.remove(it->second.source);
    udp_ids.erase(it->second.path.remote);
    udp_peers.erase(it);
    board.close(id);
  }

  /// A batch of datagrams: each one frame. Garbage and unknown sources that do not say hello
  /// get no answer at all (nothing to reflect at a forged source address).
  void on_udp(std::size_t socket) {
    platform::BatchResult r = udp->receive(socket, udp_views, udp_sizes, udp_paths);
    const MonoTime now = mono_now();
    const auto steady = SteadyClock::now();
    for (std::size_t i = 0; i < r.count; ++i) {
      if (udp_sizes[i] == 0)
        continue;
      auto f = relay::decode_frame(udp_views[i].first(udp_sizes[i]));
      if (!f)
        continue;
      const net::Endpoint& from = udp_paths[i].remote;
      auto known = udp_ids.find(from);
      if (relay::is_udp_hello(*f)) {
        // Stateless: the challenge (68 bytes, the hello's size) is computed from the source
        // and the epoch's secret; nothing is kept, so forged sources cost one hash each and
        // hold nothing. A known source asking again (it lost its auth ok, or restarted) gets
        // the same answer.
        const auto challenge = cookies.challenge(source_bytes(from), now);
        platform::OutDatagram out{ConstBytes(challenge), udp_paths[i], false};
        (void)udp->send(std::span(&out, 1));
        ++udp_challenges;
        continue;
      }
      if (f->type == relay::FrameType::kUdpAuth) {
        auto key = cookies.verify(source_bytes(from), *f, now);
        if (!key) {
          ++udp_auth_refused;  // no answer: the source may be forged
          continue;
        }
        if (known != udp_ids.end()) {
          if (board.node(known->second) == *key) {
            // The same node again (our auth ok was lost): say it once more.
            const auto ok = relay::encode_simple(relay::FrameType::kAuthOk);
            platform::OutDatagram out{ConstBytes(ok), udp_paths[i], false};
            (void)udp->send(std::span(&out, 1));
            udp_peers[known->second].last = steady;
            continue;
          }
          udp_forget(known->second);
        }
        const net::IpAddress key_src = net::SourceLimiter::key(from.address);
        if (conns.size() + udp_peers.size() >= options.max_connections ||
            per_source.full(key_src)) {
          ++refused;
          continue;
        }
        const relay::ConnId id = kUdpBit | next_id++;
        udp_ids[from] = id;
        udp_peers[id] = UdpPeer{udp_paths[i], key_src, steady};
        per_source.add(key_src);
        board.open_proven(id, *key, now);
        continue;
      }
      if (known == udp_ids.end())
        continue;
      udp_peers[known->second].last = steady;
      board.frame(known->second, *f, now);
    }
  }

  /// Sends what the switchboard queued for a UDP source, then forgets it if it is closing.
  void udp_flush(relay::ConnId id) {
    auto it = udp_peers.find(id);
    auto* out = board.output(id);
    if (it == udp_peers.end() || !out)
      return;
    std::vector<platform::OutDatagram> batch;
    for (const auto& q : *out)
      batch.push_back(platform::OutDatagram{ConstBytes(q), it->second.path, false});
    if (!batch.empty())
      (void)udp->send(batch);  // what the kernel does not take is lost, as UDP may
    for (const auto& q : *out)
      board.written(id, q.size());
    out->clear();
    if (board.closing(id))
      udp_forget(id);
  }

  void publish() {
    RelayCounters r;
    r.connections = conns.size() + udp_peers.size();
    r.nodes = board.authenticated();
    r.switchboard = board.counters();
    r.refused_connections = refused;
    r.hello_timeouts = hello_timeouts;
    r.udp_challenges = udp_challenges;
    r.udp_auth_refused = udp_auth_refused;
    std::lock_guard lock(published_mutex);
    published = r;
  }

  void on_listener() {
    for (int i = 0; i < 256; ++i) {
      auto a = listener->try_accept();
      if (!a.ok()) {
        if (a.code() == EAGAIN)
          return;
        if (a.code() == ECONNABORTED || a.code() == EINTR || a.code() == EPROTO)
          continue;
        // Out of descriptors or memory: stop accepting for a moment instead of spinning.
        listener_paused_until = SteadyClock::now() + std::chrono::milliseconds(100);
        (void)loop->modify(listener->native_handle(), 0);
        return;
      }
      admit(std::move(*a));
    }
  }

  void admit(platform::AcceptedTcp a) {
    const net::IpAddress key = net::SourceLimiter::key(a.peer);
    if (stopping || conns.size() >= options.max_connections || per_source.full(key)) {
      ++refused;
      return;  // closed at once
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id++;
    c->source = key;
    try {
      c->tls = std::make_unique<TlsServerSession>(identity, std::move(a.connection));
    } catch (const ControlError&) {
      return;
    }
    c->hello_deadline = SteadyClock::now() + options.client_hello_timeout;
    const relay::ConnId id = c->id;
    if (!loop->add(c->tls->native_handle(), platform::kReadable,
                   [this, id](std::uint32_t events) { on_event(id, events); })
             .ok())
      return;
    per_source.add(key);
    conns.emplace(id, std::move(c));
    board.open(id, mono_now());  // the challenge waits in the queue until the handshake is done
  }

  void close(relay::ConnId id) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    (void)loop->remove(it->second->tls->native_handle());
    per_source.remove(it->second->source);
    conns.erase(it);
    board.close(id);
  }

  void watch(Conn& c, std::uint32_t events) {
    if (c.watching != events && loop->modify(c.tls->native_handle(), events).ok())
      c.watching = events;
  }

  void on_event(relay::ConnId id, std::uint32_t events) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    Conn& c = *it->second;
    if (!c.handshaken) {
      const Io io = c.tls->handshake();
      if (io == Io::kWantRead || io == Io::kWantWrite) {
        watch(c, io == Io::kWantRead ? platform::kReadable : platform::kWritable);
        return;
      }
      if (io != Io::kDone) {
        close(id);
        return;
      }
      c.handshaken = true;
    }
    if (!write(c)) {
      close(id);
      return;
    }
    if ((events & (platform::kReadable | platform::kHangup)) && !read(c)) {
      close(id);
      return;
    }
    if (!write(c))
      close(id);
  }

  /// Reads what is there and hands the frames to the switchboard; false to close.
  bool read(Conn& c) {
    std::size_t budget = kReadBudget;
    while (budget > 0 && !board.closing(c.id)) {
      c.in.clear();
      const Io io = c.tls->read_to(c.in, kReadChunk);
      budget -= std::min(budget, c.in.size());
      ConstBytes bytes(reinterpret_cast<const std::uint8_t*>(c.in.data()), c.in.size());
      const MonoTime now = mono_now();
      for (;;) {
        auto f = c.reader.next(bytes);
        if (!f) {
          board.protocol_error(c.id, f.message());
          return true;  // the error frame is written, then the connection closed
        }
        if (!*f)
          break;
        board.frame(c.id, **f, now);
      }
      if (io == Io::kWantRead || io == Io::kWantWrite)
        return true;
      if (io != Io::kDone)
        return false;  // closed or failed
    }
    return true;
  }

  /// Writes the switchboard's output for `c` as far as the socket takes it; false to close.
  bool write(Conn& c) {
    if (!c.handshaken)
      return true;
    auto* out = board.output(c.id);
    if (!out)
      return false;
    while (!out->empty()) {
      const auto& front = out->front();
      std::string_view data(reinterpret_cast<const char*>(front.data()), front.size());
      const Io io = c.tls->write_from(data, c.out_offset);
      if (io == Io::kWantWrite || io == Io::kWantRead) {
        watch(c, platform::kReadable | platform::kWritable);
        return true;
      }
      if (io != Io::kDone)
        return false;
      board.written(c.id, front.size());
      c.out_offset = 0;
      out->pop_front();
    }
    if (board.closing(c.id)) {
      c.tls->send_close_notify();
      return false;
    }
    watch(c, platform::kReadable);
    return true;
  }

  /// Writes to every connection the switchboard queued something for (forwarded frames).
  void flush_ready() {
    for (relay::ConnId id : board.take_ready()) {
      if (id & kUdpBit) {
        udp_flush(id);
        continue;
      }
      auto it = conns.find(id);
      if (it == conns.end())
        continue;
      Conn& c = *it->second;
      if (board.closing(id) && !c.close_deadline)
        c.close_deadline = SteadyClock::now() + options.close_linger;
      if (!write(c))
        close(id);
    }
  }
};

RelayService::RelayService(control::TlsIdentity identity, std::string_view listen,
                           Authorizer authorized, RelayServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(identity), listen, std::move(authorized), options)) {}

RelayService::~RelayService() {
  stop();
}

void RelayService::start() {
  impl_->start();
}

void RelayService::stop() {
  impl_->stop();
}

std::uint16_t RelayService::port() const {
  return impl_->listener->port();
}

void RelayService::revalidate() {
  impl_->revalidate_due = true;
  if (impl_->loop)
    impl_->loop->wake();
}

RelayCounters RelayService::counters() const {
  std::lock_guard lock(impl_->published_mutex);
  return impl_->published;
}

}  // namespace warren::server
