// `warren server check` (see check.h). Every step reuses what the server runs at start (the
// parser, the key loaders, the bind calls) minus whatever would create something.

#include "server/check.h"

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>

#include "control/tls.h"
#include "crypto/x25519.h"
#include "platform/datagram.h"
#include "platform/files.h"
#include "platform/process.h"
#include "platform/tcp.h"
#include "platform/udp.h"
#include "server/dns_service.h"
#include "server/state.h"
#include "server/store.h"

namespace warren::server {
namespace {

class Checker {
 public:
  explicit Checker(CheckReport& report) : report_(report) {}

  void ok(const char* check, std::string message) {
    add(check, CheckLevel::kOk, std::move(message));
  }
  void warn(const char* check, std::string message) {
    add(check, CheckLevel::kWarning, std::move(message));
  }
  void error(const char* check, std::string message) {
    add(check, CheckLevel::kError, std::move(message));
  }

 private:
  void add(const char* check, CheckLevel level, std::string message) {
    report_.lines.push_back(CheckLine{check, level, std::move(message)});
  }
  CheckReport& report_;
};

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool missing(const std::string& path) {
  return platform::file_info(path).code() == ENOENT;
}

/// Whether the server can create a missing state file in `dir`: it exists, or the server
/// makes it at start.
bool can_create_in(const std::string& dir, const std::vector<std::string>& created_dirs) {
  for (const auto& d : created_dirs)
    if (d == dir)
      return true;
  auto info = platform::file_info(dir);
  return info.ok() && info->directory;
}

/// A state file that does not exist yet: created at start, in a directory that must exist.
void missing_state_file(Checker& c, const char* check, const std::string& what,
                        const std::string& path, const std::vector<std::string>& created_dirs) {
  const std::string dir = dir_of(path);
  if (can_create_in(dir, created_dirs))
    c.ok(check, what + " " + path + ": missing, will be created at first start");
  else
    c.error(check, path + ": " + what + " is missing and its directory " + dir +
                       " does not exist, so the server cannot create it");
}

void check_private_key(Checker& c, const ServerConfig& cfg, const std::vector<std::string>& dirs) {
  const std::string& path = cfg.private_key_file;
  if (missing(path)) {
    missing_state_file(c, "private_key", "WireGuard private key", path, dirs);
    return;
  }
  try {
    std::string warning;
    const crypto::PrivateKey key = load_private_key(path, &warning);
    c.ok("private_key", "WireGuard private key " + path + " (public key " +
                            crypto::derive_public_key(key).to_base64() + ")");
    if (!warning.empty())
      c.warn("private_key", warning);
  } catch (const std::exception& e) {
    c.error("private_key", e.what());
  }
}

void check_tls(Checker& c, const ServerConfig& cfg, const std::vector<std::string>& dirs) {
  const std::string cert = cfg.tls_cert_file(), key = cfg.tls_key_file();
  const bool no_cert = missing(cert), no_key = missing(key);
  if (no_cert && no_key) {
    if (can_create_in(dir_of(cert), dirs))
      c.ok("tls", "TLS certificate " + cert + " and key " + key +
                      ": missing, will be created at first start");
    else
      c.error("tls", cert + ": the TLS certificate and key are missing and their directory " +
                         dir_of(cert) + " does not exist, so the server cannot create them");
    return;
  }
  if (no_cert != no_key) {  // the refusal TlsIdentity::load_or_create makes at start
    c.error("tls", (no_key ? key : cert) + ": missing (while " + (no_key ? cert : key) +
                       " exists); restore it or delete both to make a new certificate "
                       "(invites issued so far then stop working)");
    return;
  }
  try {
    const control::TlsIdentity id = control::TlsIdentity::load(cert, key);
    c.ok("tls", "TLS certificate " + cert + " and key " + key + " (fingerprint " +
                    control::fingerprint_to_hex(id.fingerprint()).substr(0, 16) + ")");
    if (auto w = private_file_warning(key, "the control channel's TLS key"))
      c.warn("tls", *w);
  } catch (const std::exception& e) {
    c.error("tls", e.what());
  }
}

void check_database(Checker& c, const ServerConfig& cfg, const std::vector<std::string>& dirs) {
  const std::string& path = cfg.database;
  auto schema = read_sqlite_schema(path);
  if (!schema && schema.code() == ENOENT) {
    missing_state_file(c, "database", "database", path, dirs);
    return;
  }
  if (!schema) {
    c.error("database", path + ": cannot read the database: " + schema.message());
    return;
  }
  const int v = schema->version, supported = schema->supported;
  if (v > supported)
    // The words of the store's own refusal at start (sqlite_store.cc).
    c.error("database", path + ": database schema version " + std::to_string(v) +
                            " is newer than this warren understands (" + std::to_string(supported) +
                            ")");
  else if (v == 0)
    c.ok("database", "database " + path + ": empty, the schema will be made at start");
  else if (v < supported)
    c.ok("database", "database " + path + ": schema version " + std::to_string(v) +
                         ", will be migrated to " + std::to_string(supported) + " at start");
  else
    c.ok("database", "database " + path + " (schema version " + std::to_string(v) + ")");
  if (auto w = private_file_warning(path, "the lease database"))
    c.warn("database", *w);
}

/// Sets report.server_running.
void check_lock(Checker& c, const ServerConfig& cfg, CheckReport& report) {
  const std::string lock = cfg.database + ".lock";
  auto held = platform::FileLock::held(lock);
  if (!held) {
    c.error("lock", lock + ": cannot examine the database lock: " + held.message());
    return;
  }
  report.server_running = *held;
  if (*held)
    c.ok("lock", "a server is running on this database (it holds " + lock + ")");
  else
    c.ok("lock", "no server is running on this database");
}

/// One listening socket's line. `what` names it ("UDP port 51820"), `key` its config key.
void port_line(Checker& c, const char* check, const ServerConfig& cfg, const std::string& what,
               const char* key, const Status& bound, bool server_running) {
  if (bound.ok()) {
    c.ok(check, what + " is free");
  } else if (bound.code() == EADDRINUSE && server_running) {
    c.ok(check, what + " is in use by the server running on this database");
  } else if (bound.code() == EADDRINUSE) {
    c.error(check, cfg.path + ": " + key + ": " + what + " is in use by another program");
  } else {
    c.error(check, cfg.path + ": " + key + ": " + what + ": cannot bind: " + bound.message());
  }
}

Status bind_udp(std::uint16_t port) {
  // As the engine binds (both families, IPv6 v6-only), but alone: without SO_REUSEPORT the
  // bind fails while anyone holds the port, a running server's reuseport group included.
  platform::BindOptions o;
  o.port = port;
  o.reuse_port = false;
  o.buffer_bytes = 0;
  o.gso = false;
  o.gro = false;
  auto bind = platform::make_system_bind_factory()->open(o);
  if (!bind)
    return bind.error();
  return {};  // the sockets close here
}

Status bind_udp_address(const std::string& address) {
  auto endpoint = net::Endpoint::parse(address);
  if (!endpoint)  // the parser accepted it, so this does not happen
    return Error(EINVAL, "'" + address + "' is not address:port");
  auto socket = platform::open_datagram_socket(*endpoint);
  if (!socket)
    return socket.error();
  return {};  // closed here
}

Status listen_tcp(const std::string& address) {
  auto l = platform::tcp_listen(address);
  if (!l)
    return l.error();
  return {};  // closed at once: a connection in this instant is refused, nothing more
}

void check_ports(Checker& c, const ServerConfig& cfg, bool server_running) {
  port_line(c, "udp_port", cfg, "UDP port " + std::to_string(cfg.listen_port),
            "interface.listen_port", bind_udp(cfg.listen_port), server_running);
  for (const auto& address : cfg.control_listen)
    port_line(c, "enrollment_listen", cfg, "enrollment listen address " + address,
              "enrollment.listen", listen_tcp(address), server_running);
  for (const auto& address : cfg.metrics_listen) {
    // Checked one after the other, two equal addresses would each look free.
    if (std::find(cfg.control_listen.begin(), cfg.control_listen.end(), address) !=
        cfg.control_listen.end()) {
      c.error("metrics_listen", cfg.path + ": metrics.listen: " + address +
                                    " is also enrollment.listen; the server cannot listen twice");
      continue;
    }
    port_line(c, "metrics_listen", cfg, "metrics listen address " + address, "metrics.listen",
              listen_tcp(address), server_running);
  }
  // [quic]: each listed wildcard address (0.0.0.0, [::]) on the QUIC port, as the transport
  // opens it.
  for (const auto& address : cfg.quic_listen)
    port_line(c, "quic_listen", cfg, "QUIC listen address " + address, "quic.listen",
              bind_udp_address(address), server_running);
}

// [dns]: where other names will go. (Port 53 on the tunnel address cannot be probed before the
// interface exists.)
void check_dns(Checker& c, const ServerConfig& cfg) {
  if (!cfg.dns_enabled)
    return;
  auto u = dns_upstreams(cfg);
  if (!u) {
    c.warn("dns", u.message() + ": names outside " + cfg.dns_domain + " will get SERVFAIL");
    return;
  }
  if (u->empty()) {
    c.warn("dns",
           "no upstream resolver (none in /etc/resolv.conf but the server itself, and no "
           "dns.upstreams): names outside " +
               cfg.dns_domain + " will get SERVFAIL");
    return;
  }
  std::string to;
  for (const auto& e : *u)
    to += (to.empty() ? "" : " ") + e.to_string();
  c.ok("dns", "DNS on the tunnel address(es) port 53: *." + cfg.dns_domain +
                  " from the registry, other names to " + to);
}

}  // namespace

const char* check_level_name(CheckLevel level) {
  switch (level) {
    case CheckLevel::kOk:
      return "ok";
    case CheckLevel::kWarning:
      return "warning";
    case CheckLevel::kError:
      return "error";
  }
  return "?";
}

bool CheckReport::would_start() const {
  for (const auto& l : lines)
    if (l.level == CheckLevel::kError)
      return false;
  return true;
}

CheckReport check_server(const std::string& config_path, const CheckOptions& options) {
  CheckReport report;
  Checker c(report);
  ServerConfig cfg;
  try {
    cfg = load_config(config_path);
  } catch (const std::exception& e) {
    c.error("config", e.what());  // "FILE:LINE:COLUMN: key: message", as the server says it
    return report;
  }
  c.ok("config", "config " + config_path);
  std::vector<std::string> created_dirs;
  if (options.place_state)
    created_dirs = options.place_state(cfg);
  check_private_key(c, cfg, created_dirs);
  check_tls(c, cfg, created_dirs);
  check_database(c, cfg, created_dirs);
  check_lock(c, cfg, report);
  check_ports(c, cfg, report.server_running);
  check_dns(c, cfg);
  return report;
}

}  // namespace warren::server
