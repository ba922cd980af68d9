#pragma once
/// One QUIC connection (RFC 9000) over ngtcp2 0.12 and GnuTLS, without I/O: UDP payloads and
/// the time come in, UDP payloads to send come out. The runtime owns sockets, clocks and
/// threads; this class owns the QUIC state (one per peer, client or server side).
///
///   caller                         Connection                      peer
///   receive(payload, from, now) ─► ngtcp2 read ─► on_datagram(payload)   (called inside receive)
///                                               └► stream bytes buffered (take_stream_bytes)
///   write(now, buf) ◄──────────── handshake, ACKs, stream data, PING, CONNECTION_CLOSE
///   write_datagram(p, now, buf) ◄─ one DATAGRAM frame (RFC 9221) = one WireGuard message
///   deadline() / on_timer(now)     loss detection, ACK delay, idle timeout, keep-alive
///
/// Calling pattern: after every receive() and on_timer(), call write() until it returns a
/// Packet of 0 bytes, sending each to `Packet::to`; then re-arm the timer at deadline().
///
/// Not thread-safe: one thread drives a connection. Callbacks run inside receive() and must
/// not call back into the same connection (receive/write/close...); they may copy the bytes.
///
/// UDP payload size: packets are at most kMaxUdpPayload (1452) bytes, the largest payload that
/// fits a 1500-byte Ethernet MTU over IPv6 with a 48-byte IPv6+UDP header (1500 − 48). ngtcp2
/// starts every path at QUIC's guaranteed 1200 bytes and raises it by its Path MTU Discovery
/// (DPLPMTUD probes, RFC 8899) up to that bound, so a path that drops large packets keeps
/// working at 1200 and a normal path reaches 1452 after a few round trips.
/// max_datagram_payload() follows the path's current size.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/result.h"
#include "base/secure.h"
#include "base/time.h"
#include "net/ip_address.h"
#include "quic/identity.h"

namespace warren::quic {

/// The largest UDP payload we send; write buffers must hold at least this many bytes.
inline constexpr std::size_t kMaxUdpPayload = 1452;
/// Our max_datagram_frame_size transport parameter (RFC 9221 §3): any WireGuard message
/// (up to MTU + 32) fits; the path's packet size is the real limit.
inline constexpr std::uint64_t kMaxDatagramFrameSize = 65535;

/// Per-connection settings (both sides).
struct ConnectionOptions {
  /// max_idle_timeout: the connection closes silently after this long without traffic.
  Duration idle_timeout = std::chrono::seconds(30);
  /// Send a PING-like empty DATAGRAM when nothing was received for this long, so NAT
  /// mappings and the idle timer stay alive; 0 disables. Keep it below idle_timeout.
  Duration keepalive = std::chrono::seconds(10);
  /// A handshake that has not completed after this long fails the connection.
  Duration handshake_timeout = std::chrono::seconds(10);
  /// Flow-control window of the one stream and of the connection (bytes not yet taken).
  std::uint64_t stream_window = 64 * 1024;
};

class Connection;
/// Receives one DATAGRAM payload (non-empty: empty ones are our keep-alives and are not
/// delivered). Called from within receive(); must not re-enter the connection.
using DatagramHandler = std::function<void(Connection&, ConstBytes)>;

struct ClientOptions {
  net::Endpoint server;  ///< where the server listens (the first path's remote)
  net::Endpoint local;   ///< our socket's address (the first path's local; any value works)
  Fingerprint pin{};     ///< SHA-256 of the server certificate's DER
  std::string alpn = std::string(kAlpn);
  ConnectionOptions options;
  DatagramHandler on_datagram;
  /// Source of connection IDs and other randomness; null = crypto::SystemRandom.
  RandomSource* random = nullptr;
};

/// A UDP payload write() produced: `bytes` at the start of the caller's buffer, for `to`.
struct Packet {
  std::size_t bytes = 0;
  net::Endpoint to;
};

enum class DatagramStatus : std::uint8_t {
  kSent,     ///< the payload is in the packet
  kBlocked,  ///< congestion/pacing/anti-amplification limit or no room now: drop it (like a
             ///< full queue) or retry after the next receive
  kTooBig,   ///< larger than max_datagram_payload(): never fits, drop it
};
/// write_datagram's outcome. `packet.bytes` may be non-zero whatever the status: send any
/// non-empty packet. kBlocked with a non-empty packet means other frames (ACKs, a window
/// update) took the room the datagram needed; after sending it, calling write_datagram once
/// more usually succeeds.
struct DatagramWrite {
  DatagramStatus status = DatagramStatus::kBlocked;
  Packet packet;
};

class Connection {
 public:
  /// A client connection to `opts.server`; its first flight comes from write().
  [[nodiscard]] static Result<std::unique_ptr<Connection>> connect(ClientOptions opts,
                                                                   MonoTime now);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// One received UDP payload from `from`. An error means the connection is dead (closed()
  /// is then true and reason() says why); a packet that merely fails to decrypt is ignored.
  /// A new `from` is a path change (NAT rebinding): ngtcp2 validates it, and remote() follows.
  /// Our own address is the one given at creation (ClientOptions::local, or the `local` of
  /// the server's first packet).
  [[nodiscard]] Status receive(ConstBytes payload, const net::Endpoint& from, MonoTime now);

