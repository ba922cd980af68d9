#pragma once
/// QuicTransport: WireGuard messages between a client and its server inside QUIC (issue 15,
/// docs/QUIC.md), one dataplane::PathTransport behind the engine's path seam. Each QUIC DATAGRAM
/// frame (RFC 9221) carries one whole WireGuard message, so the protocol core, the server's
/// pool, isolation, revoke, status and metrics see an ordinary peer on another path.
///
///   worker n: send(Path{synthetic endpoint}) ─► peer map: endpoint → key ─► bounded TxQueue
///             (full: drop, count; never waits) ─► wake the QUIC thread
///   QUIC thread (one per transport; owns the UDP socket, ngtcp2 and GnuTLS state):
///     UDP readable ─► client: Connection::receive | server: ServerEndpoint::receive
///                     (Retry, Version Negotiation, drops) ─► DATAGRAM ─► RxQueue ─► Notifier
///                     stream 0 ─► FrameReader ─► server: hello ─► verify proof (X25519 with the
///                     engine's key, TLS exporter) ─► authorize(key) ─► assignment or error
///                                              client: assignment ─► on_assignment, connected
///     TxQueue ─► key → connection ─► write_datagram ─► packets ─► UdpBind::send (GSO runs)
///     timer ─► on_timer ─► write ─► idle/closed connections go (server: expire)
///   worker 0: poll_fd (the Notifier) readable ─► receive() ─► Path{synthetic endpoint of the
///             key} ─► the engine's usual path (lane_of, handshake queue, decapsulate)
///
/// Client: connects (resolving the server's name each time), proves its key, receives the
/// assignment; any failure or close ─► back off (1 s doubling to max_backoff) and connect
/// again. Server: one connection per client key (a newer authenticated connection replaces an
/// older one); disconnect(key) closes a revoked client's connection at once.
///
/// Synthetic endpoints: as the relay's (runtime/relay_transport.h, RelayPeerMap): key n is
/// 0.a.b.c:1 with a.b.c = n; the engine hides non-UDP endpoints from the UAPI.
///
/// MTU: a DATAGRAM frame carries at most Connection::max_datagram_payload() (1412 bytes at the
/// full 1452-byte packet; less until ngtcp2's path MTU discovery got there): larger WireGuard
/// messages are dropped and counted (too_big). The interfaces at both ends are therefore
/// capped at kQuicTunnelMtu (client/plan.h; the server caps its own when [quic] is on), and
/// the kernel answers larger packets routed into them with ICMP "fragmentation needed" /
/// "packet too big", so senders learn the path MTU instead of losing packets silently.
///
/// Thread-safety: send() any worker, concurrently; receive()/poll_fd() worker 0; status(),
/// connected(), disconnect() any thread; stop() once, by the owner (before the engine goes:
/// the key source reads the engine). The private key is fetched for each proof and held in
/// a Secret only during it.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/time.h"
#include "control/enroll.h"
#include "control/tls.h"
#include "crypto/x25519.h"
#include "dataplane/transport.h"
#include "platform/notifier.h"
#include "platform/udp.h"
#include "quic/connection.h"
#include "quic/identity.h"
#include "quic/server_endpoint.h"
#include "runtime/relay_transport.h"

