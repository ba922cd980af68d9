// The data plane: share-nothing workers moving batches between a TUN queue and a UDP bind.
//
//          ┌──────────── worker 0 (thread + epoll) ─────────────┐
//   TUN q0 ─► read ≤128 ─► Device::encapsulate (in place) ─► sendmmsg ─► bind 0 ─┐
//   TUN q0 ◄─ write ◄──── Device::decapsulate (in place) ◄── recvmmsg ◄─ bind 0 ◄┤ UDP port P
//          │                                       handshakes │ (lane_of)       │ (SO_REUSEPORT)
//          │  HandshakeQueue ◄──── bounded lanes, early drop ◄┘                 │
//          │        └─► ≤64 a round ─► Device::decapsulate ─► replies, sendmmsg │
//          │  timerfd ─► Device::tick      link monitor ─► MTU, deletion        │
//          └────────────────────────────────────────────────────┘               │
//          ┌──────────── worker 1 ... n-1: the same, without timers ──────┐     │
//   TUN qi ─► ... ─► bind i ──────────────────────────────────────────────┴─────┘
//   Added transports (PathTransport, dataplane/transport.h): worker 0 receives from them; any
//   worker sends a run of datagrams whose Path::transport is theirs through them.
//   STUN shares the UDP sockets (mesh endpoint discovery): in the receive batch, a datagram
//   whose first four bytes are not a WireGuard header (type 1..4, three zero bytes: one 32-bit
//   load and compare, the only cost on the data path) is offered to the StunSink if
//   stun::is_stun holds; the rest goes on to the Device unchanged (which drops non-WireGuard
//   input and counts it). send_datagram() posts a STUN request to worker 0's mailbox.
//
// Ordering contract
//   * Outgoing: the kernel steers each inner flow (by its hash) to one TUN queue, so one
//     worker reads, encrypts and sends that flow's packets in order. Different flows to the
//     same peer may run on different workers; their nonces come from the keypair's atomic
//     counter, so they can leave slightly out of nonce order, well inside the 8128-packet
//     replay window (as with wireguard-go's parallel encryption).
//   * Incoming: SO_REUSEPORT hashes the remote 4-tuple to one bind, so all of one peer's
//     datagrams (from one endpoint) are received and decrypted (replay check included) in
//     order by one worker, which writes them to its own TUN queue. With spread_flows, each
//     decrypted packet is written to the TUN queue of its inner flow's hash instead: by this
//     worker, or handed (copied, in order) to that queue's worker. A flow
//     thus always takes one path and keeps its order, and since the kernel's TUN flow table
//     sends a flow's outgoing packets to the queue its incoming ones were written to, one
//     peer's flows spread their TUN writes and their encryption over all workers. A roaming
//     peer may move to another worker; packets in flight across the move are ordered by the
//     replay window only.
//   * Run to completion: a worker finishes a batch (read → crypto → write) before looking at
//     the next source; level-triggered readiness makes busy sources take turns.
//   * Handshake messages (types 1 and 2 of the right size) do not run in the receive batch:
//     they are copied into the worker's HandshakeQueue (a full lane drops them on arrival) and
//     handled after it, at most kHandshakeBudget per loop round, best lane first (wg::Lane).
//     Receiving, and so established peers' data, never waits behind handshake work; under a
//     flood the excess is dropped in user space at the cost of a copy instead of in a full
//     socket buffer, where it would take data packets with it.
//   * The Device never calls out: what a call produces besides its verdict (responses, cookie
//     replies, keepalives, initiations, staged packets) is appended to the worker's wg::Outbox
//     and sent through the worker's own socket once the call returned, in the order produced:
//     after a TUN batch's encapsulation, before that batch's packets (staged packets are older);
//     after a receive batch; after a round of queued handshakes (one sendmmsg per kMaxBatch);
//     after a tick. Only then are refused sticky sources forgotten (Device::forget_source),
//     which would deadlock from inside a Device call that holds the peer's lock.
//   * Timers: worker 0 runs Device::tick at the device's next deadline (the top of its timer
//     heap, an atomic load). A packet on any worker may make that deadline earlier: after each
//     loop round a worker compares it with the time worker 0's timer is armed for and, when
//     earlier, worker 0 re-arms (its own round) or is woken (another worker's). No periodic
//     tick: an idle interface sleeps until its next timer.
//   * Configuration: apply() runs on the UAPI thread. Device state is the Device's business
//     (it locks internally); sockets are per worker, so a listen_port change opens the new
//     binds first (failure ⇒ EADDRINUSE, nothing changed) and then hands each worker its new
//     bind through its mailbox; the old bind is closed by the worker that owned it. Datagrams
//     the Device emits during apply() are collected and queued to worker 0's mailbox after
//     the new binds are installed, so they leave from the new port.
//
// No allocation per packet: each worker owns 2 × kMaxBatch buffers of 64 KiB (allocated
// uninitialised, so only the bytes packets touch are ever paged in) plus fixed arrays of
// views, sizes, paths and outgoing datagrams; its inbox of handed-over packets reuses its byte
// vectors and is bounded (kInboxMaxPackets, kInboxMaxBytes).
#include "dataplane/engine.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "crypto/aead.h"
#include "dataplane/handshake_queue.h"
#include "mesh/stun.h"
#include "platform/event_loop.h"
#include "platform/log.h"
#include "wg/constants.h"

