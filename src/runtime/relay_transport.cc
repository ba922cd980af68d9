#include "runtime/relay_transport.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "base/encoding.h"
#include "crypto/random.h"
#include "mesh/relay.h"
#include "platform/event_loop.h"
#include "platform/log.h"
#include "platform/resolve.h"

namespace warren::runtime {

namespace relay = mesh::relay;
using SteadyClock = std::chrono::steady_clock;

namespace {
MonoTime mono_now() {
  return MonoTime{std::chrono::duration_cast<Duration>(SteadyClock::now().time_since_epoch())};
}
}  // namespace

// ---- RelayPeerMap ----

std::optional<net::Endpoint> RelayPeerMap::endpoint_for(const crypto::PublicKey& key) {
  std::lock_guard lock(mutex_);
  std::uint32_t n = 0;
  if (auto it = index_.find(key); it != index_.end()) {
    n = it->second;
  } else {
    if (keys_.size() >= (1u << 24) - 1)
      return std::nullopt;
    keys_.push_back(key);
    n = static_cast<std::uint32_t>(keys_.size());
    index_.emplace(key, n);
  }
  return net::Endpoint{net::IpAddress::v4(n), 1};
}

std::optional<crypto::PublicKey> RelayPeerMap::key_for(const net::Endpoint& endpoint) const {
  if (!endpoint.address.is_v4() || endpoint.port != 1)
    return std::nullopt;
  const std::uint8_t* b = endpoint.address.data();
  if (b[0] != 0)
    return std::nullopt;
  const std::uint32_t n = std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
  std::lock_guard lock(mutex_);
  if (n == 0 || n > keys_.size())
    return std::nullopt;
  return keys_[n - 1];
}

std::size_t RelayPeerMap::size() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

// ---- FrameQueue ----

bool FrameQueue::push(std::vector<std::uint8_t> frame) {
  std::lock_guard lock(mutex_);
  if (frames_.size() >= max_frames_ || bytes_ + frame.size() > max_bytes_)
    return false;
  bytes_ += frame.size();
  frames_.push_back(std::move(frame));
  return true;
}

std::deque<std::vector<std::uint8_t>> FrameQueue::take_all() {
  std::lock_guard lock(mutex_);
  std::deque<std::vector<std::uint8_t>> out;
  out.swap(frames_);
  bytes_ = 0;
  return out;
}

void FrameQueue::clear() {
  (void)take_all();
}

std::size_t FrameQueue::size() const {
  std::lock_guard lock(mutex_);
  return frames_.size();
}

// ---- RelayTransport ----

Duration RelayTransport::next_backoff(Duration current) {
  if (current < std::chrono::seconds(1))
    return std::chrono::seconds(1);
  return std::min<Duration>(current * 2, kMaxBackoff);
}

RelayTransport::RelayTransport(RelaySettings settings, KeySource keys, Duration ping_interval,
                               RelayCarrierChoice::Options carrier)
    : settings_(std::move(settings)),
      keys_(std::move(keys)),
      ping_interval_(ping_interval),
      choice_(carrier) {
  thread_ = std::thread([this] { run(); });
}

RelayTransport::~RelayTransport() {
  stop();
}

void RelayTransport::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable())
      thread_.join();
    return;
  }
  {
    std::lock_guard lock(stream_mutex_);
    if (stream_ != nullptr)
      stream_->shutdown();
  }
  { std::lock_guard lock(wait_mutex_); }
  wait_cv_.notify_all();
  tx_ready_.set();
  if (thread_.joinable())
    thread_.join();
}

void RelayTransport::set_error(std::string text) {
  std::lock_guard lock(error_mutex_);
  last_error_ = std::move(text);
}

RelayStatus RelayTransport::status() const {
  RelayStatus s;
  s.connected = connected();
  if (const int c = carrier_.load(); s.connected && c >= 0)
    s.carrier = carrier_name(static_cast<RelayCarrierChoice::Carrier>(c));
  s.relay = settings_.host + ":" + std::to_string(settings_.port);
  {
    std::lock_guard lock(error_mutex_);
    s.last_error = last_error_;
  }
  s.connects = connects_.load();
  s.sent = sent_.load();
  s.received = received_.load();
  s.dropped_full = dropped_full_.load();
  s.dropped_not_connected = dropped_not_connected_.load();
  s.dropped_unknown_path = dropped_unknown_.load();
  s.dropped_rx_full = dropped_rx_full_.load();
  return s;
}

