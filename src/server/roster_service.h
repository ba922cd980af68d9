#pragma once
/// The coordinator's roster service (docs/MESH.md, "Roster service"): the mesh roster built from
/// the registry and the nodes' endpoint reports, and its deltas pushed to every node's settings
/// session.
///
///   Server (registry, store) ── clients_changed(records) ──┐ (enrollment, revoke, disable,
///   EnrollServer loop ── on_message: roster_request ───────┤  enable, export, database change)
///                     ── on_message: endpoints ────────────┤
///                     ── on_closed ────────────────────────┤   mutex; nothing computed here
///                                                          ▼
///   RosterService thread, every kTick (200 ms) (a roster_request waits for the next tick):
///     RosterCore::tick ─► roster.upsert/remove (registry records, then the latest endpoint
///     report per node) ─► per session: diff(version it last got) ─► encode once per version
///     ─► frames ─► send(session, frame) (EnrollServer::send_to_session) — no lock held
///
/// Who gets what. A session takes part once it has sent a roster_request (a client that
/// predates mesh mode never does, and never gets a frame bigger than it reads), and only while
/// its key is an active node of the roster: a revoked, disabled or unknown node's request waits
/// unanswered (and is served if the node becomes active). Each session gets at most one frame
/// a tick: the answer to its request (diff(from), or the snapshot diff(0) when diff says
/// ESTALE), else the delta from the version it last received when the roster moved since.
///
/// Roster entries (contract of issue 13, item 3): every client enrolled through an invite whose
/// recorded addresses are its key-derived ones (registry.h, "Mesh mode"); exported clients
/// (stock WireGuard, no session) and clients without mesh addresses (enrolled before the server
/// became a coordinator, not joined since) are not nodes. Name: mesh_label(client name), made
/// unique with "-2", "-3", ... in enrollment order, a node keeping the name it has. State:
/// revoked when the client is revoked or disabled (no endpoints), else active. Candidates: the
/// node's last endpoint report, checked by control::check_endpoint_report.
///
/// Bounds: a tick's frames stay within a byte budget (RosterCore::kMaxBytesPerTick, round
/// robin over the sessions); endpoint reports are kept per node, latest wins, applied at the next
/// tick (a node reporting 1,000 times a second costs at most one version step a tick); pending
/// requests are one per session; the roster holds at most mesh::kMaxNodes entries (more are
/// logged and left out); the EnrollServer closes a session whose unsent output exceeds its
/// backlog bound.
///
/// Versions start at the Unix time in microseconds (see RosterCore's constructor), so a version
/// a node kept from an earlier run of the coordinator gets a snapshot, never a wrong diff.
///
/// RosterCore is the I/O-free, single-threaded core (tests drive it directly); RosterService
/// adds the lock, the thread and the sender. Both log through the `log` callback.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "control/mesh_session.h"
#include "mesh/roster.h"
#include "server/store.h"

namespace warren::server {

/// A client name as a node name (a DNS label): lower case; every character outside
/// [a-z0-9-] becomes '-'; leading and trailing '-' trimmed; at most 63 characters; "node" when
/// nothing is left.
[[nodiscard]] std::string mesh_label(std::string_view client_name);

using SessionId = std::uint64_t;
using LogFn = std::function<void(const std::string&)>;

class RosterCore {
 public:
  /// `first_version`: the roster's version before any change (the service passes the Unix time
  /// in microseconds, so that versions of an earlier run are never valid in this one; 0 for
  /// tests that want small numbers).
  RosterCore(mesh::AddressPlan plan, LogFn log, std::uint64_t first_version = 0);

  /// The registry's records now (every client, as LeaseStore::clients() returns them).
  /// Applied to the roster at the next tick.
  void set_clients(std::vector<ClientRecord> clients);
  /// Session `session` (whose proven key is `key`) asks for the roster from version `from`.
  void request(SessionId session, const crypto::PublicKey& key, std::uint64_t from);
  /// An endpoint report from the node holding `key` (already parsed; checked at the tick).
  void report_endpoints(const crypto::PublicKey& key, const control::EndpointReport& report);
  void session_closed(SessionId session);