namespace warren::dataplane {

using platform::BatchResult;
using platform::kMaxBatch;
using platform::kMaxPacketSize;
using platform::OutDatagram;

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kNone:
      return "running";
    case StopReason::kRequested:
      return "requested";
    case StopReason::kInterfaceGone:
      return "interface deleted";
    case StopReason::kFatalError:
      return "fatal error";
  }
  return "?";
}

namespace {

constexpr std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

// A TUN slot: header room, the largest IP packet, and room for padding + tag.
constexpr std::size_t kTunSlot =
    round_up(wg::kSendHeadroom + kMaxPacketSize + wg::kSendTailroom, 64);
constexpr std::size_t kUdpSlot = round_up(kMaxPacketSize, 64);

// Decrypted packets handed to another worker wait in its inbox; past these bounds (the other
// worker is not keeping up) further ones are dropped, as a full NIC ring would.
constexpr std::size_t kInboxMaxPackets = 1024;
constexpr std::size_t kInboxMaxBytes = 4 << 20;

// Handshake messages waiting per worker, per lane (wg::Lane order: known endpoints, with mac2,
// the rest): about 300 KiB a worker. The flood lane holds ~25 ms of what one worker answers
// under a flood; wireguard-go keeps 4096 for a whole device.
constexpr std::array<std::size_t, wg::kHandshakeLanes> kHandshakeLaneSlots = {256, 256, 1024};
// Handshake messages a worker handles per round of its loop, between two receive batches: small
// enough that the sockets are drained between rounds (a round then costs well under a
// millisecond even when each message is a cookie reply), large enough to batch the replies.
// After a full receive batch the socket is behind (the worker lost its core for a while, or
// the flood outruns it): receiving then comes first, and only a quarter of that is spent.
constexpr std::size_t kHandshakeBudget = 64;
constexpr std::size_t kHandshakeBudgetBacklogged = kHandshakeBudget / 4;

// A hash of an IP packet's flow (addresses, protocol, and TCP/UDP/SCTP ports of an IPv4 packet
// or an IPv6 packet without extension headers). Every packet of one flow gets the same value;
// malformed packets hash to 0 (one worker, and the TUN rejects them anyway).
std::uint32_t flow_hash(ConstBytes p) {
  std::uint32_t h = 2166136261u;
  auto mix = [&h](const std::uint8_t* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      h = (h ^ b[i]) * 16777619u;
  };
  if (p.size() >= 20 && (p[0] >> 4) == 4) {
    const std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0f) * 4;
    const std::uint8_t proto = p[9];
    mix(p.data() + 12, 8);
    mix(&proto, 1);
    const bool first_fragment = (load_be16(p.data() + 6) & 0x1fff) == 0;
    if ((proto == 6 || proto == 17 || proto == 132) && first_fragment && ihl >= 20 &&
        p.size() >= ihl + 4) {
      mix(p.data() + ihl, 4);
    }
    return h;
  }
  if (p.size() >= 40 && (p[0] >> 4) == 6) {
    const std::uint8_t next = p[6];
    mix(p.data() + 8, 32);
    mix(&next, 1);
    if ((next == 6 || next == 17 || next == 132) && p.size() >= 44)
      mix(p.data() + 40, 4);
    return h;
  }
  return 0;
}

// True when `d` starts like a WireGuard message: a type byte 1..4 and three zero bytes, i.e.
// the little-endian 32-bit word is 1..4. One load and one compare per datagram.
inline bool wireguard_shaped(ConstBytes d) {
  if (d.size() < 4)
    return false;
  std::uint32_t word;
  std::memcpy(&word, d.data(), 4);
  if constexpr (std::endian::native == std::endian::big)
    word = __builtin_bswap32(word);
  return word - 1u < 4u;
}

}  // namespace

class Worker {
 public:
  Worker(Engine& engine, std::size_t index, std::unique_ptr<platform::UdpBind> bind)
      : engine_(engine),
        index_(index),
        bind_(std::move(bind)),
        handshakes_(kHandshakeLaneSlots),
        tun_memory_(new std::uint8_t[kTunSlot * kMaxBatch]),
        udp_memory_(new std::uint8_t[kUdpSlot * kMaxBatch]) {
    for (std::size_t i = 0; i < kMaxBatch; ++i) {
      tun_views_[i] = Bytes(tun_memory_.get() + i * kTunSlot, kTunSlot);
      udp_views_[i] = Bytes(udp_memory_.get() + i * kUdpSlot, kUdpSlot);
    }
  }

  // ---- threaded mode -------------------------------------------------------------------

  // Called on the owner's thread before the worker thread starts.
  void create_loop() {
    auto loop = platform::make_event_loop();
    if (!loop.ok())
      throw std::system_error(loop.code(), std::generic_category(), loop.error().op);
    loop_ = std::move(*loop);
  }

