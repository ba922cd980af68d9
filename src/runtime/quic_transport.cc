// QuicTransport: WireGuard messages inside QUIC DATAGRAM frames (the pipeline is drawn in the
// header). The QUIC thread owns every ngtcp2/GnuTLS object; workers only touch the queues.

#include "runtime/quic_transport.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <unordered_map>

#include "control/quic_auth.h"
#include "platform/event_loop.h"
#include "platform/log.h"
#include "platform/resolve.h"

namespace warren::runtime {

namespace {

using SteadyClock = std::chrono::steady_clock;

MonoTime mono_now() {
  return MonoTime{std::chrono::duration_cast<Duration>(SteadyClock::now().time_since_epoch())};
}

// Application error codes in CONNECTION_CLOSE (the reason text says the rest).
constexpr std::uint64_t kCloseNormal = 0;
constexpr std::uint64_t kCloseRefused = 1;   // the hello was refused (the reason is the code)
constexpr std::uint64_t kCloseProtocol = 2;  // a malformed frame or message
constexpr std::uint64_t kCloseReplaced = 3;  // the same key connected again

constexpr std::size_t kBatch = 64;
constexpr std::size_t kReceiveSlot = 2048;  // > kMaxUdpPayload: GRO segments fit

// Packets written by connections, sent in one UdpBind::send (GSO takes equal-sized runs).
class OutBatch {
 public:
  explicit OutBatch(platform::UdpBind& bind)
      : bind_(bind), memory_(kBatch * quic::kMaxUdpPayload) {}
  Bytes next() {
    if (count_ == kBatch)
      flush();
    return Bytes(memory_.data() + count_ * quic::kMaxUdpPayload, quic::kMaxUdpPayload);
  }
  void push(std::size_t bytes, const net::Path& path) {
    out_[count_] = platform::OutDatagram{
        ConstBytes(memory_.data() + count_ * quic::kMaxUdpPayload, bytes), path, false};
    ++count_;
  }
  void flush() {
    if (count_ == 0)
      return;
    (void)bind_.send(std::span<platform::OutDatagram>(out_.data(), count_));
    count_ = 0;
  }

