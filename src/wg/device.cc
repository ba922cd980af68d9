// wg::Device — the WireGuard protocol for one interface, with no I/O.
//
//   encapsulate: dst ─► allowed-IPs ─► peer ─► current keypair? ─yes─► nonce ─► pad+seal in place
//                                                  │no
//                                                  └─► stage packet, send initiation (Outbox)
//   decapsulate: type 1 ─► mac1 ─► [under load: mac2 or cookie reply] ─► rate limit ─► Noise
//                type 2 ─► mac1 ─► [same] ─► index ─► Noise ─► new current keypair ─► keepalive
//                type 3 ─► index ─► open cookie
//                type 4 ─► index ─► keypair age ─► open ─► replay window ─► key confirmation
//                          ─► endpoint (roaming) ─► timers ─► allowed-IPs source check ─► TUN
//
// Locking: the device lock (shared_mutex) is held shared by every data-path call and
// exclusively by apply(); under it, a peer's own mutex guards that peer's state, and the index
// table has its own lock. Order: device → peer → index. Encryption and decryption run without
// the peer lock (keypairs are reference-counted and their send counter is atomic).
//
// Timers are deadlines stored per peer (whitepaper §6; the hooks carry wireguard-go's names so
// the two can be read side by side). tick() visits only the peers that are due:
//
//   hook sets peer.timer_x = t ──► t < peer.scheduled_at? ──no──► nothing (the common case)
//                                          │yes
//                                          ▼
//                      scheduled_at = t; push (t, id) on the timer heap (timer_mu)
//   tick(now): pop every entry with at <= now ─► skip it unless at == peer.scheduled_at
//              (stale) ─► fire the peer's due timers ─► push its earliest remaining deadline
//   next_deadline(): the heap's top (an atomic copy; never later than the next due timer,
//                    early when the top entry is stale)
//
// A deadline that moves later (a keepalive pushed back by traffic) costs nothing at once: the
// old entry surfaces, the peer is visited, and its real deadline is pushed. So the data path
// does no heap operation per packet, and a tick costs O(due entries · log heap). The heap is
// compacted when stale entries outnumber the live ones. Lock order: device → peer → timer_mu.

#include "wg/device.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "net/ip_header.h"
#include "wg/allowed_ips.h"
#include "wg/cookie.h"
#include "wg/endpoint_book.h"
#include "wg/messages.h"
#include "wg/noise.h"
#include "wg/peer.h"
#include "wg/rate_limiter.h"

