#pragma once
/// The settings session: one long-lived, authenticated connection from a client daemon
/// (`warren up`) to the server's enrollment port, over which the server pushes what the client
/// is told (routes, DNS, MTU, keepalive) at once and again whenever a reload changes it. Later
/// message types (the mesh roster) travel the same channel.
///
///   client                                   server (EnrollServer's loop, enroll.h)
///     TLS 1.3, certificate pinned  ───────►  hello {challenge_key}
///     {"type":"session", public_key, proof}  ─► verify proof ─► SessionHandler (worker)
///                                ◄─────────  {"type":"settings","settings":{Enrollment}}
///                                ◄─────────  {"type":"ping"} every ping_interval when quiet
///     {"type":"pong"}            ─────────►  (anything from the client counts as alive)
///                                ◄─────────  {"type":"settings",...} after a reload changed them
///
/// Framing is the enrollment channel's: a 4-byte big-endian length and one JSON object of at
/// most kMaxMessageBytes. Every message carries "version" (kProtocolVersion, the channel's) and
/// "type"; a receiver ignores message types it does not know (so new ones can be added without
/// a version bump) but refuses another version. A refusal is the enrollment failure form
/// {"version":2,"ok":false,"error":{"code":..,"message":..}} and the server closes.
///
/// Proof of possession: the enrollment proof (enroll.h) with invite_id = kSessionProofId. No
/// invite id is "session" (they are 16 hex digits), so a session proof is never an enrollment
/// proof, and it is bound to its TLS connection like any other.
///
/// Who may hold a session: an enrolled client, not revoked, not disabled, with addresses (the
/// SessionHandler decides; else "unknown_client"). Limits (EnrollServerOptions): sessions are
/// counted apart from enrollments (they must not use up a source's enrollment cap); at most
/// max_sessions in all and max_sessions_per_source per IPv4 address or IPv6 /64; the server
/// pings a quiet session every session_ping_interval and drops one that sent nothing for
/// session_idle_timeout. The client treats a session that sent nothing (not even a ping) for
/// its own idle time as dead, keeps its current settings and reconnects with backoff.

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/result.h"
#include "control/enroll.h"
#include "control/mesh_session.h"
#include "platform/event_loop.h"

namespace warren::control {

inline constexpr std::string_view kSessionProofId = "session";

struct SessionRequest {
  crypto::PublicKey public_key;
  EnrollProof proof;
};

/// SessionHandler (enroll.h): the server's answer to a verified session request, the client's
/// current settings, or nullopt when this key may not hold a session. Runs on an enrollment
/// worker thread.

enum class SessionMessageType { kSettings, kPing, kPong, kRefused, kOther };

struct SessionMessage {
  SessionMessageType type = SessionMessageType::kOther;
  std::string type_name;                ///< as sent (kOther: an unknown type, to be ignored)
  std::optional<Enrollment> settings;   ///< kSettings
  std::string error_code, error_message;  ///< kRefused
};

std::string session_request_to_json(const SessionRequest& r);
/// Whether a request body asks for a session (its "type" is "session"); says nothing on its
/// validity. Lets the server tell a session from an enrollment before parsing either.
[[nodiscard]] bool is_session_request(std::string_view json);
/// Errors as parse_enroll_request's (request_error_code() gives the answer's code).
Result<SessionRequest> parse_session_request(std::string_view json);

/// The shape both key proofs share — the session request here and the QUIC hello
/// (control/quic_auth.h): {"version":V,"type":TYPE,"public_key":B64,"proof":B64}. EINVAL for
/// anything malformed (not a JSON object, no version, another type, a missing or all-zero key),
/// EPROTONOSUPPORT for another version, EACCES for a missing or malformed proof. `what` names
/// the message in the errors ("request", "hello").
struct KeyProofMessage {
  crypto::PublicKey public_key;
  std::array<std::uint8_t, 32> proof{};
};
[[nodiscard]] Result<KeyProofMessage> parse_key_proof_message(std::string_view json, int version,
                                                              std::string_view type,
                                                              std::string_view what);

std::string session_settings_to_json(const Enrollment& settings);
std::string session_ping_to_json();
std::string session_pong_to_json();
/// Any message of the session (either direction). EPROTO with the reason when it is not a
/// well-formed message of this version.
Result<SessionMessage> parse_session_message(std::string_view json);

Result<EnrollProof> make_session_proof(const crypto::PrivateKey& client_private,
                                       const crypto::PublicKey& challenge_key,
                                       const ExporterValue& channel);
[[nodiscard]] bool verify_session_proof(const crypto::PrivateKey& challenge_private,
                                        const ExporterValue& channel, const SessionRequest& r);

/// Client side of the session, on its own thread: connects, proves its key, hands every
/// settings message to `on_settings` (on the session's thread), answers pings, and reconnects
/// with backoff (1 s doubling to max_backoff) whenever the session fails or goes quiet.
struct SessionClientOptions {
  std::string control_endpoint;  ///< "host:port" of the enrollment server
  Fingerprint fingerprint{};     ///< its certificate's SHA-256 (the invite's pin)
  /// Connecting (resolution, TCP, TLS) and the first frames; stop() may wait this long when it
  /// comes during a connect.
  std::chrono::milliseconds connect_timeout{5'000};
  /// Nothing (not even a ping) from the server for this long: the session is dead.
  std::chrono::milliseconds idle_timeout{75'000};
  std::chrono::milliseconds max_backoff{60'000};
};

class SessionClient {
 public:
  using SettingsCallback = std::function<void(const Enrollment&)>;
  /// Logs through `log` (one line per state change: connected, lost, refused).
  SessionClient(SessionClientOptions options, const crypto::PrivateKey& key,
                SettingsCallback on_settings, std::function<void(const std::string&)> log);

  /// Mesh nodes (set before start()): `on_established` runs on the session's thread each time
  /// a session is established (after its first settings message, before any other message is
  /// handed over; a good place to send()); `on_roster` gets every roster message of an
  /// established session (control/mesh_session.h; frames up to kMaxRosterMessageBytes), parsed
  /// (an error when it is malformed: the node then asks for a snapshot).
  using RosterCallback = std::function<void(Result<mesh::RosterDelta>)>;
  void set_mesh_callbacks(std::function<void()> on_established, RosterCallback on_roster);
  /// Queues a message (JSON, at most kMaxMessageBytes) for the current session; sent promptly
  /// once it is established. Dropped when the session ends before it went out (the
  /// on_established callback sends what a new session needs). Any thread.
  void send(std::string json);
  ~SessionClient();  ///< stop()
  SessionClient(const SessionClient&) = delete;
  SessionClient& operator=(const SessionClient&) = delete;

  void start();
  /// Wakes the thread and joins it. Idempotent.
  void stop();
  /// Sessions established since start (for tests).
  std::uint64_t sessions() const { return sessions_.load(); }

 private:
  void run();
  /// One session until it fails; true when it was established (the backoff restarts).
  bool once();

  SessionClientOptions options_;
  crypto::PrivateKey key_;
  SettingsCallback on_settings_;
  std::function<void(const std::string&)> log_;
  std::function<void()> on_established_;
  RosterCallback on_roster_;
  std::mutex out_mutex_;
  std::vector<std::string> outbox_;                 // guarded by out_mutex_
  platform::EventLoop* loop_ = nullptr;             // guarded by out_mutex_ (wake() from send)
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;                          // guarded by mutex_
  std::unique_ptr<TlsStream> stream_;          // guarded by mutex_ (shutdown() from stop())
  std::atomic<std::uint64_t> sessions_{0};
};

}  // namespace warren::control
