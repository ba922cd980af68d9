#pragma once
/// Enrollment: how a client gets its addresses and the server's key, given an invite.
///
///   operator: `warren server invite` ──► invite line "warren1:<base64url>" (out of band)
///   client:   parse_invite ──► enroll() ──TLS 1.3, server cert pinned by the invite──► server
///   server:   EnrollServer (event loop) ──EnrollRequest──► EnrollHandler on a worker (checks,
///             allocates, stores, adds the peer) ──EnrollReply──► client
///
/// Invite (one line, no spaces): "warren1:" + base64url (unpadded) of
///   byte 0      format version (1)
///   bytes 1-32  SHA-256 of the control channel's certificate (DER)
///   bytes 33-40 invite id (random; names the invite in the server's database)
///   bytes 41-72 invite secret (random; the server stores only its SHA-256)
///   bytes 73-   control endpoint "host:port" (UTF-8, 1..255 bytes; host may be a name)
///
/// Wire protocol version 2 on the TLS connection (one exchange per connection, except a settings
/// session, which stays open: control/session.h): each message is
/// a 4-byte big-endian length and a JSON object, at most kMaxMessageBytes.
///   server (first, right after the TLS 1.3 handshake):
///             {"version":2,"type":"hello","challenge_key":"<base64 X25519 public key>"}
///             challenge_key is a fresh ephemeral key for this connection only. The hello also
///             carries "ok":false and an unsupported_version "error", which is what a version-1
///             client (reading it as its reply) reports; version 2 ignores both.
///   request:  {"version":2,"type":"enroll","invite_id":"<16 hex>","secret":"<base64url>",
///              "name":"<client name>","public_key":"<base64 WireGuard key>",
///              "proof":"<base64 32 bytes>"}
///   success:  {"version":2,"ok":true,"enrollment":{"name":..,"addresses":["10.8.0.2/32",..],
///              "server_public_key":..,"server_endpoint":"host:port","routes":[..],"dns":[..],
///              "mtu":1420,"persistent_keepalive":25}}
///             optional in "enrollment": "mesh":{..} (MeshSettings below) and
///             "quic":{"endpoint":"host:port"} (QuicSettings below); a client that predates
///             them ignores them (unknown keys are ignored).
///   failure:  {"version":2,"ok":false,"error":{"code":"invite_expired","message":"..."}}
///
/// Proof of possession of the client's WireGuard private key (every enrollment, including a
/// re-join, carries one; the server checks it before the EnrollHandler sees the request):
///   dh    = X25519(client_private, challenge_key)        (all zero: refused at both ends)
///   proof = BLAKE2s-256 keyed with dh (RFC 7693 keyed mode, src/crypto/blake2s) over
///           "warren enroll v2" || TLS exporter || client public key (32) || invite_id (16 ASCII)
///   TLS exporter = SSL_export_keying_material(label "EXPORTER-warren-enroll", no context, 32)
/// Only the holder of the private key matching `public_key` can compute dh; the exporter and
/// the per-connection challenge key make a proof useless on any other connection (no replay),
/// and a man in the middle cannot relay it (the TLS exporter differs on its two legs).
///
/// Error codes: invalid_request, unsupported_version (a version-1 request: upgrade the client),
/// proof_invalid (the proof is missing, malformed or wrong), invite_invalid (unknown id or wrong
/// secret: deliberately the same answer), invite_expired, invite_used_up, revoked, name_taken,
/// pool_exhausted, storage_error, busy, internal. docs/SERVER.md describes them.
///
/// Only public keys cross this channel; the client's private key never leaves the client.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
inline constexpr int kProtocolVersion = 2;
/// Domain separation of the proof and its channel binding (see the protocol above).
inline constexpr std::string_view kProofContext = "warren enroll v2";
inline constexpr std::string_view kExporterLabel = "EXPORTER-warren-enroll";

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