platform::BatchResult RelayTransport::send(std::span<platform::OutDatagram> datagrams) {
  bool queued = false;
  for (auto& d : datagrams) {
    if (!connected()) {
      dropped_not_connected_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto key = peers_.key_for(d.path.remote);
    if (!key || d.data.empty() || d.data.size() > relay::kMaxDatagram) {
      dropped_unknown_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::vector<std::uint8_t> frame(relay::kDataHeaderSize + d.data.size());
    if (!relay::write_data_header(
            std::span<std::uint8_t, relay::kDataHeaderSize>(frame.data(), relay::kDataHeaderSize),
            relay::FrameType::kSend, *key, d.data.size())) {
      dropped_unknown_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    std::memcpy(frame.data() + relay::kDataHeaderSize, d.data.data(), d.data.size());
    if (!out_.push(std::move(frame))) {
      dropped_full_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    sent_.fetch_add(1, std::memory_order_relaxed);
    queued = true;
  }
  if (queued)
    tx_ready_.set();
  return platform::BatchResult{.count = datagrams.size()};
}

platform::BatchResult RelayTransport::receive(std::size_t, std::span<const Bytes> bufs,
                                              std::span<std::size_t> sizes,
                                              std::span<net::Path> paths) {
  std::deque<Received> batch;
  {
    std::lock_guard lock(rx_mutex_);
    const std::size_t n = std::min(bufs.size(), rx_.size());
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
    auto ep = peers_.endpoint_for(r.from);
    if (!ep || r.datagram.size() > bufs[i].size()) {
      sizes[i] = 0;  // does not fit (or no index left): the engine skips it
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

void RelayTransport::run() {
  Duration backoff{};
  while (!stopping_.load()) {
    const std::uint64_t before = connects_.load();
    std::string why;
    const MonoTime start = mono_now();
    if (choice_.next(start) == RelayCarrierChoice::Carrier::kUdp) {
      bool answered = false, tried = false;
      why = session_udp(answered, tried);
      if (tried)
        why = "over UDP: " + why;
      if (tried)  // (no key yet, say, is not UDP's fault)
        choice_.udp_result(answered, mono_now());
      if (tried && !answered && !stopping_.load()) {
        // UDP is silent (blocked?): TCP/TLS at once, no backoff.
        platform::log_verbose("relay %s:%u: %s; trying TCP/TLS", settings_.host.c_str(),
                              settings_.port, why.c_str());
        connected_.store(false, std::memory_order_release);
        carrier_.store(-1);
        continue;
      }
    } else {
      why = session();
    }
    connected_.store(false, std::memory_order_release);
    carrier_.store(-1);
    out_.clear();
    if (stopping_.load())
      break;
    if (connects_.load() != before)
      backoff = Duration{};  // the connection worked for a while: start the backoff over
    backoff = next_backoff(backoff);
    platform::log_verbose(
        "relay %s:%u: %s; reconnecting in %lld s", settings_.host.c_str(), settings_.port,
        why.c_str(),
        static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(backoff).count()));
    set_error(std::move(why));
    std::unique_lock lock(wait_mutex_);
    wait_cv_.wait_for(lock, backoff, [this] { return stopping_.load(); });
  }
}

void RelayTransport::on_connected(RelayCarrierChoice::Carrier carrier) {
  connects_.fetch_add(1);
  out_.clear();  // what was queued before this connection is stale
  carrier_.store(static_cast<int>(carrier));
  connected_.store(true, std::memory_order_release);
  set_error("");
  platform::log_verbose("relay %s:%u: connected over %s", settings_.host.c_str(), settings_.port,
                        carrier_name(carrier));
}

std::string RelayTransport::handle_frame(const relay::Frame& fr) {
  switch (fr.type) {
    case relay::FrameType::kRecv: {
      std::lock_guard lock(rx_mutex_);
      if (rx_.size() >= kMaxQueuedFrames) {
        dropped_rx_full_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      rx_.push_back(Received{fr.key, {fr.datagram.begin(), fr.datagram.end()}});
      rx_ready_.set();
      break;
    }
    case relay::FrameType::kPing:
      (void)out_.push(relay::encode_ping(relay::FrameType::kPong, fr.nonce));
      tx_ready_.set();
      break;
    case relay::FrameType::kError:
      // Unknown destination or a rate limit: the datagram is lost, as on UDP.
      if (platform::log_enabled(platform::LogLevel::kDebug))
        platform::log_debug("relay: error %u: %s", fr.error, fr.text.c_str());
      if (fr.error == static_cast<std::uint16_t>(relay::ErrorCode::kShuttingDown) ||
          fr.error == static_cast<std::uint16_t>(relay::ErrorCode::kProtocol) ||
          fr.error == static_cast<std::uint16_t>(relay::ErrorCode::kNotEnrolled))
        return "the relay ended the session: " + fr.text;
      break;
    default:  // pong, keepalive, a late auth ok: liveness only
      break;
  }
  return "";
}

std::string RelayTransport::session_udp(bool& answered, bool& tried) {
  answered = false;
  tried = false;
  auto key = keys_();
  if (!key)
    return "no private key yet";
  const crypto::PublicKey me = crypto::derive_public_key(*key);
  auto to = platform::resolve_udp(settings_.host, settings_.port);
  if (!to)
    return "cannot resolve: " + to.message();
  const net::Path relay_path{.remote = *to};
  platform::BindOptions bo;
  bo.ipv4 = to->address.is_v4();
  bo.ipv6 = !bo.ipv4;
  bo.buffer_bytes = 1 << 20;
  bo.gso = false;
  bo.gro = false;
  auto factory = platform::make_system_bind_factory();
  auto bind = factory->open(bo);
  if (!bind.ok())
    return "cannot open a UDP socket: " + bind.message();
  auto& udp = **bind;
  auto send_one = [&](const std::vector<std::uint8_t>& frame) {
    platform::OutDatagram d{ConstBytes(frame), relay_path, false};
    (void)udp.send(std::span(&d, 1));  // what the kernel does not take is lost, as UDP may
  };

  auto loop = platform::make_event_loop();
  if (!loop)
    return "event loop: " + loop.message();
  constexpr std::size_t kBatch = 16;
  std::vector<std::uint8_t> memory(kBatch * relay::kMaxFrameSize);
  std::array<Bytes, kBatch> views{};
  for (std::size_t i = 0; i < kBatch; ++i)
    views[i] = Bytes(memory.data() + i * relay::kMaxFrameSize, relay::kMaxFrameSize);
  std::array<std::size_t, kBatch> sizes{};
  std::array<net::Path, kBatch> paths{};

  enum class State { kHello, kAuth, kConnected } state = State::kHello;
  std::vector<std::uint8_t> auth;  // our udp-auth, resent until auth ok
  std::string ended;
  auto last_rx = SteadyClock::now();
  const auto auth_deadline = SteadyClock::now() + choice_.udp_timeout();
  auto next_send = SteadyClock::now();  // hello / udp-auth retransmission
  std::optional<SteadyClock::time_point> ping_sent;
  auto next_ping = SteadyClock::now() + ping_interval_;
  std::uint64_t nonce = 0;

  auto on_frame = [&](const relay::Frame& f) {
    switch (state) {
      case State::kHello:
        if (f.type != relay::FrameType::kChallenge)
          return;
        answered = true;
        {
          auto proof = relay::prove(*key, me, f.key, f.challenge);
          if (!proof) {
            ended = "cannot prove the key: " + proof.message();
            return;
          }
          auth = relay::encode_udp_auth(me, *proof, f.challenge);
        }
        send_one(auth);
        state = State::kAuth;
        next_send = SteadyClock::now() + std::chrono::seconds(1);
        return;
      case State::kAuth:
        if (f.type == relay::FrameType::kError) {
          ended = "refused (error " + std::to_string(f.error) + "): " + f.text;
          return;
        }
        if (f.type != relay::FrameType::kAuthOk)
          return;
        key.reset();  // the proof was all we needed it for
        state = State::kConnected;
        on_connected(RelayCarrierChoice::Carrier::kUdp);
        return;
      case State::kConnected:
        if (f.type == relay::FrameType::kPong)
          ping_sent.reset();
        ended = handle_frame(f);
        return;
    }
  };
  auto on_readable = [&](std::uint32_t) {
    for (;;) {
      platform::BatchResult r = udp.receive(0, views, sizes, paths);
      for (std::size_t i = 0; i < r.count && ended.empty(); ++i) {
        if (sizes[i] == 0 || paths[i].remote != *to)
          continue;  // only the relay speaks to this socket
        auto f = relay::decode_frame(views[i].first(sizes[i]));
        if (!f)
          continue;  // one bad datagram is just lost
        last_rx = SteadyClock::now();
        on_frame(*f);
      }
      if (r.count < kBatch || !ended.empty())
        return;
    }
  };
  auto on_tx = [&](std::uint32_t) {
    tx_ready_.clear();
    auto frames = out_.take_all();
    if (state != State::kConnected)
      return;
    std::vector<platform::OutDatagram> batch;
    batch.reserve(frames.size());
    for (const auto& f : frames)
      batch.push_back(platform::OutDatagram{ConstBytes(f), relay_path, false});
    for (std::size_t done = 0; done < batch.size();) {
      auto r = udp.send(std::span(batch).subspan(done));
      if (r.count == 0)
        break;  // the kernel takes no more: the rest is lost, as on UDP
      done += r.count;
    }
  };
  if (auto st = (*loop)->add(udp.poll_fd(0), platform::kReadable, on_readable); !st)
    return "event loop: " + st.message();
  if (auto st = (*loop)->add(tx_ready_.fd(), platform::kReadable, on_tx); !st)
    return "event loop: " + st.message();
  const auto hello = relay::encode_udp_hello();
  tried = true;
  while (ended.empty() && !stopping_.load()) {
    const auto now = SteadyClock::now();
    if (state != State::kConnected) {
      if (now >= auth_deadline)
        return answered ? "no auth ok within the UDP timeout" : "no answer over UDP";
      if (now >= next_send) {
        send_one(state == State::kHello ? hello : auth);
        next_send = now + std::chrono::seconds(1);
      }
    } else {
      if (now - last_rx > kIdleTimeout) {
        ended = "no answer from the relay for 35 s";
        break;
      }
      if (ping_sent && now - *ping_sent > kUdpPongTimeout) {
        ended = "no pong over UDP (the relay restarted, or UDP broke)";
        break;
      }
      if (now >= next_ping) {
        if (auto k = keys_(); !k || crypto::derive_public_key(*k) != me) {
          ended = "the private key changed";
          break;
        }
        if (!ping_sent)
          ping_sent = now;
        send_one(relay::encode_ping(relay::FrameType::kPing, ++nonce));
        next_ping = now + ping_interval_;
      }
    }
    if (auto r = (*loop)->run_once(std::chrono::milliseconds(200)); !r)
      ended = "event loop: " + r.message();
  }
  if (stopping_.load())
    return "stopping";
  return ended;
}

std::string RelayTransport::session() {
  auto key = keys_();
  if (!key)
    return "no private key yet";
  const crypto::PublicKey me = crypto::derive_public_key(*key);
  std::unique_ptr<control::TlsStream> tls;
  try {
    tls = control::TlsStream::connect(settings_.host, settings_.port, settings_.pin,
                                      SteadyClock::now() + std::chrono::seconds(5));
  } catch (const control::ControlError& e) {
    return std::string("cannot connect: ") + e.what();
  }
  {
    std::lock_guard lock(stream_mutex_);
    if (stopping_.load())
      return "stopping";
    stream_ = tls.get();
  }
  struct Unpublish {
    RelayTransport* t;
    ~Unpublish() {
      std::lock_guard lock(t->stream_mutex_);
      t->stream_ = nullptr;
    }
  } unpublish{this};

  std::vector<std::uint8_t> frame;
  auto read_one = [&](control::Deadline deadline) -> Result<relay::Frame> {
    std::array<std::uint8_t, relay::kHeaderSize> h{};
    tls->read_exact(h, deadline);
    const std::size_t n = std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
    if (n > relay::kMaxFrameSize)
      return Error(EBADMSG, "oversized frame");
    frame.assign(h.begin(), h.end());
    frame.resize(relay::kHeaderSize + n);
    if (n)
      tls->read_exact(std::span(frame).subspan(relay::kHeaderSize), deadline);
    return relay::decode_frame(frame);
  };

  try {
    // Authentication: challenge ─► auth (proof of our WireGuard key) ─► auth ok.
    const auto deadline = SteadyClock::now() + std::chrono::seconds(5);
    auto challenge = read_one(deadline);
    if (!challenge)
      return "bad challenge: " + challenge.message();
    if (challenge->type != relay::FrameType::kChallenge)
      return "the relay did not open with a challenge";
    auto proof = relay::prove(*key, me, challenge->key, challenge->challenge);
    key.reset();  // the proof is all we needed it for
    if (!proof)
      return "cannot prove the key: " + proof.message();
    tls->write_all(relay::encode_auth(me, *proof), deadline);
    auto ok = read_one(deadline);
    if (!ok)
      return "bad answer to auth: " + ok.message();
    if (ok->type == relay::FrameType::kError)
      return "refused (error " + std::to_string(ok->error) + "): " + ok->text;
    if (ok->type != relay::FrameType::kAuthOk)
      return "unexpected answer to auth";
  } catch (const control::ControlError& e) {
    return std::string("authentication failed: ") + e.what();
  }
  on_connected(RelayCarrierChoice::Carrier::kTcp);

  auto loop = platform::make_event_loop();
  if (!loop)
    return "event loop: " + loop.message();
  relay::StreamReader reader;
  std::vector<std::uint8_t> buf(64 * 1024);
  std::string ended;
  auto last_rx = SteadyClock::now();
  auto next_ping = last_rx + ping_interval_;
  std::uint64_t nonce = 0;

  auto on_readable = [&](std::uint32_t) {
    try {
      for (;;) {
        const std::size_t n =
            tls->read_available(buf, SteadyClock::now() + std::chrono::seconds(2));
        if (n == 0)
          return;
        last_rx = SteadyClock::now();
        ConstBytes in(buf.data(), n);
        for (;;) {
          auto f = reader.next(in);
          if (!f) {
            ended = "corrupt stream: " + f.message();
            return;
          }
          if (!*f)
            break;
          ended = handle_frame(**f);
          if (!ended.empty())
            return;
        }
      }
    } catch (const control::ControlError& e) {
      ended = e.what();
    }
  };
  auto on_tx = [&](std::uint32_t) {
    tx_ready_.clear();
    auto frames = out_.take_all();
    try {
      for (const auto& f : frames)
        tls->write_all(f, SteadyClock::now() + std::chrono::seconds(2));
    } catch (const control::ControlError& e) {
      ended = e.what();
    }
  };
  if (auto st = (*loop)->add(tls->native_handle(), platform::kReadable, on_readable); !st)
    return "event loop: " + st.message();
  if (auto st = (*loop)->add(tx_ready_.fd(), platform::kReadable, on_tx); !st)
    return "event loop: " + st.message();
  while (ended.empty() && !stopping_.load()) {
    const auto now = SteadyClock::now();
    if (now - last_rx > kIdleTimeout) {
      ended = "no answer from the relay for 35 s";
      break;
    }
    if (now >= next_ping) {
      // The key is checked as often as the relay is pinged: after `wg set private-key` the
      // relay must know us by the new key (the old connection would deliver nothing).
      if (auto k = keys_(); !k || crypto::derive_public_key(*k) != me) {
        ended = "the private key changed";
        break;
      }
      (void)out_.push(relay::encode_ping(relay::FrameType::kPing, ++nonce));
      tx_ready_.set();
      next_ping = now + ping_interval_;
    }
    if (auto r = (*loop)->run_once(std::min<Duration>(ping_interval_, std::chrono::seconds(1))); !r)
      ended = "event loop: " + r.message();
  }
  if (stopping_.load()) {
    tls->close(SteadyClock::now() + std::chrono::milliseconds(200));
    return "stopping";
  }
  return ended;
}

}  // namespace warren::runtime
