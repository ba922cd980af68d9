#pragma once
/// What a settings message from the server (control/session.h) changes in a running client's
/// configuration. Pure (tests/unit/client/settings_test.cc); the daemon applies the result.
///
///   Enrollment (pushed) ─► settings_change(current config) ─► next config + what changed
///     routes  -> the server peer's AllowedIPs   (engine, and routes: host steps)
///     dns     -> DNS servers (search domains stay the file's)   (host steps)
///     mtu     -> MTU                                            (host steps)
///     persistent_keepalive -> the server peer's keepalive       (engine only)
///     quic    -> QuicEndpoint (and Transport = auto when newly offered and the file names no
///                mode; both dropped when withdrawn)            (the transport choice; host
///                steps when the MTU cap of plan.h's tunnel_mtu turns on or off)
///
/// The server peer is the one whose key is the message's server_public_key; a message for
/// another server changes nothing. Addresses and the endpoint are not taken from a push (they
/// change with a re-join); a difference is only reported.

#include <optional>
#include <string>
#include <vector>

#include "client/config.h"
#include "control/enroll.h"

namespace warren::client {

struct SettingsChange {
  ClientConfig next;
  std::vector<std::string> changes;  ///< "routes: [10.8.0.0/24] -> [10.8.0.0/24, 10.9.0.0/24]"
  std::vector<std::string> ignored;  ///< differences a push does not apply
  bool host = false;  ///< routes, DNS or MTU: the host steps are redone
  bool peer = false;  ///< AllowedIPs or keepalive: the engine's peer is updated
  /// QuicEndpoint or Transport changed: the daemon re-reads them into its transport choice.
  bool transport = false;
};

/// nullopt when the message changes nothing that a push applies.
[[nodiscard]] std::optional<SettingsChange> settings_change(const ClientConfig& current,
                                                            const control::Enrollment& pushed);

}  // namespace warren::client
