// warren server check [--config FILE] [--json]: would `warren server` start? (The checks are
// src/server/check.h's; this file prints them.)
//
//   ok: config /etc/warren/server.toml
//   ok: WireGuard private key /var/lib/warren/warren0.key (public key ...)
//   error: /etc/warren/server.toml:7:15: interface.listen_port: must be 1..65535
//   ...
//   ok: the server would start
//
// Exit 0 when the server would start (warnings included: the server only warns about them
// too), 1 when it would not, 2 on a bad command line. A server already running on the
// database is reported, not an error: the check is then about this configuration's files and
// ports, which that server holds (docs/SERVER.md "Checking a configuration").

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "commands.h"
#include "platform/files.h"
#include "server/check.h"
#include "server_paths.h"

namespace warren::apps {
namespace {

void check_usage(std::FILE* out) {
  std::fprintf(out,
               "Usage:\n"
               "  warren server check [--config FILE] [--json]\n"
               "Validates the config, the key files, the database and the listen ports without\n"
               "changing or starting anything. Exit 0: the server would start; 1: it would not.\n"
               "FILE defaults to /etc/warren/server.toml (its state: /var/lib/warren).\n");
}

/// server_paths.h's rule, as `warren server` applies it, minus creating the state directory:
/// that is reported as a directory the server makes at start.
std::vector<std::string> place_state(server::ServerConfig& cfg) {
  auto exists = [](const std::string& p) { return platform::file_info(p).ok(); };
  const std::string key = server_state_path(cfg.private_key_file, cfg.directory, exists);
  const std::string db = server_state_path(cfg.database, cfg.directory, exists);
  if (key == cfg.private_key_file && db == cfg.database)
    return {};
  cfg.private_key_file = key;
  cfg.database = db;
  return {std::string(kServerStateDir)};
}

}  // namespace

int server_check_main(int argc, char** argv) {
  std::string config(kDefaultServerConfig);
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      check_usage(stdout);
      return 0;
    } else if (arg == "--config" || arg == "-c") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "warren server check: --config needs a file\n\n");
        check_usage(stderr);
        return 2;
      }
      config = argv[++i];
    } else if (arg == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "warren server check: unexpected argument '%s'\n\n", argv[i]);
      check_usage(stderr);
      return 2;
    }
  }

  const server::CheckReport report = server::check_server(config, {.place_state = place_state});
  const bool ok = report.would_start();
  if (json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& l : report.lines)
      checks.push_back({{"check", l.check},
                        {"level", server::check_level_name(l.level)},
                        {"message", l.message}});
    nlohmann::json out = {{"config", config},
                          {"would_start", ok},
                          {"server_running", report.server_running},
                          {"checks", checks}};
    std::printf("%s\n", out.dump(2).c_str());
    return ok ? 0 : 1;
  }
  std::size_t errors = 0, warnings = 0;
  for (const auto& l : report.lines) {
    std::printf("%s: %s\n", server::check_level_name(l.level), l.message.c_str());
    errors += l.level == server::CheckLevel::kError;
    warnings += l.level == server::CheckLevel::kWarning;
  }
  const char* verdict =
      report.server_running ? "no problem found (a server is running)" : "the server would start";
  if (!ok)
    std::printf("error: the server would not start (%zu error%s)\n", errors,
                errors == 1 ? "" : "s");
  else if (warnings > 0)
    std::printf("ok: %s; it logs the %zu warning%s above too\n", verdict, warnings,
                warnings == 1 ? "" : "s");
  else
    std::printf("ok: %s\n", verdict);
  return ok ? 0 : 1;
}

}  // namespace warren::apps