  void run() {
    platform::EventLoop& loop = *loop_;
    loop.set_wake_handler([this] { process_mailbox(); });
    check(loop.add(engine_.tun_->poll_fd(index_), platform::kReadable,
                   [this](std::uint32_t) { process_tun(); }));
    register_bind();
    if (index_ == 0) {
      // Worker 0 receives from the added transports (they are few and their peers' data rates
      // are those of a relay or a tunnelled connection, not of the kernel's UDP).
      for (std::size_t t = 1; t <= engine_.transports_.size(); ++t) {
        const auto tag = static_cast<std::uint8_t>(t);
        for (std::size_t src = 0; src < engine_.transport(tag).source_count(); ++src) {
          check(loop.add(engine_.transport(tag).poll_fd(src), platform::kReadable,
                         [this, tag, src](std::uint32_t) { process_transport(tag, src); }));
        }
      }
      arm_timer(engine_.clock_.now());
      if (engine_.link_monitor_) {
        check(loop.add(engine_.link_monitor_->poll_fd(), platform::kReadable,
                       [this](std::uint32_t) { poll_link_monitor(); }));
      }
    }
    // Anything posted before the loop existed.
    process_mailbox();
    while (!stop_.load(std::memory_order_acquire)) {
      // Queued handshake work means: look at the sources without sleeping, then do a budget of
      // it, so receiving and handshakes take turns.
      // About to sleep: a destroyed keypair's key must not stay cached in this thread's AEAD
      // contexts while it is idle (one atomic load when no key was retired).
      if (handshakes_.empty())
        crypto::aead_wipe_thread_keys_if_retired();
      auto r = loop.run_once(handshakes_.empty() ? kNoTimeout : Duration::zero());
      if (!r.ok()) {
        platform::log_error("Worker %zu: %s", index_, r.message().c_str());
        engine_.request_stop(StopReason::kFatalError);
        break;
      }
      process_handshakes(receive_backlog_ ? kHandshakeBudgetBacklogged : kHandshakeBudget);
      receive_backlog_ = false;
      // What this round did may have created an earlier timer deadline.
      if (index_ == 0) {
        if (engine_.device_->next_deadline() < timer_armed_at())
          arm_timer(engine_.clock_.now());
      } else {
        engine_.wake_timers_if_earlier();
      }
    }
    std::lock_guard lock(mailbox_mutex_);
    running_ = false;
    mailbox_cv_.notify_all();
  }

  void set_running() {
    std::lock_guard lock(mailbox_mutex_);
    running_ = true;
  }

  void request_stop() {
    stop_.store(true, std::memory_order_release);
    wake();
  }

  void wake() {
    if (loop_)
      loop_->wake();
  }

  // ---- mailbox (any thread) ------------------------------------------------------------

  /// Queues a bind switch; returns the generation to wait for.
  std::uint64_t post_bind(std::unique_ptr<platform::UdpBind> bind) {
    std::uint64_t gen;
    {
      std::lock_guard lock(mailbox_mutex_);
      pending_bind_ = std::move(bind);
      gen = ++posted_generation_;
    }
    wake();
    return gen;
  }

  /// Waits until the worker installed generation `gen`, or stopped running; returns the bind
  /// it replaced (still open: the caller closes it, or installs it again to undo).
  std::unique_ptr<platform::UdpBind> wait_installed(std::uint64_t gen) {
    std::unique_lock lock(mailbox_mutex_);
    mailbox_cv_.wait(lock, [&] { return installed_generation_ >= gen || !running_; });
    if (installed_generation_ < gen && pending_bind_) {
      // The thread has exited; no one else touches the bind now.
      retired_bind_ = install(std::move(pending_bind_));
      installed_generation_ = gen;
    }
    return std::move(retired_bind_);
  }