  /// The next packet to send (handshake, ACKs, stream data, keep-alive, CONNECTION_CLOSE),
  /// written at the start of `buf` (at least kMaxUdpPayload bytes); bytes == 0 when there is
  /// nothing to send now. Call in a loop until 0. A fatal error closes the connection (and
  /// the next call emits the CONNECTION_CLOSE).
  [[nodiscard]] Packet write(MonoTime now, Bytes buf);

  /// One DATAGRAM frame carrying `payload`, written into `buf` as one packet. ENOTCONN when
  /// the handshake has not completed or the connection is closed.
  [[nodiscard]] Result<DatagramWrite> write_datagram(ConstBytes payload, MonoTime now, Bytes buf);

  /// The largest payload write_datagram() accepts now: the smaller of the peer's
  /// max_datagram_frame_size and what fits one packet on the current path; 0 before the
  /// handshake completed or when the peer does not accept DATAGRAM frames.
  std::size_t max_datagram_payload() const;

  /// The one bidirectional stream (stream 0, opened by the client): queues bytes for write().
  /// The client's first bytes open it, so the server can send only after it received some.
  /// Queued bytes are kept until the peer acknowledges them; the caller bounds how much it
  /// queues. Ignored after stream_finish().
  void stream_send(ConstBytes bytes);
  /// Sends FIN after the queued bytes.
  void stream_finish();
  /// Bytes received on the stream so far and not yet taken. Flow control reopens by as much:
  /// call write() afterwards so the window update goes out.
  std::vector<std::uint8_t> take_stream_bytes();
  /// The peer sent FIN and every byte before it has been received.
  bool stream_peer_finished() const;
  /// The peer reset the stream (RESET_STREAM) or it closed with an error.
  bool stream_reset() const;

  /// The TLS exporter (RFC 5705 / RFC 8446 §7.5) for `label` with an empty context, 32 bytes;
  /// equal on both ends of one connection. ENOTCONN before the handshake completed.
  [[nodiscard]] Result<Secret<32>> exporter(std::string_view label) const;

  /// When on_timer() must run next; kNoDeadline once closed.
  MonoTime deadline() const;
  /// Runs due timers (retransmission, ACK delay, idle timeout, keep-alive). An error means
  /// the connection died (idle timeout, handshake timeout). Then call write() as above.
  [[nodiscard]] Status on_timer(MonoTime now);

  /// Closes with an application error code: the next write() emits CONNECTION_CLOSE, after
  /// which the connection is closed() with reason "closed locally: <reason>".
  void close(std::uint64_t error_code, std::string_view reason);

  /// Handshake confirmed (RFC 9001 §4.1.2: the server has the client's Finished; the client
  /// got HANDSHAKE_DONE) and not closed. Datagrams and the stream work from handshake
  /// completion on (max_datagram_payload() > 0), which on the client is half a round trip
  /// earlier.
  bool established() const;
  /// Closed (or closing: a CONNECTION_CLOSE may still be waiting for write()).
  bool closed() const;
  /// Why it closed: "idle timeout", "closed by peer (code 0): bye", "TLS: server certificate
  /// does not match the pinned fingerprint", ...; empty while open.
  const std::string& reason() const;
  /// The peer's current address (follows migration once ngtcp2 validated the new path).
  net::Endpoint remote() const;
  bool is_server() const;

  struct Impl;
  /// For ServerEndpoint (server side connections are created there).
  explicit Connection(std::unique_ptr<Impl> impl);
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::quic
