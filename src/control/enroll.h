#pragma once
/// Enrollment: how a client gets its addresses and the server's key, given an invite.
///
///   operator: `warren server invite` ──► invite line "warren1:<base64url>" (out of band)
///   client:   parse_invite ──► enroll() ──TLS 1.3, server cert pinned by the invite──► server
///   server:   EnrollServer ──EnrollRequest──► EnrollHandler (checks, allocates, stores, adds
///             the peer) ──EnrollReply──► client
///
/// Invite (one line, no spaces): "warren1:" + base64url (unpadded) of
///   byte 0      format version (1)
///   bytes 1-32  SHA-256 of the control channel's certificate (DER)
///   bytes 33-40 invite id (random; names the invite in the server's database)
///   bytes 41-72 invite secret (random; the server stores only its SHA-256)
///   bytes 73-   control endpoint "host:port" (UTF-8, 1..255 bytes; host may be a name)
///
/// Wire protocol on the TLS connection (one exchange per connection): each message is a
/// 4-byte big-endian length and a JSON object, at most kMaxMessageBytes.
///   request:  {"version":1,"type":"enroll","invite_id":"<16 hex>","secret":"<base64url>",
///              "name":"<client name>","public_key":"<base64 WireGuard key>"}
///   success:  {"version":1,"ok":true,"enrollment":{"name":..,"addresses":["10.8.0.2/32",..],
///              "server_public_key":..,"server_endpoint":"host:port","routes":[..],"dns":[..],
///              "mtu":1420,"persistent_keepalive":25}}
///   failure:  {"version":1,"ok":false,"error":{"code":"invite_expired","message":"..."}}
/// Error codes: invalid_request, invite_invalid (unknown id or wrong secret: deliberately the
/// same answer), invite_expired, invite_used_up, revoked, name_taken, pool_exhausted,
/// storage_error, busy, internal. docs/SERVER.md describes them.
///
/// Only public keys cross this channel; the client's private key never leaves the client.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/secure.h"
#include "control/tls.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"

namespace warren::control {

inline constexpr std::string_view kInvitePrefix = "warren1:";
inline constexpr std::uint8_t kInviteVersion = 1;
inline constexpr std::size_t kInviteIdBytes = 8;
inline constexpr std::size_t kInviteSecretBytes = 32;
inline constexpr std::size_t kMaxMessageBytes = 16 * 1024;
inline constexpr int kProtocolVersion = 1;

using InviteSecret = Secret<kInviteSecretBytes>;

struct Invite {
  std::string control_endpoint;  ///< "host:port" of the enrollment server
  Fingerprint fingerprint{};     ///< SHA-256 of its certificate
  std::string id;                ///< 16 lowercase hex digits
  InviteSecret secret;
};


/// Parses an invite line (surrounding whitespace is ignored). Errors name the problem: missing
/// "warren1:" prefix, bad base64url, wrong length, unknown version, bad endpoint.
Result<Invite> parse_invite(std::string_view text);
std::string format_invite(const Invite& invite);
/// A fresh random invite id (16 hex digits) and secret.
std::string random_invite_id();
InviteSecret random_invite_secret();

/// What a client needs to bring its interface up.
struct Enrollment {
  std::string name;                    ///< the name the server enrolled this client under
  std::vector<net::Prefix> addresses;  ///< the client's tunnel addresses (/32, /128)
  crypto::PublicKey server_public_key;
  std::string server_endpoint;      ///< WireGuard UDP endpoint, "host:port"
  std::vector<net::Prefix> routes;  ///< prefixes to route into the tunnel
  std::vector<net::IpAddress> dns;
  std::uint32_t mtu = 1420;
  std::uint16_t persistent_keepalive = 0;  ///< seconds, 0 = off
};

std::string enrollment_to_json(const Enrollment& e);
/// Throws ControlError naming the bad field.
Enrollment enrollment_from_json(std::string_view json);

/// A refusal by the server (code as listed above) or a channel failure (code "transport").
class EnrollError : public ControlError {
 public:
  EnrollError(std::string code, const std::string& message)
      : ControlError(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

/// Client side: connects to the invite's endpoint, checks the pinned certificate, sends the
/// request and returns the enrollment. Throws EnrollError (its what() is a complete sentence
/// for the user) on refusal, timeout or a certificate mismatch. Thread-safe.
Enrollment enroll(const Invite& invite, std::string_view client_name,
                  const crypto::PublicKey& client_key,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

// ---- server side ---------------------------------------------------------------------------

struct EnrollRequest {
  std::string invite_id;
  InviteSecret secret;
  std::string name;  ///< as sent by the client (may be empty)
  crypto::PublicKey public_key;
};

struct EnrollReply {
  std::optional<Enrollment> enrollment;  ///< set on success
  std::string error_code;
  std::string error_message;
  static EnrollReply failure(std::string code, std::string message) {
    return EnrollReply{std::nullopt, std::move(code), std::move(message)};
  }
};

/// Decides one request. Called on a connection thread, possibly concurrently with others.
using EnrollHandler = std::function<EnrollReply(const EnrollRequest&)>;

/// Parses and validates a request body; on failure, the reply to send. (Exposed for tests.)
Result<EnrollRequest> parse_enroll_request(std::string_view json);
std::string enroll_request_to_json(const EnrollRequest& r);
std::string enroll_reply_to_json(const EnrollReply& r);

struct EnrollServerOptions {
  /// Whole exchange (TLS handshake, request, reply) must finish within this.
  std::chrono::milliseconds request_timeout{10'000};
  /// Connections served at once; more are closed at once.
  std::size_t max_connections = 32;
  std::size_t max_request_bytes = kMaxMessageBytes;
};

/// Serves enrollments on a TCP port, one thread per connection (bounded).
class EnrollServer {
 public:
  /// Binds `listen` ("0.0.0.0:7443"); throws ControlError. Serving starts with start().
  EnrollServer(TlsIdentity identity, std::string_view listen, EnrollHandler handler,
               EnrollServerOptions options = {});
  ~EnrollServer();
  EnrollServer(const EnrollServer&) = delete;
  EnrollServer& operator=(const EnrollServer&) = delete;

  void start();
  /// Stops accepting, wakes and joins every connection thread. Idempotent.
  void stop();
  std::uint16_t port() const { return acceptor_.port(); }
  std::size_t active_connections() const;
  /// Requests answered (success or refusal) since start; for tests and metrics.
  std::uint64_t requests_served() const;

 private:
  struct Conn;
  void accept_loop();
  void serve(Conn& c);
  void reap();

  TlsAcceptor acceptor_;
  EnrollHandler handler_;
  EnrollServerOptions options_;
  std::thread accept_thread_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Conn>> conns_;  // guarded by mutex_
  std::uint64_t served_ = 0;                  // guarded by mutex_
  bool stopping_ = false;                     // guarded by mutex_
};

}  // namespace warren::control
