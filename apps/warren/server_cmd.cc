// warren server: run a server, or operate on its database (invite, revoke, export).
//
//   warren server [--config FILE]              (default /etc/warren/server.toml)
//   warren server invite --config FILE --name NAME [--expires DURATION] [--uses N]
//   warren server invite revoke --config FILE ID
//   warren server invites --config FILE [--json]
//   warren server revoke --config FILE NAME
//   warren server export --config FILE NAME [--json | --qr[=utf8|ascii]]
//   warren server cleanup --config FILE
//   warren server reload [--config FILE]
//   warren server check [--config FILE] [--json]     (server_check.cc)
//   warren server clients|disable|enable ...      (server_inventory.cc)
//
// invite/revoke/export open the same state files as the running server (SQLite serialises
// the writers) and then ask a running server, through its root-only status socket, to apply
// the change to its interface at once ("sync"). Without a running server the change applies
// at its next start. A running server that does not confirm in time is an error (exit 1): the
// change is stored, and the server applies it by itself within seconds (it watches the
// database), but the operator must not be told it took effect when that is not known.
//
// reload checks the config file here (a bad one: its file:line:key message, exit 1, nothing
// sent), then asks the running server through its status socket to read it again ("reload")
// and prints what it applied and what needs a restart (server/reload.h); exit 1 when no server
// runs or it reports a failure. SIGHUP does the same without the answer.
//
// cleanup undoes what a server killed without its shutdown (kill -9, a crash) left on the host:
// it replays the journal of host changes (ip_forward, the NAT rule) and deletes the interface.
// It refuses while that server runs.
//
// Without --config every subcommand uses /etc/warren/server.toml; state files that config names
// beside itself live in /var/lib/warren unless they already exist in /etc/warren
// (server_paths.h has the exact rule).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "control/status.h"
#include "crypto/random.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/process.h"
#include "server/config.h"
#include "server/host_setup.h"
#include "server/runtime.h"
#include "server/state.h"
#include "server_inventory.h"
#include "server_paths.h"