  /// Copies `outputs` (a configuration change's, produced on the UAPI thread) for this worker
  /// to send from its own socket.
  void post_datagrams(const wg::Outbox& outputs) {
    if (outputs.empty())
      return;
    {
      std::lock_guard lock(mailbox_mutex_);
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        ConstBytes d = outputs.datagram(i);
        pending_sends_.emplace_back(outputs.path(i), std::vector<std::uint8_t>(d.begin(), d.end()));
      }
    }
    wake();
  }

  /// Copies one datagram for this worker to send from its own socket (any thread).
  void post_datagram(const net::Path& to, ConstBytes datagram) {
    {
      std::lock_guard lock(mailbox_mutex_);
      pending_sends_.emplace_back(to, std::vector<std::uint8_t>(datagram.begin(), datagram.end()));
    }
    wake();
  }

  /// Installs a new bind (owner's thread, when no worker thread runs).
  /// Returns the bind it replaced.
  std::unique_ptr<platform::UdpBind> install_now(std::unique_ptr<platform::UdpBind> bind) {
    return install(std::move(bind));
  }

  bool process_mailbox() {
    std::unique_ptr<platform::UdpBind> bind;
    std::vector<std::pair<net::Path, std::vector<std::uint8_t>>> sends;
    std::uint64_t gen;
    {
      std::lock_guard lock(mailbox_mutex_);
      bind = std::move(pending_bind_);
      sends.swap(pending_sends_);
      gen = posted_generation_;
    }
    bool did = process_inbox();
    did |= bind || !sends.empty();
    if (bind) {
      if (loop_)
        unregister_bind();
      std::unique_ptr<platform::UdpBind> old = install(std::move(bind));
      if (loop_)
        register_bind();
      std::lock_guard lock(mailbox_mutex_);
      retired_bind_ = std::move(old);
      installed_generation_ = gen;
      mailbox_cv_.notify_all();
    }
    for (auto& [to, bytes] : sends)
      send_one(to, bytes);
    return did;
  }

  // ---- the data path -------------------------------------------------------------------

  /// One TUN batch: read, encapsulate in place, send. True if packets were read.
  bool process_tun() {
    const Now now = engine_.clock_.now();
    const std::span<const Bytes> bufs(tun_views_.data(), kMaxBatch);
    BatchResult r = engine_.tun_->read(index_, bufs, tun_sizes_, wg::kSendHeadroom);
    if (r.gone) {
      engine_.request_stop(StopReason::kInterfaceGone);
      return false;
    }
    if (r.count == 0) {
      if (!r.would_block() && r.error != 0) {
        platform::log_error("Failed to read packet from TUN device: %s", std::strerror(r.error));
      }
      return false;
    }
    tun_read_.fetch_add(r.count, std::memory_order_relaxed);
    std::size_t n = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
      wg::SendResult s = engine_.device_->encapsulate(tun_views_[i], tun_sizes_[i], now, outbox_);
      if (s.verdict == wg::Verdict::kToNetwork) {
        out_[n++] = OutDatagram{ConstBytes(tun_views_[i].data(), s.length), s.to, false};
      }
    }
    // What the Device produced besides the verdicts (packets staged before a session existed,
    // initiations) is older than this batch's packets: it goes first.
    flush_outbox();
    if (n > 0)
      send_batch(std::span<OutDatagram>(out_.data(), n));
    return true;
  }

  /// One UDP batch from `socket`: receive, decapsulate in place, write to the TUN.
  bool process_udp(std::size_t socket) {
    const std::span<const Bytes> bufs(udp_views_.data(), kMaxBatch);
    BatchResult r = bind_->receive(socket, bufs, udp_sizes_, paths_);
    if (r.count > 0)
      udp_received_.fetch_add(r.count, std::memory_order_relaxed);
    return process_received(r);
  }

  /// One batch from source `source` of the transport tagged `tag` (worker 0): the same as UDP.
  bool process_transport(std::uint8_t tag, std::size_t source) {
    const std::span<const Bytes> bufs(udp_views_.data(), kMaxBatch);
    BatchResult r = engine_.transport(tag).receive(source, bufs, udp_sizes_, paths_);
    for (std::size_t i = 0; i < r.count; ++i)
      paths_[i].transport = tag;  // replies and roaming go back over the same transport
    if (r.count > 0)
      transport_received_.fetch_add(r.count, std::memory_order_relaxed);
    return process_received(r);
  }

  /// Decapsulates the datagrams a receive put in udp_views_/udp_sizes_/paths_ (handshakes to
  /// the queue) and writes the packets to the TUN. True if any was received.
  bool process_received(const BatchResult& r) {
    if (r.count == 0) {
      if (!r.would_block() && r.error != 0 && platform::log_enabled(platform::LogLevel::kDebug)) {
        platform::log_debug("Failed to receive packet: %s", std::strerror(r.error));
      }
      return false;
    }
    const Now now = engine_.clock_.now();
    if (r.count == kMaxBatch)
      receive_backlog_ = true;
    std::size_t n = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
      if (udp_sizes_[i] == 0)
        continue;  // truncated
      Bytes datagram = udp_views_[i].first(udp_sizes_[i]);
      if (!wireguard_shaped(datagram)) [[unlikely]] {
        // The demultiplexer (docs/MESH.md): STUN to the sink, anything else to the Device.
        if (engine_.stun_sink_ != nullptr && mesh::stun::is_stun(datagram)) {
          stun_received_.fetch_add(1, std::memory_order_relaxed);
          engine_.stun_sink_->on_stun(paths_[i], datagram, now);
          continue;
        }
      }
      if (const wg::Lane lane = engine_.device_->lane_of(paths_[i], datagram, now.mono);
          lane != wg::Lane::kDirect) {
        // Handshake work waits for process_handshakes(); a full lane drops it right here.
        if (!handshakes_.push(lane, paths_[i], datagram))
          handshake_dropped_[static_cast<std::size_t>(lane)].fetch_add(1,
                                                                       std::memory_order_relaxed);
        continue;
      }
      wg::RecvResult d = engine_.device_->decapsulate(paths_[i], datagram, now, outbox_);
      if (d.verdict == wg::Verdict::kToTun && d.length > 0) {
        tun_out_[n++] = ConstBytes(datagram.data() + d.offset, d.length);
      }
    }
    flush_outbox();  // keepalives and staged packets released by a confirmed session
    if (n > 0)
      write_tun(distribute(n));
    return true;
  }

  /// Up to `budget` queued handshake messages, best lane first; their replies leave in one
  /// batch. True if any was handled.
  bool process_handshakes(std::size_t budget) {
    if (handshakes_.empty())
      return false;
    const Now now = engine_.clock_.now();
    std::size_t done = 0;
    for (; done < budget; ++done) {
      HandshakeQueue::Entry* e = handshakes_.front();
      if (e == nullptr)
        break;
      // A handshake message never yields a packet for the TUN: its verdict is a drop (counted
      // by the Device) or "consumed", and what it produces waits in the outbox.
      (void)engine_.device_->decapsulate(e->from, e->datagram(), now, outbox_);
      handshakes_.pop();
    }
    flush_outbox();  // the round's replies: one sendmmsg (per kMaxBatch)
    handshakes_done_.fetch_add(done, std::memory_order_relaxed);
    return true;
  }

  /// Packets for queue `index_` that another worker decrypted (any thread).
  void post_packets(std::span<const ConstBytes> packets) {
    {
      std::lock_guard lock(inbox_mutex_);
      for (ConstBytes p : packets) {
        if (inbox_count_ >= kInboxMaxPackets || inbox_bytes_ + p.size() > kInboxMaxBytes) {
          inbox_dropped_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (inbox_count_ == inbox_.size())
          inbox_.emplace_back();
        // assign() reuses the slot's capacity: no allocation once the inbox has warmed up.
        inbox_[inbox_count_++].assign(p.begin(), p.end());
        inbox_bytes_ += p.size();
      }
    }
    wake();
  }

  /// Writes what other workers handed over to this worker's queue. True if anything was.
  bool process_inbox() {
    {
      std::lock_guard lock(inbox_mutex_);
      if (inbox_count_ == 0)
        return false;
      inbox_.swap(draining_);
      draining_count_ = inbox_count_;
      inbox_count_ = 0;
      inbox_bytes_ = 0;
    }
    for (std::size_t done = 0; done < draining_count_;) {
      const std::size_t m = std::min(kMaxBatch, draining_count_ - done);
      for (std::size_t i = 0; i < m; ++i)
        tun_out_[i] = ConstBytes(draining_[done + i]);
      write_tun(m);
      done += m;
    }
    return true;
  }

  /// Runs due device timers (worker 0); returns the next deadline. tick() visits only due
  /// peers, so a call with nothing due costs a lock and a comparison.
  MonoTime run_timers(Now now) {
    engine_.device_->tick(now, outbox_);
    flush_outbox();
    return engine_.device_->next_deadline();
  }

  /// The deadline worker 0's timer is armed for (any thread).
  MonoTime timer_armed_at() const { return timer_armed_at_.load(); }

  bool poll_link_monitor() {
    auto r = engine_.link_monitor_->poll(
        [this](const platform::LinkEvent& e) { engine_.on_link_event(e); });
    if (!r.ok()) {
      platform::log_error("Failed to read link notifications: %s", r.message().c_str());
      return false;
    }
    return *r > 0;
  }

  platform::UdpBind& bind() { return *bind_; }
  std::size_t socket_count() const { return bind_->socket_count(); }

  void add_counters(EngineCounters& c) const {
    c.tun_read += tun_read_.load(std::memory_order_relaxed);
    c.udp_sent += udp_sent_.load(std::memory_order_relaxed);
    c.udp_received += udp_received_.load(std::memory_order_relaxed);
    c.transport_sent += transport_sent_.load(std::memory_order_relaxed);
    c.transport_received += transport_received_.load(std::memory_order_relaxed);
    c.tun_written += tun_written_.load(std::memory_order_relaxed);
    c.send_errors += send_errors_.load(std::memory_order_relaxed);
    c.stale_sources += stale_sources_.load(std::memory_order_relaxed);
    c.handed_off += handed_off_.load(std::memory_order_relaxed);
    c.handoff_dropped += inbox_dropped_.load(std::memory_order_relaxed);
    c.handshakes_handled += handshakes_done_.load(std::memory_order_relaxed);
    c.stun_received += stun_received_.load(std::memory_order_relaxed);
    for (std::size_t l = 0; l < wg::kHandshakeLanes; ++l)
      c.handshakes_dropped[l] += handshake_dropped_[l].load(std::memory_order_relaxed);
  }

  /// Sizes the per-target hand-off lists once the worker count is known (before any traffic).
  void prepare_handoff(std::size_t workers) {
    handoff_.assign(workers, {});
    for (auto& v : handoff_)
      v.reserve(kMaxBatch);
  }

 private:
  // Keeps in tun_out_ the packets whose flow belongs to this worker's queue and hands the others
  // to their queue's worker; returns how many stay. Writing each flow to the queue of its hash
  // teaches the kernel's TUN flow table (automq) that queue, so the flow's outgoing packets are
  // read, encrypted and sent by that worker too: one peer's flows spread over every worker while
  // each flow keeps one path, hence its order. With one worker everything stays.
  std::size_t distribute(std::size_t n) {
    const std::size_t workers = engine_.workers_.size();
    if (workers <= 1 || !engine_.options_.spread_flows)
      return n;
    std::size_t keep = 0;
    for (auto& v : handoff_)
      v.clear();
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t q = flow_hash(tun_out_[i]) % workers;
      if (q == index_)
        tun_out_[keep++] = tun_out_[i];
      else
        handoff_[q].push_back(tun_out_[i]);
    }
    for (std::size_t q = 0; q < workers; ++q) {
      if (!handoff_[q].empty()) {
        handed_off_.fetch_add(handoff_[q].size(), std::memory_order_relaxed);
        engine_.workers_[q]->post_packets(handoff_[q]);
      }
    }
    return keep;
  }

  void write_tun(std::size_t n) {
    if (n == 0)
      return;
    BatchResult w = engine_.tun_->write(index_, std::span<const ConstBytes>(tun_out_.data(), n));
    tun_written_.fetch_add(w.count, std::memory_order_relaxed);
    if (w.gone)
      engine_.request_stop(StopReason::kInterfaceGone);
  }

  // Sends what the Device appended to outbox_ during the calls since the last flush, in order,
  // kMaxBatch datagrams per send, and empties it. Runs after the Device call returned, so a
  // refused source may call back into the Device (send_batch → forget_source).
  void flush_outbox() {
    if (const std::uint64_t d = outbox_.dropped(); d != outbox_dropped_seen_) {
      send_errors_.fetch_add(d - outbox_dropped_seen_, std::memory_order_relaxed);
      outbox_dropped_seen_ = d;
    }
    for (std::size_t i = 0; i < outbox_.size();) {
      const std::size_t m = std::min(kMaxBatch, outbox_.size() - i);
      for (std::size_t j = 0; j < m; ++j)
        flush_out_[j] = OutDatagram{outbox_.datagram(i + j), outbox_.path(i + j), false};
      send_batch(std::span<OutDatagram>(flush_out_.data(), m));
      i += m;
    }
    outbox_.clear();
  }

  void send_one(const net::Path& to, ConstBytes datagram) {
    std::array<OutDatagram, 1> one{OutDatagram{datagram, to, false}};
    send_batch(one);
  }

  // Sends each run of datagrams with the same Path::transport through that transport, in
  // order: UDP (tag 0) through this worker's bind, any other tag through the engine's
  // transport. A UDP-only batch is one run, one bind_->send, as before the seam.
  void send_batch(std::span<OutDatagram> datagrams) {
    for (std::size_t i = 0; i < datagrams.size();) {
      const std::uint8_t tag = datagrams[i].path.transport;
      std::size_t j = i + 1;
      while (j < datagrams.size() && datagrams[j].path.transport == tag)
        ++j;
      send_run(tag, datagrams.subspan(i, j - i));
      i = j;
    }
    for (const OutDatagram& d : datagrams) {
      // The kernel refused the sticky source (address gone): stop using it (rare path).
      if (d.source_dropped) {
        stale_sources_.fetch_add(1, std::memory_order_relaxed);
        engine_.device().forget_source(d.path);
      }
    }
  }

  void send_run(std::uint8_t tag, std::span<OutDatagram> run) {
    BatchResult s;
    if (tag == kUdpTransport) {
      s = bind_->send(run);
      udp_sent_.fetch_add(s.count, std::memory_order_relaxed);
    } else if (engine_.has_transport(tag)) {
      s = engine_.transport(tag).send(run);
      transport_sent_.fetch_add(s.count, std::memory_order_relaxed);
    } else {
      s.error = ENETUNREACH;  // a path on a transport this engine does not have
    }
    if (s.count < run.size()) {
      send_errors_.fetch_add(run.size() - s.count, std::memory_order_relaxed);
      if (platform::log_enabled(platform::LogLevel::kDebug)) {
        platform::log_debug("Failed to send %zu of %zu datagrams (transport %u): %s",
                            run.size() - s.count, run.size(), static_cast<unsigned>(tag),
                            std::strerror(s.error));
      }
    }
  }

  void arm_timer(Now now) {
    MonoTime next = run_timers(now);
    // Publish, then look again (both sequentially consistent): a worker that makes an earlier
    // deadline (stores it, then reads timer_armed_at_) either sees `next` and wakes us, or its
    // deadline is visible to the second look here. Neither side can miss the other.
    for (;;) {
      timer_armed_at_.store(next);
      const MonoTime again = engine_.device_->next_deadline();
      if (again >= next)
        break;
      next = again;
    }
    check(loop_->set_timer(next, [this] { arm_timer(engine_.clock_.now()); }));
  }

  void register_bind() {
    for (std::size_t s = 0; s < bind_->socket_count(); ++s) {
      check(loop_->add(bind_->poll_fd(s), platform::kReadable,
                       [this, s](std::uint32_t) { process_udp(s); }));
    }
  }

  void unregister_bind() {
    for (std::size_t s = 0; s < bind_->socket_count(); ++s)
      (void)loop_->remove(bind_->poll_fd(s));
  }

  std::unique_ptr<platform::UdpBind> install(std::unique_ptr<platform::UdpBind> bind) {
    std::swap(bind_, bind);
    return bind;
  }

  void check(const Status& s) {
    if (!s.ok()) {
      platform::log_error("Worker %zu: %s", index_, s.message().c_str());
      engine_.request_stop(StopReason::kFatalError);
    }
  }

  Engine& engine_;
  const std::size_t index_;
  std::unique_ptr<platform::UdpBind> bind_;
  // The Device's outputs of this worker's calls, sent by flush_outbox() after each call site.
  wg::Outbox outbox_;
  std::uint64_t outbox_dropped_seen_ = 0;
  HandshakeQueue handshakes_;
  bool receive_backlog_ = false;  // a receive batch this round came back full
  std::unique_ptr<platform::EventLoop> loop_;
  std::atomic<bool> stop_{false};
  std::atomic<MonoTime> timer_armed_at_{kNoDeadline};  // worker 0

  std::unique_ptr<std::uint8_t[]> tun_memory_;
  std::unique_ptr<std::uint8_t[]> udp_memory_;
  std::array<Bytes, kMaxBatch> tun_views_;
  std::array<Bytes, kMaxBatch> udp_views_;
  std::array<std::size_t, kMaxBatch> tun_sizes_{};
  std::array<std::size_t, kMaxBatch> udp_sizes_{};
  std::array<net::Path, kMaxBatch> paths_{};
  std::array<OutDatagram, kMaxBatch> out_{};
  std::array<OutDatagram, kMaxBatch> flush_out_{};
  std::array<ConstBytes, kMaxBatch> tun_out_{};
  std::vector<std::vector<ConstBytes>> handoff_;  // per target worker, capacity kMaxBatch

  // Packets other workers decrypted for this worker's queue (double-buffered: the producers
  // fill inbox_, this worker drains draining_; the byte vectors keep their capacity).
  std::mutex inbox_mutex_;
  std::vector<std::vector<std::uint8_t>> inbox_;  // guarded
  std::size_t inbox_count_ = 0;                   // guarded
  std::size_t inbox_bytes_ = 0;                   // guarded
  std::vector<std::vector<std::uint8_t>> draining_;
  std::size_t draining_count_ = 0;

  std::mutex mailbox_mutex_;
  std::condition_variable mailbox_cv_;
  std::unique_ptr<platform::UdpBind> pending_bind_;  // guarded
  std::unique_ptr<platform::UdpBind> retired_bind_;  // guarded: replaced, for wait_installed
  std::vector<std::pair<net::Path, std::vector<std::uint8_t>>> pending_sends_;  // guarded
  std::uint64_t posted_generation_ = 0;                                         // guarded
  std::uint64_t installed_generation_ = 0;                                      // guarded
  bool running_ = false;                                                        // guarded

  std::atomic<std::uint64_t> transport_sent_{0}, transport_received_{0};
  std::atomic<std::uint64_t> tun_read_{0}, udp_sent_{0}, udp_received_{0}, tun_written_{0},
      send_errors_{0}, stale_sources_{0}, handed_off_{0}, inbox_dropped_{0}, handshakes_done_{0},
      stun_received_{0};
  std::array<std::atomic<std::uint64_t>, wg::kHandshakeLanes> handshake_dropped_{};
};