/// The mesh part of an enrollment answer (docs/MESH.md, "Enrollment answer"): present only
/// when the server is a mesh coordinator. JSON (key "mesh" of the enrollment object):
///   {"prefix_v4":"100.64.0.0/10","prefix_v6":"200::/7","domain":"warren","v4_index":0,
///    "stun":["203.0.113.1:3478",..],"relay":"203.0.113.1:3479"}   ("relay" absent when none)
/// `stun` (at most kMaxMeshStunServers) and `relay` are "host:port" (host as in the invite's
/// control endpoint: a name or a numeric address); the prefixes pass mesh::AddressPlan::create,
/// the domain mesh::canonical_mesh_domain (stored canonical), v4_index <= mesh::kMaxV4Index.
/// enrollment_from_json throws ControlError naming the field ("mesh.KEY"). A client that
/// predates mesh mode ignores the key (unknown keys are ignored).
inline constexpr std::size_t kMaxMeshStunServers = 8;
struct MeshSettings {
  net::Prefix prefix_v4, prefix_v6;
  std::string domain;
  std::uint32_t v4_index = 0;
  std::vector<std::string> stun;
  std::string relay;
  friend bool operator==(const MeshSettings&, const MeshSettings&) = default;
};

/// The QUIC transport offered by the server (issue 15; the server's `[quic]` table): present
/// only when the server listens for QUIC. JSON (key "quic" of the enrollment object):
///   {"endpoint":"vpn.example.com:443"}
/// `endpoint` is "host:port": the host of `server_endpoint` and the port of the server's first
/// `[quic] listen` address. The host must pass net::valid_host (a name or a numeric address,
/// nothing that could break the client's config file, where `warren join` writes it);
/// enrollment_from_json throws ControlError naming "quic.endpoint". A client that predates
/// QUIC ignores the key.
struct QuicSettings {
  std::string endpoint;
  friend bool operator==(const QuicSettings&, const QuicSettings&) = default;
};

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
  /// Set when the server is a mesh coordinator: `addresses` are then the node's key-derived
  /// /32 and /128, and the other nodes come from the roster (control/mesh_session.h).
  std::optional<MeshSettings> mesh;
  /// Set when the server offers the QUIC transport (its `[quic]` table).
  std::optional<QuicSettings> quic;
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