namespace warren::runtime {

/// The interface MTU when QUIC may carry the tunnel, at both ends: the largest inner packet
/// whose WireGuard message (+32: header 16, tag 16) fits one DATAGRAM frame once ngtcp2's path
/// MTU discovery has confirmed its largest probe below our 1452-byte cap, 1444 bytes (1492
/// PPPoE − 48 IPv6 + UDP; measured: max_datagram_payload() = 1404 on a 1500-byte path):
///   1444 − 40 (short header 1, DCID 16, packet number ≤ 4, DATAGRAM type 1 + length 2, AEAD
///   tag 16) = 1404 = 1372 + 32.
/// Before discovery completes (the first round trips; a path that drops larger packets stays
/// there) the limit is 1200 − 40 − 32 = 1128: larger messages are dropped and counted, and TCP
/// retransmits them a moment later.
inline constexpr std::uint32_t kQuicTunnelMtu = 1372;

/// The server's answer for an authenticated key: an assignment, or a refusal (control/quic_auth.h
/// codes: "unknown_client", "revoked", "disabled", ...).
struct QuicAuthorization {
  std::optional<control::Enrollment> assignment;
  std::string code;
  std::string message;
};

struct QuicServerConfig {
  std::uint16_t port = 443;  ///< UDP, both families (the `[quic] listen` port)
  std::shared_ptr<const quic::ServerIdentity> identity;
  /// Called on the QUIC thread for each client whose proof verified.
  std::function<QuicAuthorization(const crypto::PublicKey&)> authorize;
  quic::ConnectionOptions connection;
  bool retry = true;
  std::size_t max_connections = 1024;
  /// Stateless reset (RFC 9000 §10.3): a secret that survives restarts, so that a restarted
  /// server tells a client of a connection it no longer knows at once instead of letting it
  /// wait for its idle timeout. The server derives it from its long-term TLS key.
  std::optional<Secret<32>> reset_secret;
};

struct QuicClientConfig {
  std::string endpoint;            ///< "host:port" of the server's QUIC listener
  control::Fingerprint pin{};      ///< the control certificate's SHA-256 (the invite's pin)
  crypto::PublicKey server_key{};  ///< the server's WireGuard key (the proof's other half)
  /// Called on the QUIC thread with every assignment received.
  std::function<void(const control::Enrollment&)> on_assignment;
  quic::ConnectionOptions connection;
  Duration max_backoff = std::chrono::seconds(30);
  /// An established connection whose assignment has not arrived after this long is closed.
  Duration assignment_timeout = std::chrono::seconds(5);
};

struct QuicStatus {
  bool server = false;
  bool connected = false;      ///< client: authenticated now; server: listening
  std::string endpoint;        ///< client: the server's host:port; server: ":PORT"
  std::string last_error;      ///< client: why the last connection failed or ended
  std::uint64_t connects = 0;  ///< authenticated connections so far
  std::size_t clients = 0;     ///< server: authenticated connections now
  std::uint64_t sent = 0;      ///< datagrams written into packets
  std::uint64_t received = 0;  ///< datagrams handed to the engine
  /// The queue towards the QUIC thread, or a connection's congestion-control queue
  /// (kMaxPending), was full.
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_not_connected = 0;    ///< no authenticated connection for the key
  std::uint64_t dropped_too_big = 0;          ///< larger than the path's DATAGRAM limit
  std::uint64_t dropped_unknown_path = 0;     ///< a path this transport never handed out
  std::uint64_t dropped_unauthenticated = 0;  ///< a DATAGRAM before the hello verified
  std::uint64_t dropped_not_chosen = 0;       ///< client: arrived while UDP is the chosen carrier
  std::uint64_t refused = 0;  ///< server: hellos refused (proof, unknown, revoked, ...)
  /// Client: the largest WireGuard message the connection carries now (0 unconnected).
  std::size_t max_datagram = 0;
  quic::ServerStats endpoint_stats;  ///< server: the demultiplexer's counters
};

class QuicTransport final : public dataplane::PathTransport {
 public:
  using KeySource = std::function<std::optional<crypto::PrivateKey>()>;

  static constexpr std::size_t kMaxQueued = 4096;
  static constexpr std::size_t kMaxQueuedBytes = 8u << 20;
  /// Datagrams a connection holds while congestion control or pacing says wait (about 1.4 MB
  /// of full-size messages: a few milliseconds at gigabit rates, the depth of a router queue).
  static constexpr std::size_t kMaxPending = 1024;

  /// Opens the UDP port (EADDRINUSE etc. name it) and starts the QUIC thread.
  [[nodiscard]] static Result<std::unique_ptr<QuicTransport>> server(QuicServerConfig config,
                                                                     KeySource keys,
                                                                     platform::BindFactory& binds);
  /// Starts the QUIC thread, which connects (and reconnects) on its own.
  [[nodiscard]] static Result<std::unique_ptr<QuicTransport>> client(QuicClientConfig config,
                                                                     KeySource keys,
                                                                     platform::BindFactory& binds);
  ~QuicTransport() override;

  /// Stops the QUIC thread (closing connections with CONNECTION_CLOSE). Idempotent.
  void stop();