Engine::Engine(std::unique_ptr<platform::TunDevice> tun, platform::BindFactory& binds,
               platform::Clock& clock, RandomSource& rng,
               std::unique_ptr<platform::LinkMonitor> link_monitor, EngineOptions options)
    : tun_(std::move(tun)),
      binds_(binds),
      clock_(clock),
      link_monitor_(std::move(link_monitor)),
      options_(options) {
  if (auto mtu = tun_->mtu(); mtu.ok() && *mtu > 0)
    options_.device.mtu = *mtu;
  device_ = std::make_unique<wg::Device>(rng, options_.device);
}

Result<std::unique_ptr<Engine>> Engine::create(std::unique_ptr<platform::TunDevice> tun,
                                               platform::BindFactory& binds, platform::Clock& clock,
                                               RandomSource& rng,
                                               std::unique_ptr<platform::LinkMonitor> link_monitor,
                                               EngineOptions options) {
  if (!tun || tun->queue_count() == 0)
    return Error::from_errno(EINVAL, "engine: no TUN queue");
  std::unique_ptr<Engine> e(
      new Engine(std::move(tun), binds, clock, rng, std::move(link_monitor), options));
  auto opened = e->open_binds(options.listen_port, options.fwmark);
  if (!opened.ok())
    return opened.error();
  e->port_ = opened->front()->port();
  if (platform::log_enabled(platform::LogLevel::kVerbose)) {
    const platform::BindOffloadState st = opened->front()->offload_state(0);
    platform::log_verbose("UDP offloads: gso %s, gro %s", st.gso ? "on" : "off",
                          st.gro ? "on" : "off");
  }
  e->fwmark_ = options.fwmark;
  for (std::size_t i = 0; i < opened->size(); ++i) {
    e->workers_.push_back(std::make_unique<Worker>(*e, i, std::move((*opened)[i])));
  }
  for (auto& w : e->workers_)
    w->prepare_handoff(e->workers_.size());
  return e;
}