namespace warren::apps {
namespace {

void server_usage(std::FILE* out) {
  std::fprintf(out,
               "Usage:\n"
               "  warren server [--config FILE]\n"
               "  warren server invite --config FILE --name NAME [--expires DURATION] [--uses N] "
               "[--json]\n"
               "  warren server invite revoke --config FILE ID\n"
               "  warren server invites --config FILE [--json]\n"
               "  warren server revoke --config FILE NAME\n"
               "  warren server export --config FILE NAME [--json | --qr[=utf8|ascii]]\n"
               "  warren server clients --config FILE [--json]\n"
               "  warren server disable --config FILE NAME   (off the interface, lease kept)\n"
               "  warren server enable --config FILE NAME\n"
               "  warren server cleanup --config FILE   (after a crash: restore ip_forward and "
               "NAT, delete the interface)\n"
               "  warren server check [--config FILE] [--json]   (would the server start?)\n"
               "  warren server reload [--config FILE]   (the running server re-reads its config)\n"
               "DURATION is a number and a unit: 90s, 30m, 24h, 7d, 2w (default 7d; 0 = never).\n"
               "FILE defaults to /etc/warren/server.toml (its state: /var/lib/warren).\n"
               "Environment: LOG_LEVEL=error|verbose|debug|silent (default verbose).\n");
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "warren server: %s\n\n", message.c_str());
  server_usage(stderr);
  return 2;
}

struct Args {
  std::string verb;  // "", invite, invite-revoke, invites, revoke, export, cleanup
  std::string config;
  std::string name;
  std::string expires = "7d";
  std::string uses = "1";
  bool json = false;
  ExportFormat export_format = ExportFormat::kText;
  std::vector<std::string> positional;
};

constexpr auto kSyncTimeout = std::chrono::seconds(5);

/// Tells a running server to reload its peers. Returns the exit code: 0 when it confirmed or
/// when none runs, 1 (with a precise message) when one runs and did not confirm.
int notify_running_server(const server::ServerConfig& cfg) {
  std::string why;
  try {
    std::string reply = control::query_daemon(cfg.interface, "sync",
                                              control::kDefaultStatusDir, kSyncTimeout);
    if (reply.rfind("ok", 0) == 0) {
      std::fprintf(stderr, "warren server: applied to the running server on %s\n",
                   cfg.interface.c_str());
      return 0;
    }
    why = "it answered: " + reply.substr(0, reply.find('\n'));
  } catch (const control::DaemonNotRunning&) {
    std::fprintf(stderr,
                 "warren server: no server is running for %s; the change applies at its next "
                 "start\n",
                 cfg.interface.c_str());
    return 0;
  } catch (const control::ControlError& e) {
    why = e.what();
  }
  std::fprintf(stderr,
               "warren server: the change is stored, but the server running on %s did not "
               "confirm it (%s); a live server applies it by itself within a few seconds — "
               "check with `warren status %s`\n",
               cfg.interface.c_str(), why.c_str(), cfg.interface.c_str());
  return 1;
}

std::string unix_time_text(std::int64_t t) {
  if (t == 0)
    return "never";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// `warren server invites`: what an operator may know of each invite; never its secret (only
/// its hash is stored anyway).
void print_invites(const std::vector<server::InviteRecord>& invites, std::int64_t now, bool json) {
  auto state = [now](const server::InviteRecord& r) {
    if (r.revoked())
      return "revoked";
    if (r.expires_at != 0 && now >= r.expires_at)
      return "expired";
    if (r.uses_left <= 0)
      return "used_up";
    return "valid";
  };
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : invites)
      out.push_back({{"id", r.id},
                     {"name", r.name},
                     {"state", state(r)},
                     {"uses_left", r.uses_left},
                     {"max_uses", r.max_uses},
                     {"created_at", r.created_at},
                     {"expires_at", r.expires_at},
                     {"revoked_at", r.revoked_at}});
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("%-16s  %-24s  %-8s  %-9s  %s\n", "ID", "NAME", "STATE", "USES LEFT", "EXPIRES");
  for (const auto& r : invites)
    std::printf("%-16s  %-24s  %-8s  %4lld/%-4lld  %s\n", r.id.c_str(), r.name.c_str(), state(r),
                static_cast<long long>(r.uses_left), static_cast<long long>(r.max_uses),
                unix_time_text(r.expires_at).c_str());
}

/// Applies server_paths.h's rule to the config's state files and creates the state directory
/// (0700) when a file moved there. False (with a message) when it cannot be created.
bool use_state_directory(server::ServerConfig& cfg) {
  auto exists = [](const std::string& p) { return platform::file_info(p).ok(); };
  const std::string key = server_state_path(cfg.private_key_file, cfg.directory, exists);
  const std::string db = server_state_path(cfg.database, cfg.directory, exists);
  if (key == cfg.private_key_file && db == cfg.database)
    return true;
  if (auto s = platform::make_directory(std::string(kServerStateDir), 0700); !s) {
    std::fprintf(stderr, "warren server: cannot create %s: %s\n", std::string(kServerStateDir).c_str(),
                 s.message().c_str());
    return false;
  }
  cfg.private_key_file = key;
  cfg.database = db;
  return true;
}

constexpr auto kReloadTimeout = std::chrono::seconds(10);

/// `warren server reload`: the config parsed already (here); the running server re-reads it.
int reload_running_server(const server::ServerConfig& cfg) {
  std::string reply;
  try {
    reply = control::query_daemon(cfg.interface, "reload", control::kDefaultStatusDir,
                                  kReloadTimeout);
  } catch (const control::DaemonNotRunning&) {
    std::fprintf(stderr, "warren server: no server is running for %s (%s); nothing to reload\n",
                 cfg.interface.c_str(), cfg.path.c_str());
    return 1;
  } catch (const control::ControlError& e) {
    std::fprintf(stderr, "warren server: reload of %s: %s\n", cfg.interface.c_str(), e.what());
    return 1;
  }
  const bool ok = reply.rfind("ok\n", 0) == 0;
  const std::size_t eol = reply.find('\n');
  const std::string body = eol == std::string::npos ? "" : reply.substr(eol + 1);
  std::fputs(body.c_str(), ok ? stdout : stderr);
  if (!ok) {
    std::fprintf(stderr, "warren server: the server on %s reported a failed reload\n",
                 cfg.interface.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int server_main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "check")  // its own file: server_check.cc
    return server_check_main(argc - 1, argv + 1);
  Args a;
  int i = 1;
  if (i < argc && argv[i][0] != '-') {
    a.verb = argv[i++];
    if (a.verb == "help") {
      server_usage(stdout);
      return 0;
    }
    if (a.verb != "invite" && a.verb != "invites" && a.verb != "revoke" && a.verb != "export" &&
        a.verb != "cleanup" && a.verb != "reload" && !is_inventory_verb(a.verb))
      return usage_error("unknown subcommand '" + a.verb + "'");
    if (a.verb == "invite" && i < argc && std::string_view(argv[i]) == "revoke") {
      a.verb = "invite-revoke";
      ++i;
    }
  }
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      server_usage(stdout);
      return 0;
    } else if (arg == "--config" || arg == "-c") {
      if (!value(a.config))
        return usage_error("--config needs a file");
    } else if (arg == "--name" && a.verb == "invite") {
      if (!value(a.name))
        return usage_error("--name needs a value");
    } else if (arg == "--expires" && a.verb == "invite") {
      if (!value(a.expires))
        return usage_error("--expires needs a duration");
    } else if (arg == "--uses" && a.verb == "invite") {
      if (!value(a.uses))
        return usage_error("--uses needs a number");
    } else if (arg == "--json" && (a.verb == "invites" || a.verb == "invite" ||
                                   a.verb == "clients" || a.verb == "export")) {
      a.json = true;
      if (a.verb == "export")
        a.export_format = ExportFormat::kJson;
    } else if ((arg == "--qr" || arg == "--qr=utf8" || arg == "--qr=ascii") && a.verb == "export") {
      a.export_format = arg == "--qr=ascii" ? ExportFormat::kQrAscii : ExportFormat::kQrUtf8;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option '" + std::string(arg) + "'");
    } else {
      a.positional.push_back(std::string(arg));
    }
  }
  if (a.config.empty())
    a.config = std::string(kDefaultServerConfig);
  if (a.json && a.verb == "export" && a.export_format != ExportFormat::kJson)
    return usage_error("export takes --json or --qr, not both");
  if (a.verb == "revoke" || a.verb == "export" || a.verb == "disable" || a.verb == "enable") {
    if (a.positional.size() != 1)
      return usage_error(a.verb + " needs exactly one client NAME");
    a.name = a.positional[0];
  } else if (a.verb == "invite-revoke") {
    if (a.positional.size() != 1)
      return usage_error("invite revoke needs exactly one invite ID (see `warren server invites`)");
    a.name = a.positional[0];
  } else if (!a.positional.empty()) {
    return usage_error("unexpected argument '" + a.positional[0] + "'");
  }
  std::optional<std::chrono::seconds> expires;
  long uses = 0;
  if (a.verb == "invite") {
    if (a.name.empty())
      return usage_error("invite needs --name NAME");
    expires = server::parse_duration(a.expires);
    if (!expires)
      return usage_error("--expires '" + a.expires + "' is not a duration like 24h or 7d");
    char* end = nullptr;
    uses = std::strtol(a.uses.c_str(), &end, 10);
    if (!end || *end || uses < 1 || uses > 100000)
      return usage_error("--uses must be a number from 1 to 100000");
  }