  /// One tick: applies what arrived since the last one and returns the frames to send
  /// (session, JSON message), at most one per session, sessions at the same version sharing
  /// one message. The frames' bytes stay within the budget (set_max_bytes_per_tick; at least
  /// one frame goes out a tick): after a coordinator restart every node asks for a snapshot at
  /// once, and 10,000 copies of a 1.3 MB snapshot must not be queued in one go. Sessions left
  /// over keep what they wait for and are served first at the next tick (round robin). The
  /// core keeps no clock.
  struct Frame {
    SessionId session = 0;
    std::shared_ptr<const std::string> message;
  };
  /// Default budget of tick(): 64 MiB of frames a tick (320 MiB/s at 200 ms ticks).
  static constexpr std::size_t kMaxBytesPerTick = 64 * 1024 * 1024;
  void set_max_bytes_per_tick(std::size_t bytes) { max_bytes_per_tick_ = bytes; }
  [[nodiscard]] std::vector<Frame> tick();

  const mesh::Roster& roster() const { return roster_; }
  std::size_t sessions() const { return sessions_.size(); }
  /// Frames produced since construction (deltas and snapshots), for tests and logs.
  std::uint64_t frames_sent() const { return frames_sent_; }

 private:
  struct Session {
    crypto::PublicKey key;
    std::optional<std::uint64_t> requested;  ///< a roster_request not answered yet
    std::optional<std::uint64_t> sent;       ///< the version the node holds (as we sent it)
  };

  void apply_clients();
  void apply_reports();
  /// The message that brings a holder of `from` to the current version (cached per tick).
  std::shared_ptr<const std::string> message_from(std::uint64_t from);

  mesh::Roster roster_;
  LogFn log_;
  std::optional<std::vector<ClientRecord>> clients_;  // pending, newest wins
  std::map<crypto::PublicKey, control::EndpointReport> reports_;  // pending, newest wins
  std::map<crypto::PublicKey, control::EndpointReport> endpoints_;  // applied (checked)
  std::map<SessionId, Session> sessions_;
  // from-version → message, this tick only
  std::map<std::uint64_t, std::shared_ptr<const std::string>> cache_;
  std::uint64_t frames_sent_ = 0;
  std::size_t max_bytes_per_tick_ = kMaxBytesPerTick;
  SessionId cursor_ = 0;  ///< the next tick starts at the first session >= this (round robin)
};

/// The thread-safe front: RosterCore behind a mutex, ticked by its own thread. `send` is called
/// on that thread with no lock held (EnrollServer::send_to_session).
class RosterService {
 public:
  static constexpr std::chrono::milliseconds kTick{200};

  using Send = std::function<void(SessionId, std::shared_ptr<const std::string>)>;
  RosterService(mesh::AddressPlan plan, Send send, LogFn log);
  ~RosterService();  ///< stop()
  RosterService(const RosterService&) = delete;
  RosterService& operator=(const RosterService&) = delete;

  void start();
  /// Joins the thread. Idempotent. The EnrollServer must not deliver events afterwards (stop it
  /// first).
  void stop();

  /// Any thread; returns at once.
  void clients_changed(std::vector<ClientRecord> clients);
  /// For EnrollServer's SessionEvents (loop thread): parses roster_request and endpoints
  /// messages (a malformed one is logged and ignored; the session stays) and queues them.
  void on_session_message(SessionId session, const crypto::PublicKey& key, std::string_view type,
                          std::string_view message);
  void on_session_closed(SessionId session);

  /// A copy of the roster now (tests, status). Any thread.
  mesh::Roster roster() const;
  std::size_t sessions() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  RosterCore core_;   // guarded by mutex_
  bool stop_ = false;  // guarded by mutex_
  Send send_;
  LogFn log_;
  std::thread thread_;
};

}  // namespace warren::server
