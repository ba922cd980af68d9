#pragma once
/// What a daemon's data plane is built with: the program's own options plus the two
/// environment settings every daemon honours the same way.
///
///   WARREN_WORKERS=N      workers (threads, and TUN queues): 1..64; unset or "" = one per CPU
///   WARREN_OFFLOADS=...   kernel offloads (platform/offloads.h); unset = all
///
/// A bad value of either is a start-up error naming it: nothing is half-applied, and no program
/// caps or overrides the count (warren-wg, `warren server` and the client read it identically).
/// Pure: the environment is passed in (Environment::current() reads the real one).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "dataplane/engine.h"
#include "platform/offloads.h"
#include "platform/tun_device.h"
#include "runtime/relay_settings.h"

namespace warren::runtime {

/// The largest WARREN_WORKERS accepted (a multi-queue TUN allows more; a thread per queue beyond
/// this only adds contention).
inline constexpr std::size_t kMaxWorkers = 64;

struct Environment {
  std::optional<std::string> workers;   ///< WARREN_WORKERS
  std::optional<std::string> offloads;  ///< WARREN_OFFLOADS
  // The relay path of a mesh node (runtime/relay_settings.h).
  std::optional<std::string> relay;               ///< WARREN_RELAY
  std::optional<std::string> relay_pin;           ///< WARREN_RELAY_PIN
  std::optional<std::string> relay_direct_retry;  ///< WARREN_RELAY_DIRECT_RETRY
  unsigned cpus = 0;                    ///< 0 = unknown
  static Environment current();
};

/// WARREN_WORKERS: unset or "" = `cpus` (1 when unknown); else a decimal from 1 to kMaxWorkers.
/// EINVAL with "invalid WARREN_WORKERS: \"VALUE\" (use a number from 1 to 64)" otherwise.
[[nodiscard]] Result<std::size_t> parse_worker_count(const std::optional<std::string>& value,
                                                     unsigned cpus);

/// The program's part of the data plane's options.
struct Options {
  std::string interface;
  std::uint32_t mtu = 0;  ///< 0 = wg::kDefaultMtu
  /// listen_port, fwmark, device options; `offloads` is replaced by WARREN_OFFLOADS.
  dataplane::EngineOptions engine;
  /// A mesh node's STUN servers (its enrollment's); WARREN_STUN, when set, replaces them.
  std::vector<net::Endpoint> stun_servers;
  /// A mesh node's relay (its enrollment's); WARREN_RELAY, when set, replaces it.
  std::optional<RelaySettings> relay;
};

/// Everything the runtime creates the TUN and the engine with.
struct Settings {
  /// Options::stun_servers (the runtime lets WARREN_STUN replace them at start).
  std::vector<net::Endpoint> stun_servers;
  platform::TunOptions tun;
  dataplane::EngineOptions engine;
  platform::Offloads offloads;
  /// WARREN_RELAY set, else Options::relay: the node's relay path (runtime/relay_transport.h).
  std::optional<RelaySettings> relay;
};

/// Options + environment → settings (a bad WARREN_RELAY* is an error naming it): TUN name, MTU, one
/// queue per worker, IFF_VNET_HDR when the `tun` offload is allowed; the engine's UDP offloads from
/// the same policy.
[[nodiscard]] Result<Settings> assemble(const Options& options, const Environment& env);

}  // namespace warren::runtime
