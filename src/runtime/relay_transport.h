#pragma once
/// RelayTransport: a node's path to its peers through the coordinator's relay over UDP or
/// TCP/TLS (docs/MESH.md, "Relay path of a node"), one dataplane::PathTransport behind the path
/// seam. Both carriers share everything but the link: the peer map, the queues, the frame
/// handling (handle_frame); RelayCarrierChoice picks the carrier of each connection.
///
///   worker n: send(Path{synthetic endpoint}) ─► PeerMap: endpoint → key ─► send frame
///             ─► bounded SendQueue (full / not connected: drop and count; never waits) ─► wake
///   link thread: RelayCarrierChoice ─► UDP (below) or TCP/TLS:
///             UDP: its own socket (not the WireGuard one: the engine owns that) ─► hello every
///             1 s ─► stateless challenge ─► udp-auth (cookie echoed + proof) ─► auth ok; none
///             within the choice's udp_timeout ─► TCP/TLS next; then datagrams as frames, a
///             ping every kPingInterval, no pong within kUdpPongTimeout (the relay restarted
///             and forgot us, or UDP broke) ─► reconnect (hello again)
///             TCP/TLS: connect (TLS, certificate pinned) ─► challenge ─► auth (the node's own
///             WireGuard key, fetched from the engine at each connect) ─► auth ok ─► event loop:
///             queue ─► write_all;  socket readable ─► StreamReader ─► recv frames ─► RxQueue
///             ─► Notifier;  ping every kPingInterval (and check that the key has not
///             changed), reconnect when nothing arrived for kIdleTimeout;  any failure ─► close,
///             back off (1 s doubling to 30 s), reconnect
///   worker 0: poll_fd (the Notifier) readable ─► receive() ─► Path{PeerMap: key → synthetic
///             endpoint} ─► the engine's usual path (lane_of, handshake queue, decapsulate)
///
/// Synthetic endpoints: the relay names peers by public key, a net::Path by an Endpoint, so each
/// key met gets an index n (1, 2, ...) and the endpoint 0.a.b.c:1 with a.b.c = n (0.0.0.0/8 is
/// never a real peer address, and the engine hides non-UDP endpoints from the UAPI). An index
/// is never reused while the transport lives (a path the core remembers stays that peer's).
///
/// Thread-safety: send() any worker, concurrently; receive()/poll_fd() worker 0; status() any
/// thread; stop() once, by the owner (the runtime, before the engine goes: the key source
/// refers to the engine). The private key is held only for the proof, in a Secret, never
/// logged.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/time.h"
#include "control/tls.h"
#include "crypto/x25519.h"
#include "dataplane/transport.h"
#include "mesh/relay.h"
#include "platform/notifier.h"
#include "platform/udp.h"
#include "runtime/relay_policy.h"
#include "runtime/relay_settings.h"

namespace warren::runtime {

/// Public key ⇄ synthetic endpoint (see the top of this file). Thread-safe.
class RelayPeerMap {
 public:
  /// Up to 2^24 - 1 keys (the indexes of 0.0.0.0/8); nullopt beyond.
  [[nodiscard]] std::optional<net::Endpoint> endpoint_for(const crypto::PublicKey& key);
  /// nullopt for an endpoint this map never handed out.
  [[nodiscard]] std::optional<crypto::PublicKey> key_for(const net::Endpoint& endpoint) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<crypto::PublicKey, std::uint32_t> index_;
  std::vector<crypto::PublicKey> keys_;  // keys_[n - 1] has index n
};

/// Bounded FIFO of encoded frames, shared by the senders and the link thread. Thread-safe.
class FrameQueue {
 public:
  explicit FrameQueue(std::size_t max_frames, std::size_t max_bytes)
      : max_frames_(max_frames), max_bytes_(max_bytes) {}
  /// False (nothing queued) when the frame would exceed either bound.
  [[nodiscard]] bool push(std::vector<std::uint8_t> frame);
  /// Everything queued, oldest first; the queue is empty afterwards.
  [[nodiscard]] std::deque<std::vector<std::uint8_t>> take_all();
  void clear();
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::deque<std::vector<std::uint8_t>> frames_;
  std::size_t bytes_ = 0;
  std::size_t max_frames_;
  std::size_t max_bytes_;
};

struct RelayStatus {
  bool connected = false;          ///< authenticated to the relay now
  std::string carrier;             ///< "UDP" or "TCP/TLS" while connected, else ""
  std::string relay;               ///< host:port
  std::string last_error;          ///< why the last connection failed or ended ("" = none yet)
  std::uint64_t connects = 0;      ///< successful authentications (1 + reconnects)
  std::uint64_t sent = 0;          ///< datagrams queued for the relay
  std::uint64_t received = 0;      ///< datagrams from the relay given to the engine
  std::uint64_t dropped_full = 0;  ///< send queue full
  std::uint64_t dropped_not_connected = 0;  ///< no authenticated connection
  std::uint64_t dropped_unknown_path = 0;   ///< a path this transport never handed out
  std::uint64_t dropped_rx_full = 0;        ///< receive queue full (worker 0 behind)
};

class RelayTransport final : public dataplane::PathTransport {
 public:
  /// The node's private key now, or nullopt when it has none yet (warren-wg: `wg set` comes
  /// after start-up). Called by the link thread before each connection.
  using KeySource = std::function<std::optional<crypto::PrivateKey>()>;

