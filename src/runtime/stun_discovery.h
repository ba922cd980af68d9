#pragma once
/// StunDiscovery: a daemon's mesh endpoint discovery (docs/MESH.md, "Endpoint discovery"). It
/// asks STUN servers, from the WireGuard UDP socket itself, which public address and port the
/// node's WireGuard traffic leaves with, and keeps the answers for the status socket and logs.
///
///   runtime timer (100 ms) ─► tick() ─► mesh::StunClient::tick ─► Engine::send_datagram
///                                         (worker 0's socket: WireGuard's port and mapping)
///   worker receive batch ─► not WireGuard, stun::is_stun ─► on_stun() ─► StunClient verdict
///   status socket ─► status() ─► InterfaceStatus::stun       log: "STUN: reflexive ..."
///
/// Which servers: WARREN_STUN in the daemon's environment (every daemon: warren-wg, the client,
/// the server), a comma-separated list of numeric `address:port` endpoints, e.g.
/// `WARREN_STUN=198.51.100.1:3478,198.51.100.2:3478`. Two or more servers let the node classify
/// its NAT's mapping (mesh::StunClient). Unset or empty: no discovery, no cost. A mesh node's
/// client daemon gets its servers from its enrollment (runtime::Options::stun_servers, the
/// config's `#@warren MeshStun`); WARREN_STUN, when set, replaces them.
///
/// Thread-safety: on_stun() runs on any worker thread, tick() and status() on the runtime's
/// and the status server's threads; one mutex guards the client. Nothing is called while it
/// is held except the pure client and the logger (sends happen after it is released).

#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "base/random.h"
#include "base/result.h"
#include "control/status.h"
#include "dataplane/engine.h"
#include "mesh/stun_client.h"
#include "platform/clock.h"

namespace warren::runtime {

/// WARREN_STUN's value: comma-separated `address:port` (IPv6 in brackets), at least one, port
/// != 0. EINVAL naming the bad item otherwise ("invalid WARREN_STUN: \"x\" is not
/// address:port").
[[nodiscard]] Result<std::vector<net::Endpoint>> parse_stun_servers(std::string_view value);

class StunDiscovery final : public dataplane::StunSink {
 public:
  /// `random` and `clock` must outlive this object.
  StunDiscovery(std::vector<net::Endpoint> servers, RandomSource& random, platform::Clock& clock,
                mesh::StunClientOptions options = {});

  /// Becomes `engine`'s STUN sink and sends through it. Before engine.start(); the engine's
  /// workers must stop before this object goes.
  void attach(dataplane::Engine& engine);
  /// Starts, retransmits and times out transactions that are due (call every ~100 ms). A new
  /// listen port (UAPI `listen_port=`) starts over: the old mapping is not the socket's now.
  void tick();

  void on_stun(const net::Path& from, ConstBytes message, Now now) override;

  [[nodiscard]] control::StunStatus status() const;
  [[nodiscard]] mesh::StunClientCounters counters() const;

 private:
  platform::Clock& clock_;
  dataplane::Engine* engine_ = nullptr;
  std::uint16_t port_ = 0;  // the engine's port the results belong to (tick()'s thread)
  mutable std::mutex mutex_;
  mesh::StunClient client_;  // guarded by mutex_
  std::vector<mesh::StunClient::Request> out_;
};

}  // namespace warren::runtime
