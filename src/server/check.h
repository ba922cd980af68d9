#pragma once
/// `warren server check`: would `warren server` start with this configuration? It examines, in
/// the order the server meets them at start, without creating, changing or starting anything:
///
///   config ─► WireGuard key ─► TLS identity ─► database schema ─► database lock
///          ─► UDP port ─► enrollment listen address ─► metrics listen address
///          ─► QUIC listen address(es) ([quic] listen, UDP)
///
///  * config: parsed by the server's own parser, so its errors are the server's
///    ("FILE:LINE:COLUMN: key: message"); nothing else is examined when it fails.
///  * keys: the WireGuard private key and the control channel's TLS key and certificate are
///    read and parsed as at start (load_private_key, TlsIdentity::load); a missing one is fine
///    ("will be created at first start") when its directory exists. The mode and owner checks
///    the server only warns about (private_file_warning) are warnings here too.
///  * database: read read-only (read_sqlite_schema, no side files); a schema newer than this
///    build is an error, an older one is migrated at start.
///  * lock: a server holding `DATABASE.lock` is reported ("a server is running on this
///    database"); that is not an error, and the ports it holds are reported as its own.
///  * ports: each is bound as the server binds it (platform/udp.h, platform/tcp.h, without
///    SO_REUSEPORT, so a running server's sockets are seen) and released at once.
///
/// Warnings never make the server refuse to start, so they never fail the check.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "server/config.h"

namespace warren::server {

enum class CheckLevel : std::uint8_t { kOk, kWarning, kError };
/// "ok", "warning", "error".
const char* check_level_name(CheckLevel level);

struct CheckLine {
  /// What was checked: "config", "private_key", "tls", "database", "lock", "udp_port",
  /// "enrollment_listen", "metrics_listen", "quic_listen".
  std::string check;
  CheckLevel level = CheckLevel::kOk;
  std::string message;  ///< for the operator; an error names the file (and line) and the key
};

struct CheckReport {
  std::vector<CheckLine> lines;  ///< in the order above
  bool server_running = false;   ///< a server holds the database's lock
  /// No line is an error. (With a server running: a restart with this configuration would.)
  [[nodiscard]] bool would_start() const;
};

struct CheckOptions {
  /// Moves the parsed config's state files where the server will really look for them (the
  /// installed layout's rule, apps/warren/server_paths.h) and returns the directories the
  /// server creates at start for them (a missing one of those is no error). May be empty.
  std::function<std::vector<std::string>(ServerConfig&)> place_state;
};

/// Runs every check on the config file `config_path`. Never throws for what it examines (each
/// problem becomes a line); creates no file and leaves no socket open.
[[nodiscard]] CheckReport check_server(const std::string& config_path,
                                       const CheckOptions& options = {});

}  // namespace warren::server