  static constexpr std::size_t kMaxQueuedFrames = 4096;
  static constexpr std::size_t kMaxQueuedBytes = 8u << 20;
  static constexpr Duration kPingInterval = std::chrono::seconds(10);
  static constexpr Duration kIdleTimeout = std::chrono::seconds(35);
  static constexpr Duration kMaxBackoff = std::chrono::seconds(30);
  static constexpr Duration kUdpPongTimeout = std::chrono::seconds(3);

  /// Starts the link thread (it connects as soon as the key source has a key). `ping_interval`
  /// is also how often a connected transport checks the key (tests shorten it).
  /// `carrier`: UDP first, TCP/TLS when UDP is silent (tests shorten the timeout or turn UDP
  /// off).
  RelayTransport(RelaySettings settings, KeySource keys, Duration ping_interval = kPingInterval,
                 RelayCarrierChoice::Options carrier = {});
  ~RelayTransport() override;

  /// Stops the link thread and closes the connection. Idempotent.
  void stop();

  std::size_t source_count() const override { return 1; }
  int poll_fd(std::size_t) const override { return rx_ready_.fd(); }
  platform::BatchResult receive(std::size_t source, std::span<const Bytes> bufs,
                                std::span<std::size_t> sizes, std::span<net::Path> paths) override;
  /// Every datagram counts as sent (a drop is the transport's, counted in status(), like loss
  /// on UDP), so the engine's send_errors do not double-count it.
  platform::BatchResult send(std::span<platform::OutDatagram> datagrams) override;

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  /// The path (without the engine's tag) that reaches `key` through the relay.
  [[nodiscard]] std::optional<net::Endpoint> endpoint_for(const crypto::PublicKey& key) {
    return peers_.endpoint_for(key);
  }
  [[nodiscard]] std::optional<crypto::PublicKey> key_for(const net::Endpoint& e) const {
    return peers_.key_for(e);
  }
  RelayStatus status() const;

  /// The next backoff after `current` (1 s, doubling, capped at kMaxBackoff).
  [[nodiscard]] static Duration next_backoff(Duration current);

 private:
  struct Received {
    crypto::PublicKey from;
    std::vector<std::uint8_t> datagram;
  };
  void run();
  /// One connection: connect, authenticate, then serve it until it fails or stop().
  /// Returns why it ended.
  std::string session();
  /// One connection over UDP; `tried`: hellos were sent (not, e.g., without a key yet);
  /// `answered`: the relay answered (a challenge came back).
  std::string session_udp(bool& answered, bool& tried);
  /// A frame from the relay once authenticated (both carriers): recv ─► the receive queue,
  /// ping ─► pong, errors. Returns why the session must end, or "".
  std::string handle_frame(const mesh::relay::Frame& frame);
  void on_connected(RelayCarrierChoice::Carrier carrier);
  void set_error(std::string text);

  RelaySettings settings_;
  KeySource keys_;
  Duration ping_interval_;
  RelayCarrierChoice choice_;
  std::atomic<int> carrier_{-1};  // the connected carrier, -1 none
  RelayPeerMap peers_;
  FrameQueue out_{kMaxQueuedFrames, kMaxQueuedBytes};
  platform::Notifier tx_ready_;  // the link thread's wake-up
  platform::Notifier rx_ready_;  // worker 0's poll_fd

  std::mutex rx_mutex_;
  std::deque<Received> rx_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;  // backoff waits, woken by stop()
  std::mutex stream_mutex_;          // guards stream_ against stop()'s shutdown()
  control::TlsStream* stream_ = nullptr;

  mutable std::mutex error_mutex_;
  std::string last_error_;
  std::atomic<std::uint64_t> connects_{0}, sent_{0}, received_{0}, dropped_full_{0},
      dropped_not_connected_{0}, dropped_unknown_{0}, dropped_rx_full_{0};
  std::thread thread_;
};

}  // namespace warren::runtime