  std::size_t source_count() const override { return 1; }
  int poll_fd(std::size_t) const override { return rx_ready_.fd(); }
  platform::BatchResult receive(std::size_t source, std::span<const Bytes> bufs,
                                std::span<std::size_t> sizes, std::span<net::Path> paths) override;
  /// Every datagram counts as sent (drops are the transport's, counted in status()).
  platform::BatchResult send(std::span<platform::OutDatagram> datagrams) override;

  /// Client: authenticated and assigned now. Server: always true once started.
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  [[nodiscard]] std::optional<net::Endpoint> endpoint_for(const crypto::PublicKey& key) {
    return peers_.endpoint_for(key);
  }
  [[nodiscard]] std::optional<crypto::PublicKey> key_for(const net::Endpoint& e) const {
    return peers_.key_for(e);
  }
  /// Client: whether WireGuard messages that arrive over QUIC reach the engine. The runtime
  /// turns it off while its TransportChoice says UDP: the core roams a peer to wherever its
  /// last authenticated packet came from, so the server's packets still in flight over QUIC
  /// would otherwise pull the peer back onto QUIC right after a move to UDP (and keep the
  /// server there). Dropped messages are counted (dropped_not_chosen). Any thread.
  void set_accepting(bool on) { accepting_.store(on, std::memory_order_release); }
  /// Server: closes `key`'s connection at once (revoked, disabled). Any thread.
  void disconnect(const crypto::PublicKey& key);
  /// Server: the keys with an authenticated connection now.
  std::vector<crypto::PublicKey> connected_keys() const;
  QuicStatus status() const;
  /// SO_MARK on the transport's sockets: a client follows the engine's fwmark, so that with a
  /// full tunnel (policy routing on the mark, as wg-quick's) its QUIC packets leave by the
  /// uplink like WireGuard's own instead of looping into the tunnel. Any thread.
  [[nodiscard]] Status set_fwmark(std::uint32_t mark) { return bind_->set_fwmark(mark); }
  std::uint32_t fwmark() const { return bind_->fwmark(); }
  /// The local UDP port (server: the listen port; client: its ephemeral port, 0 unconnected).
  std::uint16_t port() const { return port_.load(); }

  /// 1 s doubling to `cap`.
  [[nodiscard]] static Duration next_backoff(Duration current, Duration cap);

  struct Impl;
  struct Item {
    crypto::PublicKey key;
    std::vector<std::uint8_t> datagram;
  };

 private:
  QuicTransport() = default;
  void run_server();
  void run_client();
  void set_error(std::string text);

  friend struct Impl;
  bool is_server_ = false;
  std::optional<QuicServerConfig> server_config_;
  std::optional<QuicClientConfig> client_config_;
  KeySource keys_;
  platform::BindFactory* binds_ = nullptr;
  std::unique_ptr<platform::UdpBind> bind_;  // server: opened by server(); client: per connect

  RelayPeerMap peers_;
  platform::Notifier tx_ready_;  // the QUIC thread's wake-up (TxQueue, disconnect, stop)
  platform::Notifier rx_ready_;  // worker 0's poll_fd

  std::mutex tx_mutex_;
  std::deque<Item> tx_;
  std::size_t tx_bytes_ = 0;
  std::vector<crypto::PublicKey> to_disconnect_;  // guarded by tx_mutex_

  std::mutex rx_mutex_;
  std::deque<Item> rx_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::size_t> max_datagram_{0};
  std::atomic<bool> accepting_{true};
  std::mutex wait_mutex_;
  std::condition_variable wait_cv_;  // the client's backoff, woken by stop()

  mutable std::mutex status_mutex_;
  std::string last_error_;
  std::vector<crypto::PublicKey> connected_keys_;  // server, guarded by status_mutex_
  quic::ServerStats endpoint_stats_;               // server, guarded by status_mutex_
  std::atomic<std::uint64_t> connects_{0}, sent_{0}, received_{0}, dropped_full_{0},
      dropped_not_connected_{0}, dropped_too_big_{0}, dropped_unknown_{0},
      dropped_unauthenticated_{0}, dropped_not_chosen_{0}, refused_{0};
  std::thread thread_;
};

}  // namespace warren::runtime