Engine::~Engine() {
  stop();
}

Result<std::vector<std::unique_ptr<platform::UdpBind>>> Engine::open_binds(std::uint16_t port,
                                                                           std::uint32_t fwmark) {
  const std::size_t n = tun_->queue_count();
  std::vector<std::unique_ptr<platform::UdpBind>> out;
  platform::BindOptions o;
  o.port = port;
  o.fwmark = fwmark;
  o.buffer_bytes = options_.socket_buffer_bytes;
  o.reuse_port = n > 1;
  o.exclusive = true;
  o.gso = options_.offloads.udp_gso;
  o.gro = options_.offloads.udp_gro;
  for (std::size_t i = 0; i < n; ++i) {
    auto b = binds_.open(o);
    if (!b.ok())
      return b.error();
    if (i == 0) {
      o.port = (*b)->port();
      o.exclusive = false;
    }
    out.push_back(std::move(*b));
  }
  return out;
}

std::vector<std::unique_ptr<platform::UdpBind>> Engine::install_binds(
    std::vector<std::unique_ptr<platform::UdpBind>> binds) {
  std::vector<std::unique_ptr<platform::UdpBind>> old(workers_.size());
  if (!started_) {
    for (std::size_t i = 0; i < workers_.size(); ++i)
      old[i] = workers_[i]->install_now(std::move(binds[i]));
    return old;
  }
  std::vector<std::uint64_t> gens;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    gens.push_back(workers_[i]->post_bind(std::move(binds[i])));
  }
  for (std::size_t i = 0; i < workers_.size(); ++i)
    old[i] = workers_[i]->wait_installed(gens[i]);
  return old;
}

