#pragma once
/// The coordinator's relay over TCP/TLS and UDP (docs/MESH.md "Relay"): the socket glue around the
/// I/O-free mesh::relay::Switchboard.
///
///   accept ─► caps (all, per source) ─► TLS 1.3 (the control channel's certificate; nodes pin
///     it as for enrollment) ─► StreamReader ─► Switchboard::frame ─► per-connection output
///     queue ─► TLS writes (non-blocking; the loop never waits for one connection)
///   UDP, same port number: one frame per datagram; a source opens with a "hello" (an auth frame
///     of zeros, as large as the challenge it gets: no amplification) and gets a stateless
///     challenge (mesh::relay::StatelessChallenger: nothing is kept for the source); its
///     udp-auth (cookie echoed, then the proof) makes it a switchboard connection, forgotten
///     after 60 s of silence; garbage, forged cookies and unknown sources get no answer
///   Server::sync (enrollment, revoke, disable, SIGHUP, database change) ─► revalidate() ─►
///     loop thread asks the authorizer again ─► connections of revoked / disabled nodes closed
///
/// One loop thread owns every connection and the switchboard. A connection is closed when over
/// a cap, when its ClientHello is late (client_hello_timeout), when it has not authenticated
/// within the switchboard's auth_timeout, on any TLS or framing failure, and after the error
/// frame of a refusal (at most close_linger later if the node does not read it).
/// Thread-safety: revalidate(), counters() and stop() may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "control/tls.h"
#include "crypto/x25519.h"
#include "mesh/relay_switchboard.h"

namespace warren::server {

struct RelayServiceOptions {
  mesh::relay::SwitchboardOptions switchboard;
  std::chrono::milliseconds client_hello_timeout{2'000};
  /// After a refusal, how long the error frame may take to be read before the close.
  std::chrono::milliseconds close_linger{1'000};
  std::size_t max_connections = 4096;
  /// Connections at once from one IPv4 address or IPv6 /64 (several nodes may share a NAT).
  std::size_t max_connections_per_source = 16;
  /// Also serve the relay over UDP on the same port number (one frame per datagram).
  bool udp = true;
};

/// What `warren status --json` shows under "relay".
struct RelayCounters {
  std::uint64_t connections = 0;  ///< open now, any state
  std::uint64_t nodes = 0;        ///< authenticated now
  mesh::relay::SwitchboardCounters switchboard;
  std::uint64_t refused_connections = 0;  ///< over a cap
  std::uint64_t hello_timeouts = 0;
  std::uint64_t udp_challenges = 0;    ///< stateless challenges sent to UDP hellos
  std::uint64_t udp_auth_refused = 0;  ///< udp-auth frames with a stale/forged cookie or bad proof
};

class RelayService {
 public:
  using Authorizer = mesh::relay::Switchboard::Authorizer;

  /// Binds `listen` ("0.0.0.0:7444"). `authorized` runs on the relay's thread. Throws
  /// control::ControlError naming the address.
  RelayService(control::TlsIdentity identity, std::string_view listen, Authorizer authorized,
               RelayServiceOptions options = {});
  ~RelayService();
  RelayService(const RelayService&) = delete;
  RelayService& operator=(const RelayService&) = delete;

  /// Starts the loop thread; throws control::ControlError.
  void start();
  /// Closes every connection and joins the thread. Idempotent.
  void stop();
  std::uint16_t port() const;
  /// The roster changed: re-check every connected node (on the loop thread, promptly).
  void revalidate();
  /// The counters as the loop thread last published them (after each of its rounds).
  RelayCounters counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::server
