#pragma once
/// TLS 1.3 over TCP for the enrollment control channel. The TCP sockets themselves are
/// platform::TcpConnection / TcpListener (platform/tcp.h); this file is protocol only.
///
///   server: TlsIdentity (self-signed EC P-256 certificate, key file 0600) + an accepted
///           TcpConnection ──► TlsServerSession (non-blocking, driven by an event loop)
///   client: TlsStream::connect(host, port, pin) — the server certificate's SHA-256 (of its DER
///           encoding) must equal `pin`; nothing is sent before that check passes.
///
/// There is no CA: trust comes from the fingerprint carried in the invite (like SSH's known
/// host key, but delivered out of band with the invite). TLS 1.3 proves that the server holds
/// the certificate's private key (CertificateVerify), so a pinned fingerprint authenticates it.
///
/// Client: every blocking step has a deadline (sockets are non-blocking and every wait is
/// bounded by TcpConnection::wait). Server: TlsServerSession never waits; the enrollment
/// server's loop drives it (enroll.cc). This file and tls.cc are, with src/crypto, the only
/// users of OpenSSL (libssl here).
///
/// Creating a stream or an acceptor makes the process ignore SIGPIPE (OpenSSL writes with
/// write(2); a peer that hangs up must not kill us).
///
/// Errors are thrown as ControlError (configuration / control-plane boundary, never the data
/// path).

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/secure.h"
#include "net/host_port.h"
#include "platform/tcp.h"

namespace warren::control {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

/// Any failure of the control channel; the message is meant for the operator.
class ControlError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using Fingerprint = std::array<std::uint8_t, 32>;
/// A TLS exporter value (secret to the two ends of one connection; wiped when it dies).
using ExporterValue = Secret<32>;

/// SHA-256 (OpenSSL EVP).
Fingerprint sha256(std::span<const std::uint8_t> data);
/// Lowercase hex, 64 characters.
std::string fingerprint_to_hex(const Fingerprint& f);
std::optional<Fingerprint> fingerprint_from_hex(std::string_view text);

/// "host:port" or "[v6]:port" split into its parts (net/host_port.h); nullopt when malformed
/// (no port, port 0 or not a number, empty host).
using net::HostPort;
using net::split_host_port;

/// The server's certificate and private key.
class TlsIdentity {
 public:
  /// Loads the PEM certificate and key, or creates both when neither file exists (key file
  /// created 0600 with O_EXCL, certificate 0644). Throws ControlError naming the file when one
  /// exists without the other, a file cannot be read or written, or they do not match.
  static TlsIdentity load_or_create(const std::string& cert_path, const std::string& key_path);
  /// Loads both files as load_or_create does, but never creates anything: a missing file is
  /// a ControlError naming it (`warren server check` reports "will be created" itself).
  static TlsIdentity load(const std::string& cert_path, const std::string& key_path);
  /// A fresh identity in memory (tests).
  static TlsIdentity generate();

  const Fingerprint& fingerprint() const;

  struct Impl;
  std::shared_ptr<const Impl> impl() const { return impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

/// One TLS connection. Owned by one thread; shutdown() may be called from another to wake it.
class TlsStream {
 public:
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  /// Resolves `host` (a name or an address), connects (trying each address until the deadline)
  /// and completes a TLS 1.3 handshake; throws ControlError unless the server's certificate has
  /// SHA-256 fingerprint `pin` (compared in constant time).
  static std::unique_ptr<TlsStream> connect(std::string_view host, std::uint16_t port,
                                            const Fingerprint& pin, Deadline deadline);

  /// Reads exactly out.size() bytes; throws ControlError on end of stream, error or deadline.
  void read_exact(std::span<std::uint8_t> out, Deadline deadline);
  void write_all(std::span<const std::uint8_t> data, Deadline deadline);
  /// Reads what is available now, up to out.size() bytes, without waiting for more: the count,
  /// 0 when nothing is (the socket is then worth watching for readability). Waits (until the
  /// deadline) only when TLS must write first. Throws ControlError on end of stream or error.
  /// For an owner that multiplexes the stream with other work (the relay transport).
  std::size_t read_available(std::span<std::uint8_t> out, Deadline deadline);
  /// The socket, for an event loop to watch (readable); stays owned by the stream.
  int native_handle() const;
  /// Sends close_notify (best effort, bounded by the deadline).
  void close(Deadline deadline) noexcept;
  /// Wakes a blocked owner (its call then fails). Any thread.
  void shutdown() noexcept;

  /// Frames: a 4-byte big-endian length, then that many bytes. read_frame throws when the
  /// announced length exceeds `max_bytes` (before reading it).
  void write_frame(std::string_view payload, Deadline deadline);
  std::string read_frame(std::size_t max_bytes, Deadline deadline);

  /// The TLS 1.3 exporter (RFC 8446 §7.5) for `label` without context: 32 bytes that both
  /// ends of this connection, and nobody else, can compute. Binds an application-level proof
  /// to this connection (a proof copied into another connection does not verify there).
  ExporterValue export_keying_material(std::string_view label) const;

  struct Impl;
  explicit TlsStream(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

/// One server-side TLS connection driven by an event loop (the enrollment server): no call
/// waits. Each says whether it finished or what the socket must become ready for before the
/// same call is repeated (OpenSSL requires the same arguments on a repeat, which the buffers
/// below guarantee). Owned by one thread.
class TlsServerSession {
 public:
  enum class Io {
    kDone,       ///< finished
    kWantRead,   ///< repeat once the socket is readable
    kWantWrite,  ///< repeat once the socket is writable
    kClosed,     ///< the peer closed the stream (close_notify or end of stream)
    kFailed,     ///< TLS or socket failure (garbage, wrong protocol, reset): drop the connection
  };

  /// Starts the server side of a handshake on an accepted connection (owned from now on).
  TlsServerSession(const TlsIdentity& identity, platform::TcpConnection connection);
  ~TlsServerSession();
  TlsServerSession(const TlsServerSession&) = delete;
  TlsServerSession& operator=(const TlsServerSession&) = delete;

  int native_handle() const;
  Io handshake();
  /// True once the client's complete ClientHello has arrived (the first handshake message).
  bool client_hello_received() const;
  /// Appends to `buffer` until it holds `total` bytes.
  Io read_to(std::string& buffer, std::size_t total);
  /// Writes data[offset..] and advances `offset`.
  Io write_from(std::string_view data, std::size_t& offset);
  /// Reads and discards until the peer closes (kClosed) or nothing more is available.
  Io drain();
  /// Sends close_notify (best effort, once).
  void send_close_notify() noexcept;
  /// After kFailed: what went wrong, for a debug log.
  const std::string& failure() const { return failure_; }
  ExporterValue export_keying_material(std::string_view label) const;

  struct Impl;

 private:
  Io result(int ret, const char* what);

  std::unique_ptr<Impl> impl_;
  std::string failure_;
};

}  // namespace warren::control