void Engine::start() {
  if (started_)
    return;
  for (auto& w : workers_)
    w->create_loop();
  started_ = true;
  for (auto& w : workers_) {
    w->set_running();
    threads_.emplace_back([worker = w.get()] { worker->run(); });
  }
}

void Engine::stop() {
  request_stop(StopReason::kRequested);
  for (auto& t : threads_) {
    if (t.joinable())
      t.join();
  }
  threads_.clear();
}

void Engine::request_stop(StopReason reason) {
  StopReason expected = StopReason::kNone;
  const bool first = stop_reason_.compare_exchange_strong(expected, reason);
  for (auto& w : workers_)
    w->request_stop();
  if (first) {
    if (reason != StopReason::kRequested) {
      platform::log_verbose("Engine stopping: %s", stop_reason_name(reason));
    }
    if (on_stop_)
      on_stop_(reason);
  }
}

void Engine::wake_timers_if_earlier() {
  Worker& w0 = *workers_.front();
  if (device_->next_deadline() < w0.timer_armed_at())
    w0.wake();
}

bool Engine::pump() {
  bool did = false;
  for (auto& w : workers_) {
    did |= w->process_mailbox();
    did |= w->process_tun();
    for (std::size_t s = 0; s < w->socket_count(); ++s)
      did |= w->process_udp(s);
    did |= w->process_handshakes(kHandshakeBudget);
  }
  Worker& w0 = *workers_.front();
  for (std::size_t t = 1; t <= transports_.size(); ++t) {
    const auto tag = static_cast<std::uint8_t>(t);
    for (std::size_t src = 0; src < transport(tag).source_count(); ++src)
      did |= w0.process_transport(tag, src);
  }
  if (link_monitor_)
    did |= w0.poll_link_monitor();
  EngineCounters before = counters();
  (void)w0.run_timers(clock_.now());
  did |= counters().udp_sent != before.udp_sent;
  return did;
}