namespace warren::wg {

using namespace std::chrono_literals;

const char* drop_name(Drop d) {
  switch (d) {
    case Drop::kNone:
      return "none";
    case Drop::kTooShort:
      return "too_short";
    case Drop::kUnknownType:
      return "unknown_type";
    case Drop::kBadSize:
      return "bad_size";
    case Drop::kBadMac1:
      return "bad_mac1";
    case Drop::kCookieSent:
      return "cookie_sent";
    case Drop::kRateLimited:
      return "rate_limited";
    case Drop::kNoPrivateKey:
      return "no_private_key";
    case Drop::kUnknownPeer:
      return "unknown_peer";
    case Drop::kHandshakeFailed:
      return "handshake_failed";
    case Drop::kReplayedTimestamp:
      return "replayed_timestamp";
    case Drop::kInitiationFlood:
      return "initiation_flood";
    case Drop::kSimultaneousInitiation:
      return "simultaneous_initiation";
    case Drop::kUnknownIndex:
      return "unknown_index";
    case Drop::kBadCookieReply:
      return "bad_cookie_reply";
    case Drop::kDecryptFailed:
      return "decrypt_failed";
    case Drop::kExpiredKeypair:
      return "expired_keypair";
    case Drop::kReplayedCounter:
      return "replayed_counter";
    case Drop::kBadInnerPacket:
      return "bad_inner_packet";
    case Drop::kAllowedIpsMismatch:
      return "allowed_ips_mismatch";
    case Drop::kPeerIsolated:
      return "peer_isolated";
    case Drop::kNoRoute:
      return "no_route";
    case Drop::kNoEndpoint:
      return "no_endpoint";
    case Drop::kTooLarge:
      return "too_large";
    case Drop::kRoutingLoop:
      return "routing_loop";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

namespace {

struct IndexEntry {
  std::shared_ptr<Peer> peer;
  std::shared_ptr<Keypair> keypair;  // null while the index names a handshake in progress
};

// wireguard-go calculatePaddingSize: pad to 16, never beyond the MTU.
std::size_t padded_length(std::size_t len, std::uint32_t mtu) {
  if (mtu == 0)
    return (len + kPaddingMultiple - 1) & ~(kPaddingMultiple - 1);
  std::size_t last = len;
  if (last > mtu)
    last %= mtu;
  std::size_t padded = (last + kPaddingMultiple - 1) & ~(kPaddingMultiple - 1);
  if (padded > mtu)
    padded = mtu;
  return len + (padded > last ? padded - last : 0);
}

}  // namespace

struct Device::Impl {
  // The rate limiter's hash is keyed from our RNG so an attacker cannot aim sources at one
  // bucket chain.
  Impl(RandomSource& r, DeviceOptions o)
      : rng(r),
        options(o),
        mtu(o.mtu),
        isolate_peers(o.isolate_peers),
        rate_limiter(65536, (std::uint64_t{r.next_u32()} << 32) | r.next_u32()) {}

  RandomSource& rng;
  DeviceOptions options;
  std::atomic<std::uint32_t> mtu;
  std::atomic<bool> isolate_peers;  // options.isolate_peers, changeable (set_isolate_peers)

  mutable std::shared_mutex mu;
  bool has_key = false;
  crypto::PrivateKey private_key;
  crypto::PublicKey public_key;
  std::unordered_map<crypto::PublicKey, std::shared_ptr<Peer>> peers;
  std::unordered_map<PeerId, std::shared_ptr<Peer>> peers_by_id;
  PeerId next_peer_id = 1;
  AllowedIps allowed;
  EndpointBook endpoint_book;  // every peer's current endpoint address (for lane_of)
  CookieChecker cookie_checker;
  RateLimiter rate_limiter;

  mutable std::shared_mutex index_mu;
  std::unordered_map<std::uint32_t, IndexEntry> index;

  std::atomic<int> forced_load{-1};
  std::atomic<std::int64_t> load_window_start{0};
  std::atomic<std::uint32_t> load_window_count{0};
  std::atomic<std::int64_t> under_load_until{0};
  // The timer schedule (see the top of the file). Entry peer 0 is the device's own
  // housekeeping (rate limiter garbage collection, once a second while it holds sources).
  struct TimerEntry {
    MonoTime at;
    PeerId peer;
  };
  struct Later {
    bool operator()(const TimerEntry& a, const TimerEntry& b) const {
      return a.at > b.at || (a.at == b.at && a.peer > b.peer);
    }
  };
  static constexpr PeerId kHousekeeping = 0;
  std::mutex timer_mu;
  std::vector<TimerEntry> timer_heap;      // a min-heap under Later; guarded by timer_mu
  std::atomic<MonoTime> earliest{kNever};  // timer_heap's top, read without the lock
  std::atomic<bool> gc_scheduled{false};
  std::atomic<MonoTime> gc_at{kNever};  // the housekeeping entry's time (reference mode)
  std::atomic<std::uint64_t> timer_visits{0};

  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(Drop::kCount)> drops{};

  // ---- small helpers -------------------------------------------------------------------

  template <class R>
  R drop(Drop d) {
    drops[static_cast<std::size_t>(d)].fetch_add(1, std::memory_order_relaxed);
    R r;
    r.verdict = Verdict::kDrop;
    r.drop = d;
    return r;
  }

  Duration jitter() { return std::chrono::milliseconds(rng.uniform(kRekeyTimeoutJitterMaxMs)); }

  std::uint32_t register_index(const std::shared_ptr<Peer>& peer) {
    std::unique_lock lock(index_mu);
    for (;;) {
      const std::uint32_t idx = rng.next_u32();
      if (index.emplace(idx, IndexEntry{peer, nullptr}).second)
        return idx;
    }
  }
  void unregister_index(std::uint32_t idx) {
    std::unique_lock lock(index_mu);
    index.erase(idx);
  }
  void bind_index_to_keypair(std::uint32_t idx, const std::shared_ptr<Keypair>& kp) {
    std::unique_lock lock(index_mu);
    auto it = index.find(idx);
    if (it != index.end())
      it->second.keypair = kp;
  }
  std::optional<IndexEntry> lookup_index(std::uint32_t idx) const {
    std::shared_lock lock(index_mu);
    auto it = index.find(idx);
    if (it == index.end())
      return std::nullopt;
    return it->second;
  }

  void delete_keypair(std::shared_ptr<Keypair>& kp) {
    if (!kp)
      return;
    unregister_index(kp->local_index);
    kp.reset();
  }

  void clear_handshake(Peer& p) {
    if (p.stage == HandshakeStage::kInitiationCreated)
      unregister_index(p.handshake_local_index);
    p.handshake.clear();
    p.stage = HandshakeStage::kZeroed;
  }

  // True when our initiation wins over `initiator`'s crossing one: our public key is the
  // lower of the two (byte by byte, so both sides agree on it).
  bool keeps_own_initiation(const crypto::PublicKey& initiator) const {
    return public_key < initiator;
  }

  // Peer lock held. Every endpoint change goes through here so the book stays exact.
  void set_endpoint(Peer& p, const net::Path& to) {
    if (!p.endpoint || p.endpoint->remote.address != to.remote.address ||
        p.endpoint->transport != to.transport) {
      if (p.endpoint)
        endpoint_book.remove(p.endpoint->remote.address, p.endpoint->transport);
      endpoint_book.add(to.remote.address, to.transport);
    }
    p.endpoint = to;
  }

  // Handshake messages per second over the whole device; above the threshold the device is
  // under load for kUnderLoadAfterTime (wireguard-go uses a queue length; we have no queue, so
  // the arrival rate plays that role).
  void note_handshake_message(Now now) {
    const std::int64_t t = now.mono.time_since_epoch().count();
    std::int64_t start = load_window_start.load(std::memory_order_relaxed);
    if (t - start >= std::chrono::nanoseconds(1s).count()) {
      if (load_window_start.compare_exchange_strong(start, t))
        load_window_count.store(0);
    }
    if (load_window_count.fetch_add(1) + 1 > options.under_load_handshakes_per_second) {
      under_load_until.store(t + std::chrono::nanoseconds(kUnderLoadAfterTime).count());
    }
  }
  bool under_load(Now now) const {
    const int forced = forced_load.load();
    if (forced >= 0)
      return forced == 1;
    return now.mono.time_since_epoch().count() < under_load_until.load();
  }

  bool keypair_usable(const Keypair& kp, Now now) const {
    return kp.send_nonce.load(std::memory_order_relaxed) < kRejectAfterMessages &&
           now.mono - kp.created < kRejectAfterTime;
  }

  // ---- timer schedule --------------------------------------------------------------------

  void push_timer(MonoTime at, PeerId id) {
    std::lock_guard lock(timer_mu);
    timer_heap.push_back({at, id});
    std::push_heap(timer_heap.begin(), timer_heap.end(), Later{});
    earliest.store(timer_heap.front().at);
  }

  // Peer lock held. One atomic load and a compare unless `at` is earlier than the peer's entry.
  void schedule(Peer& p, MonoTime at) {
    if (at < p.scheduled_at.load(std::memory_order_relaxed)) {
      p.scheduled_at.store(at, std::memory_order_relaxed);
      push_timer(at, p.id);
    }
  }

  // Peer lock held. Every finite timer deadline is written here, so none is missed by tick().
  void set_timer(Peer& p, MonoTime& timer, MonoTime at) {
    timer = at;
    schedule(p, at);
  }

  static MonoTime earliest_timer(const Peer& p) {
    return std::min({p.timer_retransmit, p.timer_send_keepalive, p.timer_new_handshake,
                     p.timer_zero_keys, p.timer_persistent_keepalive});
  }

  // Device lock held (shared). Removes and returns the entries due at `now`, sorted by peer
  // (so timers fire in the same order whatever order they were scheduled in). Compacts the
  // heap first when stale entries are the majority, so it stays O(peers).
  std::vector<TimerEntry> pop_due(MonoTime now) {
    std::vector<TimerEntry> due;
    std::lock_guard lock(timer_mu);
    if (timer_heap.size() > 2 * peers_by_id.size() + 64) {
      std::erase_if(timer_heap, [&](const TimerEntry& e) {
        if (e.peer == kHousekeeping)
          return false;
        auto it = peers_by_id.find(e.peer);
        return it == peers_by_id.end() ||
               it->second->scheduled_at.load(std::memory_order_relaxed) != e.at;
      });
      std::make_heap(timer_heap.begin(), timer_heap.end(), Later{});
    }
    while (!timer_heap.empty() && timer_heap.front().at <= now) {
      std::pop_heap(timer_heap.begin(), timer_heap.end(), Later{});
      due.push_back(timer_heap.back());
      timer_heap.pop_back();
    }
    earliest.store(timer_heap.empty() ? kNever : timer_heap.front().at);
    std::sort(due.begin(), due.end(), [](const TimerEntry& a, const TimerEntry& b) {
      return a.peer < b.peer || (a.peer == b.peer && a.at < b.at);
    });
    return due;
  }

  // Once a second while the rate limiter holds sources (it only does under load).
  void schedule_gc(Now now) {
    if (!gc_scheduled.load(std::memory_order_relaxed) && !gc_scheduled.exchange(true)) {
      gc_at.store(now.mono + 1s, std::memory_order_relaxed);
      push_timer(now.mono + 1s, kHousekeeping);
    }
  }
  void run_housekeeping(Now now) {
    gc_at.store(kNever, std::memory_order_relaxed);
    gc_scheduled.store(false);
    rate_limiter.collect_garbage(now.mono);
    if (rate_limiter.size() > 0)
      schedule_gc(now);
  }

  // Peer lock held. Fires the peer's timers that are due at `now` (wireguard-go timers.go).
  void fire_due_timers(const std::shared_ptr<Peer>& peer, Now now, Outbox& outbox) {
    Peer& p = *peer;
    auto due = [&](MonoTime& t) {
      if (t == kNever || now.mono < t)
        return false;
      t = kNever;
      return true;
    };
    if (due(p.timer_zero_keys)) {
      // wireguard-go expiredZeroKeyMaterial: nothing heard for 3 × REJECT_AFTER_TIME.
      delete_keypair(p.previous);
      delete_keypair(p.current);
      delete_keypair(p.next);
      clear_handshake(p);
    }
    if (due(p.timer_retransmit)) {
      if (p.handshake_attempts > kMaxTimerHandshakes) {
        // Give up (REKEY_ATTEMPT_TIME passed): drop what waited, forget keys later.
        p.timer_send_keepalive = kNever;
        p.staged.clear();
        clear_handshake(p);
        if (p.timer_zero_keys == kNever)
          set_timer(p, p.timer_zero_keys, now.mono + kRejectAfterTime * 3);
      } else {
        ++p.handshake_attempts;
        if (p.endpoint)
          p.endpoint->local.reset();  // the sticky source may be stale
        send_initiation(peer, now, outbox, true);
      }
    }
    if (due(p.timer_new_handshake)) {
      // Data sent, nothing authenticated heard back for 15 s: renew the session.
      if (p.endpoint)
        p.endpoint->local.reset();
      send_initiation(peer, now, outbox, false);
    }
    if (due(p.timer_send_keepalive)) {
      send_keepalive(peer, now, outbox);
      if (p.need_another_keepalive) {
        p.need_another_keepalive = false;
        set_timer(p, p.timer_send_keepalive, now.mono + kKeepaliveTimeout);
      }
    }
    if (due(p.timer_persistent_keepalive) && p.persistent_keepalive > 0) {
      send_keepalive(peer, now, outbox);
    }
  }

  // ---- timers (wireguard-go timers.go names) ---------------------------------------------

  void timers_data_sent(Peer& p, Now now) {
    if (p.timer_new_handshake == kNever) {
      set_timer(p, p.timer_new_handshake, now.mono + kKeepaliveTimeout + kRekeyTimeout + jitter());
    }
  }
  void timers_data_received(Peer& p, Now now) {
    if (p.timer_send_keepalive == kNever) {
      set_timer(p, p.timer_send_keepalive, now.mono + kKeepaliveTimeout);
    } else {
      p.need_another_keepalive = true;
    }
  }
  void timers_any_authenticated_packet_sent(Peer& p) { p.timer_send_keepalive = kNever; }
  void timers_any_authenticated_packet_received(Peer& p) { p.timer_new_handshake = kNever; }
  void timers_handshake_initiated(Peer& p, Now now) {
    set_timer(p, p.timer_retransmit, now.mono + kRekeyTimeout + jitter());
  }
  void timers_handshake_complete(Peer& p, Now now) {
    p.timer_retransmit = kNever;
    p.handshake_attempts = 0;
    p.sent_last_minute_handshake = false;
    p.last_handshake_wall = now.wall;
  }
  void timers_session_derived(Peer& p, Now now) {
    set_timer(p, p.timer_zero_keys, now.mono + kRejectAfterTime * 3);
  }
  void timers_any_authenticated_packet_traversal(Peer& p, Now now) {
    if (p.persistent_keepalive > 0) {
      set_timer(p, p.timer_persistent_keepalive,
                now.mono + std::chrono::seconds(p.persistent_keepalive));
    }
  }

  // ---- sending -------------------------------------------------------------------------

  void send(Peer& p, Outbox& outbox, ConstBytes datagram) {
    outbox.push(*p.endpoint, datagram);
    p.tx_bytes.fetch_add(datagram.size(), std::memory_order_relaxed);
    p.tx_packets.fetch_add(1, std::memory_order_relaxed);
  }

  // Writes header + padded ciphertext into buf (IP packet at kSendHeadroom). Returns the
  // datagram length.
  std::size_t seal(const Keypair& kp, std::uint64_t nonce, Bytes buf, std::size_t len) {
    const std::size_t padded = padded_length(len, mtu.load(std::memory_order_relaxed));
    std::memset(buf.data() + kSendHeadroom + len, 0, padded - len);
    msg::write_header(buf.data(), kMessageTransport);
    store_le32(buf.data() + msg::kDataReceiver, kp.remote_index);
    store_le64(buf.data() + msg::kDataCounter, nonce);
    auto plain = buf.subspan(kSendHeadroom, padded);
    auto out = buf.subspan(kSendHeadroom, padded + kTagSize);
    if (!crypto::aead_seal(kp.send_key.span(), nonce, plain, {}, out))
      return 0;
    return kSendHeadroom + padded + kTagSize;
  }

  // Peer lock held. Encrypts one IP packet (or a keepalive when empty) with the current
  // keypair and sends it through the outbox; false when no usable keypair exists.
  bool send_packet_locked(Peer& p, ConstBytes packet, Now now, Outbox& outbox) {
    if (!p.current || !p.endpoint || !keypair_usable(*p.current, now))
      return false;
    const std::uint64_t nonce = p.current->send_nonce.fetch_add(1);
    if (nonce >= kRejectAfterMessages)
      return false;
    std::vector<std::uint8_t> buf(kSendHeadroom + packet.size() + kSendTailroom);
    if (!packet.empty())
      std::memcpy(buf.data() + kSendHeadroom, packet.data(), packet.size());
    const std::size_t n = seal(*p.current, nonce, buf, packet.size());
    if (n == 0)
      return false;
    send(p, outbox, ConstBytes(buf.data(), n));
    timers_any_authenticated_packet_traversal(p, now);
    timers_any_authenticated_packet_sent(p);
    if (!packet.empty())
      timers_data_sent(p, now);
    return true;
  }

  // Peer lock held. wireguard-go SendHandshakeInitiation.
  void send_initiation(const std::shared_ptr<Peer>& peer, Now now, Outbox& outbox, bool is_retry) {
    Peer& p = *peer;
    if (!is_retry)
      p.handshake_attempts = 0;
    if (!has_key || !p.static_static_ok || !p.endpoint)
      return;
    if (p.last_sent_handshake != kNever && now.mono - p.last_sent_handshake < kRekeyTimeout)
      return;

    clear_handshake(p);
    std::array<std::uint8_t, kInitiationSize> m{};
    const crypto::PrivateKey eph = crypto::generate_private_key(rng);
    const Tai64n ts = tai64n_from_wall(now.wall);
    noise::initialize(p.handshake, noise::as_bytes(noise::kIdentifier), p.public_key);
    if (!noise::write_message1(p.handshake, eph, public_key, p.public_key, p.static_static, ts,
                               std::span(m).subspan(msg::kInitEphemeral, noise::msg1_size(12)))) {
      p.handshake.clear();
      return;
    }
    p.handshake_local_index = register_index(peer);
    p.stage = HandshakeStage::kInitiationCreated;
    msg::write_header(m.data(), kMessageInitiation);
    store_le32(m.data() + msg::kInitSender, p.handshake_local_index);
    p.cookies.add_macs(m, now.mono);
    p.sent_initiation = m;
    p.last_sent_handshake = now.mono;
    p.initiation_sent = now.mono;

    timers_any_authenticated_packet_traversal(p, now);
    timers_any_authenticated_packet_sent(p);
    send(p, outbox, m);
    timers_handshake_initiated(p, now);
  }

  // Peer lock held. Sends what was staged, or starts a handshake when there is no session.
  void flush_staged(const std::shared_ptr<Peer>& peer, Now now, Outbox& outbox) {
    Peer& p = *peer;
    while (!p.staged.empty()) {
      if (!send_packet_locked(p, p.staged.front(), now, outbox)) {
        send_initiation(peer, now, outbox, false);
        return;
      }
      p.staged.pop_front();
    }
  }

  void send_keepalive(const std::shared_ptr<Peer>& peer, Now now, Outbox& outbox) {
    Peer& p = *peer;
    if (!p.staged.empty()) {
      flush_staged(peer, now, outbox);
      return;
    }
    if (!send_packet_locked(p, {}, now, outbox))
      send_initiation(peer, now, outbox, false);
  }

  void stage(Peer& p, ConstBytes packet) {
    if (p.staged.size() >= kMaxStagedPackets)
      p.staged.pop_front();
    p.staged.emplace_back(packet.begin(), packet.end());
  }

  // ---- receiving -----------------------------------------------------------------------

  // mac1, then (under load) mac2 / cookie reply / rate limit. Returns kNone to go on.
  Drop check_handshake_macs(const net::Path& from, ConstBytes m, std::uint32_t sender_index,
                            Now now, Outbox& outbox) {
    note_handshake_message(now);
    if (!cookie_checker.check_mac1(m))
      return Drop::kBadMac1;
    if (under_load(now)) {
      if (!cookie_checker.check_mac2(m, from.remote, now.mono)) {
        std::array<std::uint8_t, kCookieReplySize> reply{};
        cookie_checker.create_reply(m, sender_index, from.remote, now.mono, rng, reply);
        outbox.push(from, reply);
        return Drop::kCookieSent;
      }
      const bool admitted = rate_limiter.allow(from.remote.address, now.mono);
      schedule_gc(now);
      if (!admitted)
        return Drop::kRateLimited;
    }
    return Drop::kNone;
  }

  RecvResult consume_initiation(const net::Path& from, Bytes m, Now now, Outbox& outbox) {
    if (m.size() != kInitiationSize)
      return drop<RecvResult>(Drop::kBadSize);
    const std::uint32_t sender = load_le32(m.data() + msg::kInitSender);
    if (Drop d = check_handshake_macs(from, m, sender, now, outbox); d != Drop::kNone) {
      return drop<RecvResult>(d);
    }
    if (!has_key)
      return drop<RecvResult>(Drop::kNoPrivateKey);

    noise::State hs;
    noise::initialize(hs, noise::as_bytes(noise::kIdentifier), public_key);
    const auto body = ConstBytes(m).subspan(msg::kInitEphemeral, noise::msg1_size(12));
    crypto::PublicKey initiator;
    if (!noise::read_message1_static(hs, private_key, body, initiator)) {
      return drop<RecvResult>(Drop::kHandshakeFailed);
    }
    auto it = peers.find(initiator);
    if (it == peers.end())
      return drop<RecvResult>(Drop::kUnknownPeer);
    const std::shared_ptr<Peer>& peer = it->second;
    Peer& p = *peer;
    std::lock_guard lock(p.mu);
    if (!p.static_static_ok)
      return drop<RecvResult>(Drop::kHandshakeFailed);
    Tai64n ts{};
    if (!noise::read_message1_payload(hs, p.static_static, body, ts)) {
      return drop<RecvResult>(Drop::kHandshakeFailed);
    }
    // Replay and flood protection (whitepaper §5.1; wireguard-go ConsumeMessageInitiation).
    if (!tai64n_after(ts, p.last_timestamp))
      return drop<RecvResult>(Drop::kReplayedTimestamp);
    if (p.last_initiation_consumed != kNever &&
        now.mono - p.last_initiation_consumed <= kHandshakeInitiationRate) {
      return drop<RecvResult>(Drop::kInitiationFlood);
    }
    p.last_timestamp = ts;
    p.last_initiation_consumed = now.mono;
    // Simultaneous initiations. If each side answered the other's initiation, each would
    // discard its own pending handshake, so neither response would find one: both sides would
    // hold only an unconfirmed responder session until the 5 s retransmission (REKEY_TIMEOUT;
    // wireguard-go and the kernel behave so). The tie is broken by the keys instead: the side
    // with the lower public key keeps its initiation and drops the peer's; the other side
    // answers ours as usual, and exactly one handshake completes at once. Ours is sent once
    // more to where the peer's came from: if it was lost (a NAT that had no mapping for it yet),
    // the peer gets it now; if it arrived, the copy is a replay the peer drops.
    if (p.stage == HandshakeStage::kInitiationCreated && keeps_own_initiation(initiator)) {
      set_endpoint(p, from);
      p.rx_bytes.fetch_add(m.size(), std::memory_order_relaxed);
      p.rx_packets.fetch_add(1, std::memory_order_relaxed);
      timers_any_authenticated_packet_traversal(p, now);
      timers_any_authenticated_packet_received(p);
      send(p, outbox, p.sent_initiation);
      timers_any_authenticated_packet_sent(p);
      return drop<RecvResult>(Drop::kSimultaneousInitiation);
    }
    clear_handshake(p);
    p.handshake = hs;
    p.handshake_remote_index = sender;
    p.stage = HandshakeStage::kInitiationConsumed;
    set_endpoint(p, from);
    p.rx_bytes.fetch_add(m.size(), std::memory_order_relaxed);
    p.rx_packets.fetch_add(1, std::memory_order_relaxed);
    timers_any_authenticated_packet_traversal(p, now);
    timers_any_authenticated_packet_received(p);

    // Response.
    std::array<std::uint8_t, kResponseSize> r{};
    const crypto::PrivateKey eph = crypto::generate_private_key(rng);
    if (!noise::write_message2(p.handshake, eph, p.public_key, p.preshared_key, {},
                               std::span(r).subspan(msg::kRespEphemeral, noise::msg2_size(0)))) {
      clear_handshake(p);
      return drop<RecvResult>(Drop::kHandshakeFailed);
    }
    auto kp = std::make_shared<Keypair>();
    noise::split(p.handshake, kp->recv_key, kp->send_key);
    p.stage = HandshakeStage::kZeroed;
    kp->created = now.mono;
    kp->initiator = false;
    kp->remote_index = sender;
    kp->local_index = register_index(peer);
    bind_index_to_keypair(kp->local_index, kp);
    msg::write_header(r.data(), kMessageResponse);
    store_le32(r.data() + msg::kRespSender, kp->local_index);
    store_le32(r.data() + msg::kRespReceiver, sender);
    p.cookies.add_macs(r, now.mono);

    // The responder's new keypair waits in `next` until the initiator confirms it by sending
    // on it (whitepaper §5.4.6, key confirmation).
    delete_keypair(p.next);
    p.next = kp;
    delete_keypair(p.previous);
    timers_session_derived(p, now);
    p.last_sent_handshake = now.mono;
    timers_any_authenticated_packet_traversal(p, now);
    timers_any_authenticated_packet_sent(p);
    send(p, outbox, r);
    return drop<RecvResult>(Drop::kNone);
  }

  RecvResult consume_response(const net::Path& from, Bytes m, Now now, Outbox& outbox) {
    if (m.size() != kResponseSize)
      return drop<RecvResult>(Drop::kBadSize);
    const std::uint32_t sender = load_le32(m.data() + msg::kRespSender);
    if (Drop d = check_handshake_macs(from, m, sender, now, outbox); d != Drop::kNone) {
      return drop<RecvResult>(d);
    }
    if (!has_key)
      return drop<RecvResult>(Drop::kNoPrivateKey);
    const std::uint32_t receiver = load_le32(m.data() + msg::kRespReceiver);
    auto entry = lookup_index(receiver);
    if (!entry || entry->keypair)
      return drop<RecvResult>(Drop::kUnknownIndex);
    const std::shared_ptr<Peer> peer = entry->peer;
    Peer& p = *peer;
    std::lock_guard lock(p.mu);
    if (p.stage != HandshakeStage::kInitiationCreated || p.handshake_local_index != receiver) {
      return drop<RecvResult>(Drop::kUnknownIndex);
    }
    // Work on a copy so a forged response cannot disturb the pending handshake.
    noise::State hs = p.handshake;
    if (!noise::read_message2(hs, private_key, p.preshared_key,
                              ConstBytes(m).subspan(msg::kRespEphemeral, noise::msg2_size(0)),
                              {})) {
      return drop<RecvResult>(Drop::kHandshakeFailed);
    }
    auto kp = std::make_shared<Keypair>();
    noise::split(hs, kp->send_key, kp->recv_key);
    p.handshake.clear();
    p.stage = HandshakeStage::kZeroed;
    kp->created = now.mono;
    kp->initiator = true;
    kp->local_index = receiver;
    kp->remote_index = sender;
    bind_index_to_keypair(receiver, kp);
    p.handshake_rtt = now.mono - p.initiation_sent;

    // wireguard-go BeginSymmetricSession, initiator side.
    if (p.next) {
      delete_keypair(p.previous);
      p.previous = std::move(p.next);
      delete_keypair(p.current);
    } else {
      delete_keypair(p.previous);
      p.previous = std::move(p.current);
    }
    p.current = kp;

    set_endpoint(p, from);
    p.rx_bytes.fetch_add(m.size(), std::memory_order_relaxed);
    p.rx_packets.fetch_add(1, std::memory_order_relaxed);
    timers_any_authenticated_packet_traversal(p, now);
    timers_any_authenticated_packet_received(p);
    timers_session_derived(p, now);
    timers_handshake_complete(p, now);
    // Confirm the session to the responder at once: staged data, or a keepalive.
    send_keepalive(peer, now, outbox);
    return drop<RecvResult>(Drop::kNone);
  }

  RecvResult consume_cookie_reply(Bytes m, Now now) {
    if (m.size() != kCookieReplySize)
      return drop<RecvResult>(Drop::kBadSize);
    auto entry = lookup_index(load_le32(m.data() + msg::kCookieReceiver));
    if (!entry)
      return drop<RecvResult>(Drop::kUnknownIndex);
    Peer& p = *entry->peer;
    std::lock_guard lock(p.mu);
    if (!p.cookies.consume_reply(m, now.mono))
      return drop<RecvResult>(Drop::kBadCookieReply);
    return drop<RecvResult>(Drop::kNone);
  }

  RecvResult consume_transport(const net::Path& from, Bytes m, Now now, Outbox& outbox) {
    if (m.size() < kKeepaliveSize)
      return drop<RecvResult>(Drop::kTooShort);
    auto entry = lookup_index(load_le32(m.data() + msg::kDataReceiver));
    if (!entry || !entry->keypair)
      return drop<RecvResult>(Drop::kUnknownIndex);
    const std::shared_ptr<Keypair>& kp = entry->keypair;
    const std::uint64_t counter = load_le64(m.data() + msg::kDataCounter);
    if (counter >= kRejectAfterMessages)
      return drop<RecvResult>(Drop::kReplayedCounter);
    if (now.mono - kp->created >= kRejectAfterTime)
      return drop<RecvResult>(Drop::kExpiredKeypair);

    {
      // A counter the window already holds (a replay) or has passed is dropped before the AEAD
      // open: a replay flood then costs a lookup, not a decryption, per packet. Nothing changes
      // here; the window moves only after authentication, below.
      std::lock_guard lock(kp->replay_mu);
      if (!kp->replay.would_accept(counter, kRejectAfterMessages))
        return drop<RecvResult>(Drop::kReplayedCounter);
    }
    const std::size_t plain_len = m.size() - kKeepaliveSize;
    if (!crypto::aead_open(kp->recv_key.span(), counter, m.subspan(kTransportHeaderSize), {},
                           m.subspan(kTransportHeaderSize, plain_len))) {
      return drop<RecvResult>(Drop::kDecryptFailed);
    }
    {
      std::lock_guard lock(kp->replay_mu);
      if (!kp->replay.check_and_update(counter, kRejectAfterMessages)) {
        return drop<RecvResult>(Drop::kReplayedCounter);
      }
    }

    const std::shared_ptr<Peer>& peer = entry->peer;
    Peer& p = *peer;
    {
      std::lock_guard lock(p.mu);
      // Key confirmation: the first packet on `next` makes it current (responder side).
      if (p.next == kp) {
        p.handshake_rtt = now.mono - kp->created;  // our response left when kp was made
        delete_keypair(p.previous);
        p.previous = std::move(p.current);
        p.current = std::move(p.next);
        timers_handshake_complete(p, now);
        flush_staged(peer, now, outbox);
      }
      set_endpoint(p, from);  // roaming: only authenticated packets move the endpoint
      p.rx_bytes.fetch_add(m.size(), std::memory_order_relaxed);
      p.rx_packets.fetch_add(1, std::memory_order_relaxed);
      timers_any_authenticated_packet_traversal(p, now);
      timers_any_authenticated_packet_received(p);
      // wireguard-go keepKeyFreshReceiving: the initiator renews shortly before expiry.
      if (!p.sent_last_minute_handshake && p.current == kp && kp->initiator &&
          now.mono - kp->created > kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
        p.sent_last_minute_handshake = true;
        send_initiation(peer, now, outbox, false);
      }
      if (plain_len > 0)
        timers_data_received(p, now);
    }
    if (plain_len == 0)
      return drop<RecvResult>(Drop::kNone);  // keepalive

    auto info = net::parse_ip_header(ConstBytes(m).subspan(kTransportHeaderSize, plain_len));
    if (!info)
      return drop<RecvResult>(Drop::kBadInnerPacket);
    // Cryptokey routing, inbound: the inner source must belong to the sending peer.
    auto owner = allowed.lookup(info->source);
    if (!owner || *owner != p.id)
      return drop<RecvResult>(Drop::kAllowedIpsMismatch);
    // A hub that isolates its peers delivers nothing addressed to another peer.
    if (isolate_peers.load(std::memory_order_relaxed)) {
      if (auto dst = allowed.lookup(info->destination); dst && *dst != p.id)
        return drop<RecvResult>(Drop::kPeerIsolated);
    }
    RecvResult r;
    r.verdict = Verdict::kToTun;
    r.offset = kTransportHeaderSize;
    r.length = info->total_length;
    return r;
  }

  // ---- configuration (device lock held exclusively) --------------------------------------

  void remove_peer(const std::shared_ptr<Peer>& peer) {
    {
      std::lock_guard lock(peer->mu);
      clear_handshake(*peer);
      delete_keypair(peer->previous);
      delete_keypair(peer->current);
      delete_keypair(peer->next);
      peer->staged.clear();
      if (peer->endpoint)
        endpoint_book.remove(peer->endpoint->remote.address, peer->endpoint->transport);
      peer->endpoint.reset();
      peer->scheduled_at.store(kNever);  // its heap entries are skipped (no such peer)
    }
    allowed.remove_peer(peer->id);
    peers_by_id.erase(peer->id);
    peers.erase(peer->public_key);
  }

  void compute_static_static(Peer& p) {
    p.static_static_ok = has_key && crypto::x25519(private_key, p.public_key, p.static_static);
    if (!p.static_static_ok)
      p.static_static.clear();
  }

  // wireguard-go ExpireCurrentKeypairs: a key change makes existing sessions unusable for
  // sending, so the next packet starts a handshake under the new identity.
  void expire_current_keypairs(Peer& p) {
    clear_handshake(p);
    p.last_sent_handshake = kNever;
    if (p.current)
      p.current->send_nonce.store(kRejectAfterMessages);
    if (p.next)
      p.next->send_nonce.store(kRejectAfterMessages);
  }
};

Device::Device(RandomSource& rng, DeviceOptions options)
    : impl_(std::make_unique<Impl>(rng, options)) {}

Device::~Device() = default;

void Device::set_isolate_peers(bool on) {
  impl_->isolate_peers.store(on);
}

void Device::set_mtu(std::uint32_t mtu) {
  impl_->mtu.store(mtu);
}

void Device::forget_all_sources() {
  std::shared_lock dlock(impl_->mu);
  for (auto& [id, peer] : impl_->peers_by_id) {
    std::lock_guard lock(peer->mu);
    if (peer->endpoint) {
      peer->endpoint->local.reset();
      peer->endpoint->ifindex = 0;
    }
  }
}

void Device::forget_source(const net::Path& path) {
  std::shared_lock dlock(impl_->mu);
  for (auto& [id, peer] : impl_->peers_by_id) {
    std::lock_guard lock(peer->mu);
    if (peer->endpoint && peer->endpoint->remote == path.remote &&
        peer->endpoint->local == path.local) {
      peer->endpoint->local.reset();
      peer->endpoint->ifindex = 0;
    }
  }
}
std::uint32_t Device::mtu() const {
  return impl_->mtu.load();
}

void Device::force_under_load(std::optional<bool> on) {
  impl_->forced_load.store(on ? (*on ? 1 : 0) : -1);
}

std::uint64_t Device::drop_count(Drop d) const {
  return impl_->drops[static_cast<std::size_t>(d)].load(std::memory_order_relaxed);
}

std::size_t Device::peer_count() const {
  std::shared_lock lock(impl_->mu);
  return impl_->peers.size();
}

std::optional<crypto::PublicKey> Device::public_key() const {
  std::shared_lock lock(impl_->mu);
  if (!impl_->has_key)
    return std::nullopt;
  return impl_->public_key;
}

SendResult Device::encapsulate(Bytes buf, std::size_t packet_len, Now now, Outbox& outbox) {
  Impl& d = *impl_;
  if (packet_len > kMaxContentSize || buf.size() < kSendHeadroom + packet_len + kSendTailroom) {
    return d.drop<SendResult>(Drop::kTooLarge);
  }
  const ConstBytes packet = buf.subspan(kSendHeadroom, packet_len);
  auto dst = net::ip_destination(packet);
  if (!dst)
    return d.drop<SendResult>(Drop::kBadInnerPacket);

  std::shared_lock dlock(d.mu);
  auto owner = d.allowed.lookup(*dst);
  if (!owner)
    return d.drop<SendResult>(Drop::kNoRoute);
  auto pit = d.peers_by_id.find(*owner);
  if (pit == d.peers_by_id.end())
    return d.drop<SendResult>(Drop::kNoRoute);
  const std::shared_ptr<Peer>& peer = pit->second;
  Peer& p = *peer;

  std::shared_ptr<Keypair> kp;
  std::uint64_t nonce = 0;
  net::Path to;
  {
    std::lock_guard lock(p.mu);
    if (!d.has_key)
      return d.drop<SendResult>(Drop::kNoPrivateKey);
    if (!p.endpoint)
      return d.drop<SendResult>(Drop::kNoEndpoint);
    // A datagram for this peer's own endpoint, routed into this peer's tunnel, would come back
    // encrypted to the same place forever (an endpoint reachable only through itself). Onion
    // routing through another peer stays allowed.
    if (auto ports = net::udp_ports(packet); ports &&
                                             ports->destination == p.endpoint->remote.port &&
                                             *dst == p.endpoint->remote.address) {
      return d.drop<SendResult>(Drop::kRoutingLoop);
    }
    if (!p.staged.empty())
      d.flush_staged(peer, now, outbox);
    bool usable = p.staged.empty() && p.current && d.keypair_usable(*p.current, now);
    if (usable) {
      nonce = p.current->send_nonce.fetch_add(1);
      usable = nonce < kRejectAfterMessages;
    }
    if (!usable) {
      d.stage(p, packet);
      d.send_initiation(peer, now, outbox, false);
      SendResult r;
      r.verdict = Verdict::kQueued;
      return r;
    }
    kp = p.current;
    to = *p.endpoint;
    d.timers_any_authenticated_packet_traversal(p, now);
    d.timers_any_authenticated_packet_sent(p);
    d.timers_data_sent(p, now);
    // wireguard-go keepKeyFreshSending.
    if (nonce > kRekeyAfterMessages ||
        (kp->initiator && now.mono - kp->created > kRekeyAfterTime)) {
      d.send_initiation(peer, now, outbox, false);
    }
  }
  const std::size_t n = d.seal(*kp, nonce, buf, packet_len);
  if (n == 0)
    return d.drop<SendResult>(Drop::kTooLarge);
  p.tx_bytes.fetch_add(n, std::memory_order_relaxed);
  p.tx_packets.fetch_add(1, std::memory_order_relaxed);
  SendResult r;
  r.verdict = Verdict::kToNetwork;
  r.length = n;
  r.to = to;
  return r;
}

RecvResult Device::decapsulate(const net::Path& from, Bytes datagram, Now now, Outbox& outbox) {
  Impl& d = *impl_;
  auto type = msg::type_of(datagram);
  if (!type)
    return d.drop<RecvResult>(Drop::kTooShort);
  std::shared_lock dlock(d.mu);
  switch (*type) {
    case kMessageTransport:
      return d.consume_transport(from, datagram, now, outbox);
    case kMessageInitiation:
      return d.consume_initiation(from, datagram, now, outbox);
    case kMessageResponse:
      return d.consume_response(from, datagram, now, outbox);
    case kMessageCookieReply:
      return d.consume_cookie_reply(datagram, now);
    default:
      return d.drop<RecvResult>(Drop::kUnknownType);
  }
}

const char* lane_name(Lane l) {
  switch (l) {
    case Lane::kKnownEndpoint:
      return "known_endpoint";
    case Lane::kWithMac2:
      return "with_mac2";
    case Lane::kOther:
      return "other";
    case Lane::kDirect:
      return "direct";
  }
  return "?";
}

Lane Device::lane_of(const net::Path& from, ConstBytes datagram, MonoTime now) const {
  const auto type = msg::type_of(datagram);
  if (!type)
    return Lane::kDirect;
  if (!(*type == kMessageInitiation && datagram.size() == kInitiationSize) &&
      !(*type == kMessageResponse && datagram.size() == kResponseSize)) {
    return Lane::kDirect;
  }
  if (impl_->endpoint_book.contains(from.remote.address, from.transport))
    return Lane::kKnownEndpoint;
  const ConstBytes mac2 = datagram.subspan(msg::mac2_offset(*type), crypto::kMacSize);
  const bool has_mac2 =
      std::any_of(mac2.begin(), mac2.end(), [](std::uint8_t b) { return b != 0; });
  // A non-zero mac2 costs nothing to forge: only one valid for the current cookie secret earns
  // the lane (issue 12). check_mac2 takes the checker's own lock and calls nothing out.
  if (has_mac2 && impl_->cookie_checker.check_mac2(datagram, from.remote, now))
    return Lane::kWithMac2;
  return Lane::kOther;
}

void Device::tick(Now now, Outbox& outbox) {
  Impl& d = *impl_;
  std::shared_lock dlock(d.mu);
  const auto due = d.pop_due(now.mono);
  if (d.options.tick_visits_every_peer) {
    // The reference behaviour (every peer, in id order), for differential tests.
    for (const auto& e : due) {
      if (e.peer == Impl::kHousekeeping)
        d.run_housekeeping(now);
    }
    std::vector<std::shared_ptr<Peer>> all;
    for (const auto& [id, peer] : d.peers_by_id)
      all.push_back(peer);
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->id < b->id; });
    for (const auto& peer : all) {
      std::lock_guard lock(peer->mu);
      d.timer_visits.fetch_add(1, std::memory_order_relaxed);
      d.fire_due_timers(peer, now, outbox);
    }
    return;
  }
  for (const auto& e : due) {
    if (e.peer == Impl::kHousekeeping) {
      d.run_housekeeping(now);
      continue;
    }
    auto it = d.peers_by_id.find(e.peer);
    if (it == d.peers_by_id.end())
      continue;  // removed since
    const std::shared_ptr<Peer>& peer = it->second;
    Peer& p = *peer;
    std::lock_guard lock(p.mu);
    if (p.scheduled_at.load(std::memory_order_relaxed) != e.at)
      continue;  // stale: the peer was scheduled earlier since, or visited already
    d.timer_visits.fetch_add(1, std::memory_order_relaxed);
    // scheduled_at stays at e.at (<= now) while the timers fire, so the hooks they call, which
    // set deadlines after now, push nothing; the peer's one next deadline is pushed below.
    d.fire_due_timers(peer, now, outbox);
    p.scheduled_at.store(kNever, std::memory_order_relaxed);
    if (const MonoTime next = Impl::earliest_timer(p); next != kNever)
      d.schedule(p, next);
  }
}

MonoTime Device::next_deadline() const {
  const Impl& d = *impl_;
  if (d.options.tick_visits_every_peer) {
    std::shared_lock dlock(d.mu);
    MonoTime next = d.gc_at.load(std::memory_order_relaxed);
    for (const auto& [id, peer] : d.peers_by_id) {
      std::lock_guard lock(peer->mu);
      next = std::min(next, Impl::earliest_timer(*peer));
    }
    return next;
  }
  return d.earliest.load();  // sequentially consistent: the engine's wake-up relies on it
}

std::uint64_t Device::timer_visits() const {
  return impl_->timer_visits.load(std::memory_order_relaxed);
}

Status Device::apply(const ConfigDelta& delta, Now now, Outbox& outbox) {
  Impl& d = *impl_;
  // Validate everything first: a delta is applied whole or not at all.
  {
    std::vector<crypto::PublicKey> seen;
    for (const auto& pd : delta.peers) {
      if (std::find(seen.begin(), seen.end(), pd.public_key) != seen.end()) {
        return Error(EINVAL, "public_key " + pd.public_key.to_base64() + " appears twice");
      }
      seen.push_back(pd.public_key);
      for (const auto& pfx : pd.allowed_ips_add) {
        if (pfx.length > pfx.max_length())
          return Error(EINVAL, "allowed_ip " + pfx.to_string());
      }
    }
  }
  std::unique_lock dlock(d.mu);
  std::size_t new_peers = 0;
  for (const auto& pd : delta.peers) {
    if (!pd.remove && !pd.update_only && !d.peers.count(pd.public_key))
      ++new_peers;
  }
  if (!delta.replace_peers && d.peers.size() + new_peers > kMaxPeers) {
    return Error(ENOSPC, "too many peers");
  }

  if (delta.private_key) {
    const bool remove = delta.private_key->is_zero();
    crypto::PrivateKey key = *delta.private_key;
    crypto::PublicKey pub;
    if (!remove) {
      crypto::clamp(key);
      pub = crypto::derive_public_key(key);
    }
    const bool changed = remove ? d.has_key : (!d.has_key || pub != d.public_key);
    if (changed) {
      d.has_key = !remove;
      d.private_key = key;
      d.public_key = pub;
      d.cookie_checker.set_public_key(pub);
      // A peer with our own public key would be talking to ourselves: wireguard-go drops it.
      if (!remove) {
        if (auto it = d.peers.find(pub); it != d.peers.end())
          d.remove_peer(it->second);
      }
      for (auto& [id, peer] : d.peers_by_id) {
        std::lock_guard lock(peer->mu);
        d.compute_static_static(*peer);
        d.expire_current_keypairs(*peer);
      }
    }
  }
  if (delta.replace_peers) {
    while (!d.peers.empty())
      d.remove_peer(d.peers.begin()->second);
  }
  for (const auto& pd : delta.peers) {
    if (d.has_key && pd.public_key == d.public_key)
      continue;  // ourselves: ignored
    auto it = d.peers.find(pd.public_key);
    if (pd.remove) {
      if (it != d.peers.end())
        d.remove_peer(it->second);
      continue;
    }
    if (it == d.peers.end()) {
      if (pd.update_only)
        continue;
      auto peer = std::make_shared<Peer>();
      peer->id = d.next_peer_id++;
      peer->public_key = pd.public_key;
      peer->cookies.set_peer_public_key(pd.public_key);
      d.compute_static_static(*peer);
      it = d.peers.emplace(pd.public_key, peer).first;
      d.peers_by_id.emplace(peer->id, peer);
    }
    const std::shared_ptr<Peer>& peer = it->second;
    Peer& p = *peer;
    std::lock_guard lock(p.mu);
    if (pd.preshared_key)
      p.preshared_key = *pd.preshared_key;
    if (pd.endpoint) {
      const bool moved = !p.endpoint || p.endpoint->remote != *pd.endpoint ||
                         p.endpoint->transport != pd.transport;
      d.set_endpoint(p, net::Path{*pd.endpoint, std::nullopt, 0, pd.transport});
      // A handshake under way and no session: the initiation goes to the new endpoint now,
      // not at the next retransmission (REKEY_TIMEOUT), so a mesh node's next candidate or the
      // relay is tried at once (docs/MESH.md, "Hole punching"). Bounded by how often the
      // configuration moves the endpoint; the retry count and its give-up are kept.
      if (moved && !p.current && p.stage == HandshakeStage::kInitiationCreated) {
        p.last_sent_handshake = kNever;
        d.send_initiation(peer, now, outbox, true);
      }
    }
    if (pd.initiate_handshake && d.has_key && p.endpoint) {
      p.last_sent_handshake = kNever;  // not held back by REKEY_TIMEOUT: the owner asked now
      d.send_initiation(peer, now, outbox, false);
    }
    if (pd.replace_allowed_ips)
      d.allowed.remove_peer(p.id);
    for (const auto& pfx : pd.allowed_ips_remove)
      d.allowed.remove(pfx.canonical(), p.id);
    for (const auto& pfx : pd.allowed_ips_add)
      d.allowed.insert(pfx.canonical(), p.id);
    if (pd.persistent_keepalive) {
      const bool turned_on = p.persistent_keepalive == 0 && *pd.persistent_keepalive > 0;
      p.persistent_keepalive = *pd.persistent_keepalive;
      if (p.persistent_keepalive == 0)
        p.timer_persistent_keepalive = kNever;  // its heap entry, if any, fires as a no-op
      // wireguard-go sends one keepalive at once when persistent keepalive is switched on.
      if (turned_on && d.has_key && p.endpoint)
        d.send_keepalive(peer, now, outbox);
    }
  }
  return {};
}

DeviceSnapshot Device::snapshot() const {
  const Impl& d = *impl_;
  std::shared_lock dlock(d.mu);
  DeviceSnapshot s;
  if (d.has_key)
    s.private_key = d.private_key;
  std::vector<std::shared_ptr<Peer>> ordered;
  ordered.reserve(d.peers_by_id.size());
  for (const auto& [id, peer] : d.peers_by_id)
    ordered.push_back(peer);
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  for (const auto& peer : ordered) {
    Peer& p = *peer;
    std::lock_guard lock(p.mu);
    PeerSnapshot ps;
    ps.public_key = p.public_key;
    ps.preshared_key = p.preshared_key;
    if (p.endpoint) {
      ps.endpoint = p.endpoint->remote;
      ps.endpoint_transport = p.endpoint->transport;
    }
    const auto wall = p.last_handshake_wall.time_since_epoch().count();
    ps.last_handshake_sec = wall / 1000000000;
    ps.last_handshake_nsec = wall % 1000000000;
    ps.rx_bytes = p.rx_bytes.load();
    ps.tx_bytes = p.tx_bytes.load();
    ps.rx_packets = p.rx_packets.load();
    ps.tx_packets = p.tx_packets.load();
    ps.persistent_keepalive = p.persistent_keepalive;
    ps.allowed_ips = d.allowed.prefixes_of(p.id);
    ps.has_session = p.current != nullptr;
    ps.handshake_rtt_usec =
        std::chrono::duration_cast<std::chrono::microseconds>(p.handshake_rtt).count();
    s.peers.push_back(std::move(ps));
  }
  return s;
}

}  // namespace warren::wg