/// Client side: connects to the invite's endpoint, checks the pinned certificate, reads the
/// server's hello, sends the request with a proof made with `client_private` (the key itself
/// never leaves this process) and returns the enrollment. Throws EnrollError (its what() is a
/// complete sentence for the user) on refusal, timeout or a certificate mismatch. Thread-safe.
Enrollment enroll(const Invite& invite, std::string_view client_name,
                  const crypto::PrivateKey& client_private,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

// ---- proof of possession ---------------------------------------------------------------------

using EnrollProof = Secret<32>;

/// The proof for one connection (see the protocol above). EINVAL when X25519(client_private,
/// challenge_key) is all zero (a low-order challenge key: a broken or hostile server).
Result<EnrollProof> make_enroll_proof(const crypto::PrivateKey& client_private,
                                      const crypto::PublicKey& challenge_key,
                                      const ExporterValue& channel, std::string_view invite_id);

struct EnrollRequest;
/// Server side: whether `request.proof` was made by the holder of `request.public_key`'s
/// private key for this connection (`challenge_private` and `channel`). Constant time in the
/// proof; false for an all-zero X25519 result. Wipes its intermediate secrets.
[[nodiscard]] bool verify_enroll_proof(const crypto::PrivateKey& challenge_private,
                                       const ExporterValue& channel, const EnrollRequest& request);

/// The server's first message; parse_enroll_hello returns its challenge key or says what is
/// wrong with the message.
std::string enroll_hello_to_json(const crypto::PublicKey& challenge_key);
Result<crypto::PublicKey> parse_enroll_hello(std::string_view json);

// ---- server side ---------------------------------------------------------------------------

struct EnrollRequest {
  std::string invite_id;
  InviteSecret secret;
  std::string name;  ///< as sent by the client (may be empty)
  crypto::PublicKey public_key;
  EnrollProof proof;  ///< checked by the server before any EnrollHandler sees the request
};

struct EnrollReply {
  std::optional<Enrollment> enrollment;  ///< set on success
  std::string error_code;
  std::string error_message;
  static EnrollReply failure(std::string code, std::string message) {
    return EnrollReply{std::nullopt, std::move(code), std::move(message)};
  }
};

/// Decides one request whose proof of possession has been verified. Called on one of the
/// server's worker threads, possibly concurrently with others (EnrollServerOptions::workers).
using EnrollHandler = std::function<EnrollReply(const EnrollRequest&)>;

/// Parses and validates a request body (exposed for tests and the fuzzer). Failures: the
/// message names the problem and request_error_code() gives the code to answer with:
/// "unsupported_version" (any version but 2), "proof_invalid" (no well-formed "proof"; the
/// proof's value is checked by verify_enroll_proof), else "invalid_request".
Result<EnrollRequest> parse_enroll_request(std::string_view json);
std::string_view request_error_code(const Error& parse_error);
std::string enroll_request_to_json(const EnrollRequest& r);
std::string enroll_reply_to_json(const EnrollReply& r);

/// Limits of the enrollment server. One host must not be able to stop enrollment for others
/// (issue 12): it gets at most `max_connections_per_source` connections at once, each must
/// deliver its TLS ClientHello within `client_hello_timeout` and finish within
/// `request_timeout`, and nothing it does blocks the loop that serves everyone else.
struct EnrollServerOptions {
  /// Whole exchange (TLS handshake, hello, request, answer) must finish within this.
  std::chrono::milliseconds request_timeout{10'000};
  /// The client's TLS ClientHello must have arrived within this after the TCP accept.
  std::chrono::milliseconds client_hello_timeout{2'000};
  /// Connections open at once, all sources together; more are closed at once.
  std::size_t max_connections = 256;
  /// Connections open at once from one IPv4 address or one IPv6 /64; more are closed at once.
  std::size_t max_connections_per_source = 4;
  /// Threads that run the EnrollHandler (SQLite and fsync; the loop never waits for them).
  std::size_t workers = 2;
  /// Verified requests waiting for a worker; when full, the answer is `busy`.
  std::size_t max_queued_requests = 16;
  std::size_t max_request_bytes = kMaxMessageBytes;

  // Settings sessions (control/session.h): long-lived, counted apart from the enrollment caps
  // above (a session does not use up its source's enrollment connections).
  /// Sessions open at once, all sources together; more are refused ("busy").
  std::size_t max_sessions = 4096;
  /// Sessions open at once from one IPv4 address or one IPv6 /64 (clients behind one NAT).
  std::size_t max_sessions_per_source = 64;
  /// A session that sent us nothing for this long is dropped.
  std::chrono::milliseconds session_idle_timeout{60'000};
  /// A session we sent nothing for this long gets a ping (the client answers with a pong).
  std::chrono::milliseconds session_ping_interval{20'000};
  /// Bytes queued for one session and not yet written (a client that reads too slowly for the
  /// roster deltas, control/mesh_session.h): above this the session is closed; the node
  /// reconnects and asks for a snapshot.
  std::size_t max_session_backlog = 64 * 1024 * 1024;
};

using SessionHandler = std::function<std::optional<Enrollment>(const crypto::PublicKey&)>;

/// Messages of established sessions beyond the channel's own (control/mesh_session.h), for a
/// service such as the mesh roster (server/roster_service.h). Both run on the EnrollServer's
/// loop thread and must return at once (queue the work); neither may call back into the
/// EnrollServer except send_to_session().
struct SessionEvents {
  /// A message of an established session whose type the channel does not handle itself
  /// (anything but pong/ping): the session's id, the key it proved, the type and the whole
  /// message text (at most kMaxMessageBytes: the node → server limit).
  std::function<void(std::uint64_t session, const crypto::PublicKey& key, std::string_view type,
                     std::string_view message)>
      on_message;
  /// Session `session` is established (its proof verified, its settings queued).
  std::function<void(std::uint64_t session, const crypto::PublicKey& key)> on_established;
  /// Session `session` is gone (closed by either side, dropped, or the server stopped).
  std::function<void(std::uint64_t session)> on_closed;
};

/// Serves enrollments on a TCP port from one event-loop thread (non-blocking sockets and
/// non-blocking TLS), with a small worker pool for the handler:
///
///   accept ─► caps (global, per source) ─► TLS handshake ─► hello ─► request ─► verify proof
///     (loop thread: epoll, no call waits)                                          │
///   reply ◄── loop thread ◄── completion + wake ◄── worker: EnrollHandler ◄── bounded queue
///
/// A connection is closed at once when over a cap, when its ClientHello is late, when its
/// whole exchange is late, or on any TLS failure (garbage bytes fail the handshake).
class EnrollServer {
 public:
  /// Binds `listen` ("0.0.0.0:7443"; "[::]:7443" is both families); throws ControlError.
  /// Serving starts with start().
  EnrollServer(TlsIdentity identity, std::string_view listen, EnrollHandler handler,
               EnrollServerOptions options = {});
  /// The same on several addresses, served by the one loop: the caps hold across all of them
  /// (an IPv4 client counts as the same source on "0.0.0.0" and on "[::]"). Throws
  /// ControlError naming the address that cannot be bound.
  EnrollServer(TlsIdentity identity, const std::vector<std::string>& listen, EnrollHandler handler,
               EnrollServerOptions options = {});
  ~EnrollServer();
  EnrollServer(const EnrollServer&) = delete;
  EnrollServer& operator=(const EnrollServer&) = delete;

  /// Serves settings sessions (control/session.h) with `handler`; without one a session
  /// request is refused as invalid_request. Call before start().
  void set_session_handler(SessionHandler handler);
  /// The clients' settings changed (a reload): every session gets its client's settings again
  /// (the handler runs for each). Thread-safe; returns at once.
  void settings_changed();
  /// Sessions established now. Thread-safe.
  std::size_t active_sessions() const;
  /// Delivers the messages of established sessions to `events`. Call before start().
  void set_session_events(SessionEvents events);
  /// Queues `message` (one JSON frame, at most control::kMaxRosterMessageBytes) on the
  /// established session `session`; dropped when that session is gone. A session whose queued
  /// output exceeds max_session_backlog is closed. Thread-safe; returns at once (the loop
  /// writes it).
  void send_to_session(std::uint64_t session, std::string message);
  /// The same for a message shared by many sessions (one roster delta for all): the bytes are
  /// copied into the session's output only when the loop takes them.
  void send_to_session(std::uint64_t session, std::shared_ptr<const std::string> message);

  /// Starts the loop thread and the workers; throws ControlError if the loop cannot be made.
  void start();
  /// Stops accepting, closes every connection, joins the loop and the workers (a handler call
  /// in progress finishes first; queued requests are dropped unanswered). Idempotent.
  void stop();
  /// The port of the first address.
  std::uint16_t port() const;
  /// Connections open now (any state). Thread-safe.
  std::size_t active_connections() const;
  /// Requests answered (success or refusal) since start; for tests and metrics.
  std::uint64_t requests_served() const;

  /// The answers decided since construction: enrollments, and refusals by their code. A request
  /// is counted once its answer is made, whether or not the client then reads it; connections
  /// closed without an answer (caps, deadlines, TLS failures) are not requests. Thread-safe.
  struct AnswerCounts {
    std::uint64_t enrolled = 0;
    std::map<std::string, std::uint64_t, std::less<>> refused;  ///< by EnrollReply::error_code
  };
  AnswerCounts answer_counts() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::control