void Engine::on_link_event(const platform::LinkEvent& event) {
  if (event.kind == platform::LinkEvent::Kind::kRoutesChanged) {
    // A better route (or a removed address) may mean another source address now: let the
    // kernel choose again; the peer's next packet teaches us the address it reaches.
    device_->forget_all_sources();
    return;
  }
  if (event.kind == platform::LinkEvent::Kind::kDeleted) {
    // RTM_DELLINK also announces a move to another network namespace (wg-quick and netns.sh
    // do that); only a device that is really gone ends the daemon.
    if (tun_->exists()) {
      platform::log_verbose("Interface left this network namespace; still running");
      return;
    }
    platform::log_verbose("Interface deleted");
    request_stop(StopReason::kInterfaceGone);
    return;
  }
  if (event.link.mtu != 0 && event.link.mtu != device_->mtu()) {
    platform::log_verbose("MTU updated: %u", event.link.mtu);
    device_->set_mtu(event.link.mtu);
  }
}

Status Engine::apply(const wg::ConfigDelta& delta) {
  std::lock_guard lock(config_mutex_);
  const std::uint16_t old_port = port_.load();
  const std::uint32_t old_mark = fwmark_.load();
  const std::uint32_t new_mark = delta.fwmark.value_or(old_mark);
  // As the kernel does: the same port again is not a change; 0 asks for a new random port.
  const bool rebind = delta.listen_port && *delta.listen_port != old_port;
  const bool remark = !rebind && new_mark != old_mark;

  std::vector<std::unique_ptr<platform::UdpBind>> fresh;
  if (rebind) {
    auto opened = open_binds(*delta.listen_port, new_mark);
    if (!opened.ok()) {
      // wireguard-go answers every bind failure with EADDRINUSE (IpcErrorPortInUse).
      return Error(EADDRINUSE, "failed to set listen_port " +
                                   std::to_string(*delta.listen_port) + ": " + opened.message());
    }
    fresh = std::move(*opened);
  }

  std::size_t marked = 0;
  auto revert_marks = [&] {
    for (std::size_t i = 0; i < marked; ++i)
      (void)workers_[i]->bind().set_fwmark(old_mark);
  };
  if (remark) {
    for (; marked < workers_.size(); ++marked) {
      Status s = workers_[marked]->bind().set_fwmark(new_mark);
      if (!s.ok()) {
        revert_marks();
        return Error(EADDRINUSE, "failed to set fwmark: " + s.message());
      }
    }
  }

  // The new sockets go into service before the Device sees the delta, so that everything sent
  // while or after it is applied leaves from them: what apply() itself produces (the keepalive
  // or initiation of a newly enabled PersistentKeepalive), and a tick or packet on any worker
  // meanwhile. The old ones stay open until the Device accepted the delta, to undo.
  std::vector<std::unique_ptr<platform::UdpBind>> replaced;
  const std::uint16_t new_port = rebind ? fresh.front()->port() : old_port;
  if (rebind)
    replaced = install_binds(std::move(fresh));

  wg::Outbox outputs;
  Status err = device_->apply(delta, clock_.now(), outputs);
  if (!err) {
    revert_marks();
    if (rebind)
      (void)install_binds(std::move(replaced));  // the new sockets close here
    return err;
  }
  wake_timers_if_earlier();
  if (rebind) {
    replaced.clear();  // the old port is free again
    port_ = new_port;
    platform::log_verbose("UDP bind has been updated: port %u", static_cast<unsigned>(new_port));
  }
  fwmark_ = new_mark;
  // Worker 0 sends the Device's outputs from its (new) socket, through its mailbox.
  workers_.front()->post_datagrams(outputs);
  return {};
}

std::uint8_t Engine::add_transport(std::unique_ptr<PathTransport> transport) {
  if (started_)
    throw std::logic_error("Engine::add_transport after start()");
  if (transports_.size() >= 255)
    throw std::length_error("Engine::add_transport: 255 transports at most");
  transports_.push_back(std::move(transport));
  return static_cast<std::uint8_t>(transports_.size());
}

void Engine::send_datagram(const net::Endpoint& to, ConstBytes datagram) {
  net::Path path;
  path.remote = to;
  path.transport = kUdpTransport;
  workers_.front()->post_datagram(path, datagram);
}

wg::DeviceSnapshot Engine::snapshot() const {
  wg::DeviceSnapshot s = device_->snapshot();
  // A non-UDP path's `remote` is its transport's business, not a UDP endpoint: the UAPI shows
  // no endpoint for it (wg show: "(none)"), so that no tool reads it back as one.
  for (auto& p : s.peers) {
    if (p.endpoint_transport != kUdpTransport)
      p.endpoint.reset();
  }
  s.listen_port = port_.load();
  s.fwmark = fwmark_.load();
  return s;
}

EngineCounters Engine::counters() const {
  EngineCounters c;
  for (const auto& w : workers_)
    w->add_counters(c);
  return c;
}

}  // namespace warren::dataplane