  server::ServerConfig cfg;
  try {
    cfg = server::load_config(a.config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warren server: %s\n", e.what());
    return 1;
  }
  if (!use_state_directory(cfg))
    return 1;
  if (a.verb == "cleanup") {
    if (!platform::has_net_admin()) {
      std::fprintf(stderr, "warren server: cleanup needs root or CAP_NET_ADMIN\n");
      return 1;
    }
    auto done = server::cleanup(cfg);
    if (!done) {
      std::fprintf(stderr, "warren server: cleanup of %s: %s\n", cfg.interface.c_str(),
                   done.error().text().c_str());
      return 1;
    }
    for (const auto& line : *done)
      std::fprintf(stderr, "warren server: %s\n", line.c_str());
    return 0;
  }
  if (a.verb == "reload")
    return reload_running_server(cfg);
  if (a.verb.empty()) {
    // A server logs enrollments by default; [log] level, or LOG_LEVEL=error|silent|debug over
    // both, changes that.
    const char* env = std::getenv("LOG_LEVEL");
    auto level = env ? platform::parse_log_level(env) : std::nullopt;
    if (!level && cfg.log_level)
      level = platform::parse_log_level(*cfg.log_level);
    platform::log_configure(level.value_or(platform::LogLevel::kVerbose), cfg.interface);
    // A reload reads the same file with the same state-file rule.
    const std::string path = a.config;
    return server::run_server(cfg, [path] {
      server::ServerConfig next = server::load_config(path);
      if (!use_state_directory(next))
        throw server::ConfigError("cannot use the state directory " +
                                  std::string(kServerStateDir));
      return next;
    });
  }

  try {
    server::ServerState st = server::open_state(cfg);
    for (const auto& w : st.warnings)
      std::fprintf(stderr, "warren server: warning: %s\n", w.c_str());
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    if (is_inventory_verb(a.verb))
      return run_inventory(a.verb, a.name, a.json, cfg, st, now,
                           [&] { return notify_running_server(cfg); });
    if (a.verb == "invite") {
      std::string line = st.registry->create_invite(a.name, *expires, static_cast<int>(uses),
                                                    st.tls.fingerprint(), now);
      if (!a.json) {
        std::printf("%s\n", line.c_str());
        return 0;
      }
      const auto id = control::parse_invite(line);
      for (const auto& r : st.registry->invites())
        if (id && r.id == id->id)
          std::printf("%s\n", invite_json(line, r).dump(2).c_str());
      return 0;
    }
    if (a.verb == "invites") {
      print_invites(st.registry->invites(), now, a.json);
      return 0;
    }
    if (a.verb == "invite-revoke") {
      auto rec = st.registry->revoke_invite(a.name, now);
      std::fprintf(stderr,
                   "warren server: revoked invite %s (%s); clients it enrolled stay enrolled\n",
                   rec.id.c_str(), rec.name.c_str());
      return 0;
    }
    if (a.verb == "revoke") {
      auto before = st.registry->revoke(a.name, now);
      std::string addrs;
      for (const auto& l : before.leases)
        addrs += " " + l.address.to_string();
      // A mesh node's addresses stay recorded (its revoked roster entry keeps them).
      std::fprintf(stderr, "warren server: revoked %s (%s:%s)\n", a.name.c_str(),
                   cfg.mesh ? "addresses kept reserved" : "freed",
                   addrs.empty() ? " nothing" : addrs.c_str());
      return notify_running_server(cfg);
    }
    // export: the one place where warren prints a private key, on purpose: a stock
    // WireGuard client needs it in its config file.
    auto ex = st.registry->export_client(a.name, now, crypto::SystemRandom::instance());
    const bool printed = print_export(*st.registry, ex.client, ex.private_key, a.export_format);
    const int notified = notify_running_server(cfg);
    return printed ? notified : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warren server: %s\n", e.what());
    return 1;
  }
}

}  // namespace warren::apps