 private:
  platform::UdpBind& bind_;
  std::vector<std::uint8_t> memory_;
  std::array<platform::OutDatagram, kBatch> out_{};
  std::size_t count_ = 0;
};

// Writes everything `conn` has to send (handshake, ACKs, stream, close) into `out`.
void drain(quic::Connection& conn, OutBatch& out, const net::Path& via, MonoTime now) {
  for (int guard = 0; guard < 4096; ++guard) {
    Bytes buf = out.next();
    quic::Packet p = conn.write(now, buf);
    if (p.bytes == 0)
      return;
    net::Path path = via;
    path.remote = p.to;
    out.push(p.bytes, path);
  }
}

// Receives one batch from `socket` of `bind` and hands each datagram to `fn(bytes, path)`.
template <typename Fn>
bool receive_batch(platform::UdpBind& bind, std::size_t socket, std::vector<std::uint8_t>& memory,
                   Fn&& fn) {
  std::array<Bytes, kBatch> bufs;
  std::array<std::size_t, kBatch> sizes{};
  std::array<net::Path, kBatch> paths{};
  for (std::size_t i = 0; i < kBatch; ++i)
    bufs[i] = Bytes(memory.data() + i * kReceiveSlot, kReceiveSlot);
  platform::BatchResult r = bind.receive(socket, bufs, sizes, paths);
  for (std::size_t i = 0; i < r.count; ++i) {
    if (sizes[i] != 0)
      fn(ConstBytes(bufs[i].data(), sizes[i]), paths[i]);
  }
  return r.count == kBatch;
}

std::string key_prefix(const crypto::PublicKey& k) {
  return k.to_base64().substr(0, 8);
}

}  // namespace

// ---- common ----

Duration QuicTransport::next_backoff(Duration current, Duration cap) {
  if (current < std::chrono::seconds(1))
    return std::chrono::seconds(1);
  return std::min(current * 2, cap);
}

Result<std::unique_ptr<QuicTransport>> QuicTransport::server(QuicServerConfig config,
                                                             KeySource keys,
                                                             platform::BindFactory& binds) {
  if (!config.identity || !config.authorize)
    return Error(EINVAL, "QUIC server: identity and authorize are required");
  platform::BindOptions o;
  o.port = config.port;
  o.gso = true;
  o.gro = true;
  auto bind = binds.open(o);
  if (!bind.ok())
    return Error(bind.code(), "QUIC: cannot bind UDP port " + std::to_string(config.port) + ": " +
                                  bind.message());
  std::unique_ptr<QuicTransport> t(new QuicTransport());
  t->is_server_ = true;
  t->bind_ = std::move(*bind);
  t->port_ = t->bind_->port();
  t->server_config_ = std::move(config);
  t->keys_ = std::move(keys);
  t->binds_ = &binds;
  t->connected_ = true;
  t->thread_ = std::thread([p = t.get()] { p->run_server(); });
  return t;
}

Result<std::unique_ptr<QuicTransport>> QuicTransport::client(QuicClientConfig config,
                                                             KeySource keys,
                                                             platform::BindFactory& binds) {
  if (!net::split_host_port(config.endpoint))
    return Error(EINVAL, "QUIC endpoint \"" + config.endpoint + "\" is not host:port");
  platform::BindOptions o;
  o.port = 0;
  o.gso = true;
  o.gro = true;
  auto bind = binds.open(o);
  if (!bind.ok())
    return Error(bind.code(), "QUIC: cannot open a UDP socket: " + bind.message());
  std::unique_ptr<QuicTransport> t(new QuicTransport());
  t->bind_ = std::move(*bind);
  t->port_ = t->bind_->port();
  t->client_config_ = std::move(config);
  t->keys_ = std::move(keys);
  t->binds_ = &binds;
  t->thread_ = std::thread([p = t.get()] { p->run_client(); });
  return t;
}

QuicTransport::~QuicTransport() {
  stop();
}

void QuicTransport::stop() {
  if (stopping_.exchange(true))
    return;
  { std::lock_guard lock(wait_mutex_); }
  wait_cv_.notify_all();
  tx_ready_.set();
  if (thread_.joinable())
    thread_.join();
  connected_ = false;
}

void QuicTransport::set_error(std::string text) {
  std::lock_guard lock(status_mutex_);
  last_error_ = std::move(text);
}

platform::BatchResult QuicTransport::send(std::span<platform::OutDatagram> datagrams) {
  std::size_t queued = 0;
  bool wake = false;
  {
    std::lock_guard lock(tx_mutex_);
    wake = tx_.empty();  // the QUIC thread takes the whole queue at once: one wake-up per burst
    for (auto& d : datagrams) {
      auto key = peers_.key_for(d.path.remote);
      if (!key) {
        dropped_unknown_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (!is_server_ && !connected_.load(std::memory_order_acquire)) {
        dropped_not_connected_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (tx_.size() >= kMaxQueued || tx_bytes_ + d.data.size() > kMaxQueuedBytes) {
        dropped_full_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      tx_.push_back(Item{*key, std::vector<std::uint8_t>(d.data.begin(), d.data.end())});
      tx_bytes_ += d.data.size();
      ++queued;
    }
  }
  if (queued != 0 && wake)
    tx_ready_.set();
  return platform::BatchResult{.count = datagrams.size()};
}

platform::BatchResult QuicTransport::receive(std::size_t, std::span<const Bytes> bufs,
                                             std::span<std::size_t> sizes,
                                             std::span<net::Path> paths) {
  std::deque<Item> batch;
  {
    std::lock_guard lock(rx_mutex_);
    const std::size_t n = std::min({bufs.size(), sizes.size(), paths.size(), rx_.size()});
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(rx_.front()));
      rx_.pop_front();
    }
    if (rx_.empty())
      rx_ready_.clear();
  }
  if (batch.empty())
    return platform::BatchResult{.count = 0, .error = EAGAIN};
  std::size_t i = 0;
  for (auto& r : batch) {
    auto ep = peers_.endpoint_for(r.key);
    if (!ep || r.datagram.size() > bufs[i].size()) {
      sizes[i] = 0;
    } else {
      std::memcpy(bufs[i].data(), r.datagram.data(), r.datagram.size());
      sizes[i] = r.datagram.size();
      received_.fetch_add(1, std::memory_order_relaxed);
    }
    paths[i] = net::Path{.remote = ep.value_or(net::Endpoint{})};
    ++i;
  }
  return platform::BatchResult{.count = i};
}

void QuicTransport::disconnect(const crypto::PublicKey& key) {
  {
    std::lock_guard lock(tx_mutex_);
    to_disconnect_.push_back(key);
  }
  tx_ready_.set();
}

std::vector<crypto::PublicKey> QuicTransport::connected_keys() const {
  std::lock_guard lock(status_mutex_);
  return connected_keys_;
}

QuicStatus QuicTransport::status() const {
  QuicStatus s;
  s.server = is_server_;
  s.connected = connected_.load();
  if (is_server_)
    s.endpoint = ":" + std::to_string(port_.load());
  else
    s.endpoint = client_config_->endpoint;
  {
    std::lock_guard lock(status_mutex_);
    s.last_error = last_error_;
    s.clients = connected_keys_.size();
    s.endpoint_stats = endpoint_stats_;
  }
  s.connects = connects_.load();
  s.sent = sent_.load();
  s.received = received_.load();
  s.dropped_queue_full = dropped_full_.load();
  s.dropped_not_connected = dropped_not_connected_.load();
  s.dropped_too_big = dropped_too_big_.load();
  s.dropped_unknown_path = dropped_unknown_.load();
  s.dropped_unauthenticated = dropped_unauthenticated_.load();
  s.dropped_not_chosen = dropped_not_chosen_.load();
  s.refused = refused_.load();
  s.max_datagram = max_datagram_.load();
  return s;
}

// Puts one received DATAGRAM on the engine's receive queue.
struct QuicTransport::Impl {
  // The notifier (an eventfd) is written only when the queue goes from empty to non-empty:
  // worker 0 drains it and clears it under the same lock, so one write per burst wakes it, not
  // one per datagram (profiled: the wake-ups, not QUIC, were the cost).
  static void deliver(QuicTransport& t, const crypto::PublicKey& key, ConstBytes payload) {
    bool wake = false;
    {
      std::lock_guard lock(t.rx_mutex_);
      if (t.rx_.size() >= kMaxQueued) {
        t.dropped_full_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      wake = t.rx_.empty();
      t.rx_.push_back(Item{key, std::vector<std::uint8_t>(payload.begin(), payload.end())});
    }
    if (wake)
      t.rx_ready_.set();
  }

  // One datagram into a packet. Returns false when congestion control or pacing holds it back
  // (the caller keeps it for later); anything else is done: sent, or dropped and counted.
  static bool write_one(QuicTransport& t, quic::Connection* conn, const net::Path& via,
                        const Item& item, OutBatch& out, MonoTime now) {
    if (conn == nullptr || !conn->established()) {
      t.dropped_not_connected_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    // A packet may come back without the datagram (ngtcp2 filled it with ACKs and other
    // frames first): send it and try again; only "blocked" with nothing written is a real wait.
    Result<quic::DatagramWrite> w = Error(EAGAIN, "");
    for (int attempt = 0; attempt < 4; ++attempt) {
      Bytes buf = out.next();
      w = conn->write_datagram(ConstBytes(item.datagram.data(), item.datagram.size()), now, buf);
      if (!w.ok()) {
        t.dropped_not_connected_.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
      if (w->packet.bytes != 0) {
        net::Path path = via;
        path.remote = w->packet.to;
        out.push(w->packet.bytes, path);
      }
      if (w->status != quic::DatagramStatus::kBlocked || w->packet.bytes == 0)
        break;
    }
    switch (w->status) {
      case quic::DatagramStatus::kSent:
        t.sent_.fetch_add(1, std::memory_order_relaxed);
        return true;
      case quic::DatagramStatus::kTooBig:
        t.dropped_too_big_.fetch_add(1, std::memory_order_relaxed);
        return true;
      case quic::DatagramStatus::kBlocked:
        return false;
    }
    return true;
  }

  // Writes a connection's waiting datagrams in order until congestion control or pacing says
  // stop. What waits is sent when ACKs open the window or the pacing timer fires (the
  // connection's deadline): back-pressure like a router's queue, instead of a drop the tunnel's
  // TCP would read as loss. Bounded by kMaxPending; beyond it the newest are dropped
  // (queue_full), as a full queue drops.
  static void flush(QuicTransport& t, quic::Connection* conn, const net::Path& via,
                    std::deque<Item>& pending, OutBatch& out, MonoTime now) {
    while (!pending.empty()) {
      if (!write_one(t, conn, via, pending.front(), out, now))
        return;
      pending.pop_front();
    }
  }

  static void enqueue(QuicTransport& t, std::deque<Item>& pending, Item item) {
    if (pending.size() >= kMaxPending) {
      t.dropped_full_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    pending.push_back(std::move(item));
  }
};

// ---- server ----

namespace {

struct ServerConn {
  control::FrameReader reader;
  std::deque<QuicTransport::Item> pending;  // datagrams congestion control holds back
  std::optional<crypto::PublicKey> key;     // set once the hello verified and was authorized
  net::Path via;                            // where its packets came in (local address, ifindex)
};

}  // namespace

void QuicTransport::run_server() {
  const QuicServerConfig& cfg = *server_config_;
  std::unordered_map<quic::Connection*, ServerConn> conns;
  std::map<crypto::PublicKey, quic::Connection*> by_key;

  quic::ServerOptions so;
  so.identity = cfg.identity;
  so.options = cfg.connection;
  so.retry = cfg.retry;
  so.max_connections = cfg.max_connections;
  so.reset_secret = cfg.reset_secret;
  so.on_datagram = [this, &conns](quic::Connection& c, ConstBytes payload) {
    auto it = conns.find(&c);
    if (it == conns.end() || !it->second.key) {
      dropped_unauthenticated_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Impl::deliver(*this, *it->second.key, payload);
  };
  auto created = quic::ServerEndpoint::create(std::move(so));
  if (!created.ok()) {
    platform::log_error("QUIC: %s", created.message().c_str());
    set_error(created.message());
    return;
  }
  quic::ServerEndpoint& ep = **created;
  auto loop_r = platform::make_event_loop();
  if (!loop_r.ok()) {
    platform::log_error("QUIC: event loop: %s", loop_r.message().c_str());
    return;
  }
  platform::EventLoop& loop = **loop_r;
  OutBatch out(*bind_);
  std::vector<std::uint8_t> memory(kBatch * kReceiveSlot);
  std::vector<std::uint8_t> reply(quic::kMaxUdpPayload);

  auto publish = [&] {
    std::lock_guard lock(status_mutex_);
    connected_keys_.clear();
    for (const auto& [k, c] : by_key)
      connected_keys_.push_back(k);
    endpoint_stats_ = ep.stats();
  };

  auto refuse = [&](quic::Connection& c, ServerConn& sc, std::string_view code,
                    const std::string& message, MonoTime now) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    if (auto frame = control::encode_frame(control::quic_error_to_json(code, message)); frame.ok())
      c.stream_send(ConstBytes(frame->data(), frame->size()));
    drain(c, out, sc.via, now);  // the error frame first, then the close
    c.close(kCloseRefused, code);
    drain(c, out, sc.via, now);
  };

  // A verified hello: authorize, answer, and make this the key's connection.
  auto on_hello = [&](quic::Connection& c, ServerConn& sc, const std::string& body, MonoTime now) {
    if (sc.key) {
      c.close(kCloseProtocol, "a second hello");
      return;
    }
    auto hello = control::parse_quic_hello(body);
    if (!hello.ok()) {
      refuse(c, sc, control::quic_error_code(hello.error()), hello.message(), now);
      return;
    }
    auto exporter = c.exporter(control::kQuicExporterLabel);
    std::optional<crypto::PrivateKey> priv = keys_();
    if (!exporter.ok() || !priv) {
      refuse(c, sc, "busy", "the server has no key yet", now);
      return;
    }
    if (!control::verify_quic_hello(*priv, *exporter, *hello)) {
      platform::log_verbose("QUIC: %s: proof of key %s... invalid", c.remote().to_string().c_str(),
                            key_prefix(hello->public_key).c_str());
      refuse(c, sc, "proof_invalid", "the proof does not match the key", now);
      return;
    }
    QuicAuthorization a = cfg.authorize(hello->public_key);
    if (!a.assignment) {
      platform::log_verbose("QUIC: client %s... refused: %s", key_prefix(hello->public_key).c_str(),
                            a.code.c_str());
      refuse(c, sc, a.code.empty() ? "unknown_client" : a.code, a.message, now);
      return;
    }
    auto frame = control::encode_frame(control::quic_assignment_to_json(*a.assignment));
    if (!frame.ok()) {
      refuse(c, sc, "internal", frame.message(), now);
      return;
    }
    c.stream_send(ConstBytes(frame->data(), frame->size()));
    sc.key = hello->public_key;
    (void)peers_.endpoint_for(*sc.key);  // the synthetic endpoint exists before any datagram
    if (auto old = by_key.find(*sc.key); old != by_key.end() && old->second != &c) {
      old->second->close(kCloseReplaced, "replaced by a newer connection");
      drain(*old->second, out, conns[old->second].via, now);
    }
    by_key[*sc.key] = &c;
    connects_.fetch_add(1, std::memory_order_relaxed);
    platform::log_verbose("QUIC: client %s... connected from %s", key_prefix(*sc.key).c_str(),
                          c.remote().to_string().c_str());
    publish();
  };

  auto after_input = [&](quic::Connection& c, MonoTime now) {
    ServerConn& sc = conns[&c];
    std::vector<std::uint8_t> bytes = c.take_stream_bytes();
    if (!bytes.empty() && !c.closed()) {
      if (Status s = sc.reader.feed(ConstBytes(bytes.data(), bytes.size())); !s) {
        c.close(kCloseProtocol, "frame too large");
      } else {
        while (auto body = sc.reader.next()) {
          on_hello(c, sc, *body, now);
          if (c.closed())
            break;
        }
      }
    }
    if (!sc.pending.empty() && sc.key)  // ACKs may have opened the window
      Impl::flush(*this, &c, sc.via, sc.pending, out, now);
    drain(c, out, sc.via, now);
  };

  auto collect = [&] {
    for (auto& gone : ep.expire()) {
      auto it = conns.find(gone.get());
      if (it != conns.end()) {
        if (it->second.key) {
          auto k = by_key.find(*it->second.key);
          if (k != by_key.end() && k->second == gone.get()) {
            by_key.erase(k);
            platform::log_verbose("QUIC: client %s... gone: %s",
                                  key_prefix(*it->second.key).c_str(), gone->reason().c_str());
          }
        }
        conns.erase(it);
      }
    }
    publish();
  };

  std::function<void()> arm;
  auto on_timer = [&] {
    const MonoTime now = mono_now();
    ep.on_timer(now);
    for (quic::Connection* c : ep.connections()) {
      ServerConn& sc = conns[c];
      if (!sc.pending.empty() && sc.key)  // the pacing timer, or a loss timer freed the window
        Impl::flush(*this, c, sc.via, sc.pending, out, now);
      drain(*c, out, sc.via, now);
    }
    out.flush();
    collect();
    arm();
  };
  arm = [&] { (void)loop.set_timer(ep.deadline(), on_timer); };

  for (std::size_t s = 0; s < bind_->socket_count(); ++s) {
    (void)loop.add(bind_->poll_fd(s), platform::kReadable, [&, s](std::uint32_t) {
      const MonoTime now = mono_now();
      bool more = true;
      for (int round = 0; more && round < 8; ++round) {
        more = receive_batch(*bind_, s, memory, [&](ConstBytes d, const net::Path& path) {
          const net::Endpoint local{path.local.value_or(net::IpAddress{}), port_.load()};
          quic::ServerReceive r = ep.receive(d, path.remote, local, now, Bytes(reply));
          if (r.kind == quic::ServerReceive::Kind::kReply) {
            Bytes buf = out.next();
            std::memcpy(buf.data(), reply.data(), r.reply_bytes);
            out.push(r.reply_bytes, path);
          } else if (r.kind == quic::ServerReceive::Kind::kConnection && r.connection) {
            ServerConn& sc = conns[r.connection];
            sc.via = net::Path{.remote = path.remote, .local = path.local, .ifindex = path.ifindex};
            after_input(*r.connection, now);
          }
        });
      }
      out.flush();
      collect();
      arm();
    });
  }
  (void)loop.add(tx_ready_.fd(), platform::kReadable, [&](std::uint32_t) {
    tx_ready_.clear();
    std::deque<Item> items;
    std::vector<crypto::PublicKey> cut;
    {
      std::lock_guard lock(tx_mutex_);
      items.swap(tx_);
      tx_bytes_ = 0;
      cut.swap(to_disconnect_);
    }
    const MonoTime now = mono_now();
    for (const auto& k : cut) {
      if (auto it = by_key.find(k); it != by_key.end()) {
        quic::Connection* c = it->second;
        platform::log_verbose("QUIC: client %s... disconnected (revoked or disabled)",
                              key_prefix(k).c_str());
        c->close(kCloseRefused, "revoked");
        drain(*c, out, conns[c].via, now);
        by_key.erase(it);
      }
    }
    std::vector<quic::Connection*> touched;
    for (Item& item : items) {
      auto it = by_key.find(item.key);
      if (it == by_key.end()) {
        dropped_not_connected_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      ServerConn& sc = conns[it->second];
      if (sc.pending.empty())
        touched.push_back(it->second);
      Impl::enqueue(*this, sc.pending, std::move(item));
    }
    for (quic::Connection* c : touched) {
      ServerConn& sc = conns[c];
      Impl::flush(*this, c, sc.via, sc.pending, out, now);
    }
    out.flush();
    if (!cut.empty())
      collect();
    arm();
  });
  arm();

  while (!stopping_.load()) {
    auto r = loop.run_once(std::chrono::milliseconds(500));
    if (!r.ok()) {
      platform::log_error("QUIC: event loop: %s", r.message().c_str());
      break;
    }
  }
  const MonoTime now = mono_now();
  for (quic::Connection* c : ep.connections()) {
    c->close(kCloseNormal, "server stopping");
    drain(*c, out, conns[c].via, now);
  }
  out.flush();
}

// ---- client ----

void QuicTransport::run_client() {
  const QuicClientConfig& cfg = *client_config_;
  Duration backoff{};
  std::vector<std::uint8_t> memory(kBatch * kReceiveSlot);
  OutBatch out(*bind_);
  (void)peers_.endpoint_for(cfg.server_key);

  while (!stopping_.load()) {
    bool was_connected = false;
    std::string why = [&]() -> std::string {
      auto hp = net::split_host_port(cfg.endpoint);
      auto server = platform::resolve_udp(hp->host, hp->port);
      if (!server.ok())
        return "cannot resolve " + cfg.endpoint + ": " + server.message();
      quic::ClientOptions co;
      co.server = *server;
      co.local = net::Endpoint{server->address.is_v4() ? net::IpAddress::v4(0) : net::IpAddress{},
                               port_.load()};
      co.pin = cfg.pin;
      co.options = cfg.connection;
      bool authed = false;
      co.on_datagram = [&](quic::Connection&, ConstBytes payload) {
        if (!authed) {
          dropped_unauthenticated_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        if (!accepting_.load(std::memory_order_acquire)) {
          dropped_not_chosen_.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        Impl::deliver(*this, cfg.server_key, payload);
      };
      MonoTime started = mono_now();
      auto made = quic::Connection::connect(std::move(co), started);
      if (!made.ok())
        return made.message();
      quic::Connection& c = **made;
      auto loop_r = platform::make_event_loop();
      if (!loop_r.ok())
        return "event loop: " + loop_r.message();
      platform::EventLoop& loop = **loop_r;
      const net::Path via{};
      control::FrameReader reader;
      std::deque<Item> pending;  // datagrams congestion control holds back (Impl::flush)
      bool hello_sent = false;
      std::optional<MonoTime> established_at;
      std::string failure;

      auto step = [&](MonoTime now) {
        if (c.established() && !hello_sent) {
          hello_sent = true;
          established_at = now;
          std::optional<crypto::PrivateKey> priv = keys_();
          auto exporter = c.exporter(control::kQuicExporterLabel);
          if (!priv || !exporter.ok()) {
            failure = "no private key yet";
            c.close(kCloseNormal, "no key");
          } else if (auto hello = control::make_quic_hello(*priv, cfg.server_key, *exporter);
                     !hello.ok()) {
            failure = hello.message();
            c.close(kCloseProtocol, "cannot make the hello");
          } else if (auto frame = control::encode_frame(*hello); frame.ok()) {
            c.stream_send(ConstBytes(frame->data(), frame->size()));
          }
        }
        std::vector<std::uint8_t> bytes = c.take_stream_bytes();
        if (!bytes.empty() && !c.closed()) {
          if (Status s = reader.feed(ConstBytes(bytes.data(), bytes.size())); !s) {
            failure = "the server sent an oversized frame";
            c.close(kCloseProtocol, "frame too large");
          }
          while (auto body = reader.next()) {
            auto msg = control::parse_quic_server_message(*body);
            if (!msg.ok()) {
              failure = "malformed message from the server: " + msg.message();
              c.close(kCloseProtocol, "malformed message");
              break;
            }
            if (!msg->assignment) {
              failure = "refused by the server: " + msg->error_code +
                        (msg->error_message.empty() ? "" : " (" + msg->error_message + ")");
              break;
            }
            if (cfg.on_assignment)
              cfg.on_assignment(*msg->assignment);
            if (!authed) {
              authed = true;
              was_connected = true;
              connects_.fetch_add(1, std::memory_order_relaxed);
              connected_.store(true, std::memory_order_release);
              set_error("");
              platform::log_verbose("QUIC: connected to %s (%s)", cfg.endpoint.c_str(),
                                    c.remote().to_string().c_str());
            }
          }
        }
        if (!authed && established_at && now - *established_at > cfg.assignment_timeout &&
            !c.closed()) {
          failure = "no assignment from the server within " +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(cfg.assignment_timeout)
                            .count()) +
                    " s";
          c.close(kCloseProtocol, "no assignment");
        }
        if (authed && !pending.empty())  // after ACKs or the pacing timer
          Impl::flush(*this, &c, via, pending, out, now);
        drain(c, out, via, now);
        out.flush();
        max_datagram_.store(authed ? c.max_datagram_payload() : 0);
      };

      std::function<void()> arm;
      auto on_timer = [&] {
        const MonoTime now = mono_now();
        if (Status s = c.on_timer(now); !s && failure.empty())
          failure = s.message();
        step(now);
        arm();
      };
      arm = [&] {
        MonoTime d = c.deadline();
        if (established_at && !authed)
          d = std::min(d, *established_at + cfg.assignment_timeout + std::chrono::milliseconds(1));
        (void)loop.set_timer(d, on_timer);
      };
      for (std::size_t s = 0; s < bind_->socket_count(); ++s) {
        (void)loop.add(bind_->poll_fd(s), platform::kReadable, [&, s](std::uint32_t) {
          const MonoTime now = mono_now();
          bool more = true;
          for (int round = 0; more && round < 8; ++round) {
            more = receive_batch(*bind_, s, memory, [&](ConstBytes d, const net::Path& path) {
              if (c.closed())
                return;
              if (Status st = c.receive(d, path.remote, now); !st && failure.empty())
                failure = st.message();
            });
          }
          step(now);
          arm();
        });
      }
      (void)loop.add(tx_ready_.fd(), platform::kReadable, [&](std::uint32_t) {
        tx_ready_.clear();
        std::deque<Item> items;
        {
          std::lock_guard lock(tx_mutex_);
          items.swap(tx_);
          tx_bytes_ = 0;
          to_disconnect_.clear();
        }
        const MonoTime now = mono_now();
        if (!authed) {
          dropped_not_connected_.fetch_add(items.size(), std::memory_order_relaxed);
        } else {
          for (Item& item : items)
            Impl::enqueue(*this, pending, std::move(item));
          Impl::flush(*this, &c, via, pending, out, now);
        }
        out.flush();
        arm();
      });
      step(started);
      arm();
      while (!stopping_.load() && !c.closed()) {
        auto r = loop.run_once(std::chrono::milliseconds(500));
        if (!r.ok())
          return "event loop: " + r.message();
      }
      connected_.store(false, std::memory_order_release);
      if (stopping_.load()) {
        c.close(kCloseNormal, "client stopping");
        drain(c, out, via, mono_now());
        out.flush();
        return "stopped";
      }
      drain(c, out, via, mono_now());  // a pending CONNECTION_CLOSE
      out.flush();
      if (!failure.empty())
        return failure;
      return c.reason().empty() ? std::string("connection closed") : c.reason();
    }();
    connected_.store(false, std::memory_order_release);
    if (stopping_.load())
      break;
    set_error(why);
    platform::log_verbose("QUIC: connection to %s ended: %s", cfg.endpoint.c_str(), why.c_str());
    backoff = was_connected ? std::chrono::seconds(1) : next_backoff(backoff, cfg.max_backoff);
    std::unique_lock lock(wait_mutex_);
    wait_cv_.wait_for(lock, backoff, [&] { return stopping_.load(); });
  }
}

}  // namespace warren::runtime
