#pragma once
/// The relay settings of a mesh node's daemon (warren-wg, the client daemon), from the
/// environment (runtime/settings.h reads them with the other WARREN_* settings):
///
///   WARREN_RELAY=HOST:PORT            the coordinator's relay ([mesh] relay_port), TCP/TLS
///   WARREN_RELAY_PIN=<64 hex>         SHA-256 of its TLS certificate (as an invite pins it)
///   WARREN_RELAY_DIRECT_RETRY=SECONDS while a peer is relayed, how often the direct path is
///                                     tried again (1..3600, default 30)
///
/// Pure.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "base/time.h"
#include "control/tls.h"

namespace warren::runtime {

/// WARREN_RELAY / WARREN_RELAY_PIN / WARREN_RELAY_DIRECT_RETRY (settings: parse_relay_settings).
struct RelaySettings {
  std::string host;
  std::uint16_t port = 0;
  control::Fingerprint pin{};
  /// While a peer is relayed, how often its direct endpoint is tried again.
  Duration direct_retry = std::chrono::seconds(30);
};

/// The environment's relay settings: nullopt when WARREN_RELAY is unset or empty. EINVAL
/// naming the variable for a bad host:port, a missing or malformed pin (64 hex digits), or a
/// retry that is not 1..3600 seconds.
[[nodiscard]] Result<std::optional<RelaySettings>> parse_relay_settings(
    const std::optional<std::string>& relay, const std::optional<std::string>& pin,
    const std::optional<std::string>& direct_retry);

}  // namespace warren::runtime
