// warren join / up / down: the client commands (the work is in src/client).

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#include <string_view>

#include "base/result.h"
#include "base/secure.h"
#include "platform/files.h"
#include "client/config.h"
#include "client/daemon.h"
#include "client/join.h"
#include "commands.h"
#include "crypto/random.h"
#include "platform/log.h"
#include "platform/log_output.h"
#include "platform/process.h"

namespace warren::apps {
namespace {

using client::ClientConfig;
using client::DaemonOptions;

void up_usage(std::FILE* out) {
  std::fprintf(out,
               "Usage: warren up [-f|--foreground] [--dead-after SECONDS] CONFIG\n"
               "  CONFIG is a wg-quick file (IFNAME.conf) or an interface name, looked up as\n"
               "  /etc/warren/IFNAME.conf, then /etc/wireguard/IFNAME.conf.\n"
               "  --dead-after S   prod a handshake when the server was silent this long (135)\n"
               "Environment: LOG_LEVEL=error|verbose|debug, WARREN_DNS_BACKEND=resolvconf|\n"
               "  resolved|file (default: detected)\n");
}

bool exists(const std::string& p) {
  return platform::file_info(p).ok();
}

std::string find_config(const std::string& arg) {
  if (arg.find('/') != std::string::npos || arg.ends_with(".conf"))
    return arg;
  for (const char* dir : {"/etc/warren/", "/etc/wireguard/"}) {
    std::string p = std::string(dir) + arg + ".conf";
    if (exists(p))
      return p;
  }
  return "/etc/wireguard/" + arg + ".conf";
}

bool dns_override(DaemonOptions& o) {
  const char* v = std::getenv("WARREN_DNS_BACKEND");
  if (!v || !*v)
    return true;
  std::string_view s(v);
  if (s == "resolvconf")
    o.dns = client::DnsMethod::kResolvconf;
  else if (s == "resolved")
    o.dns = client::DnsMethod::kResolved;
  else if (s == "file")
    o.dns = client::DnsMethod::kFile;
  else {
    std::fprintf(stderr, "warren: WARREN_DNS_BACKEND=%s: use resolvconf, resolved or file\n", v);
    return false;
  }
  return true;
}

/// LOG_LEVEL, else verbose when stderr is the journal (warren@.service runs `warren up -f`: the
/// journal should tell the daemon's story), else error (a terminal).
platform::LogLevel client_log_level() {
  if (std::getenv("LOG_LEVEL") == nullptr && platform::stderr_is_journal())
    return platform::LogLevel::kVerbose;
  return platform::log_level_from_env();
}

}  // namespace

int up_main(int argc, char** argv) {
  DaemonOptions o;
  std::string config_arg;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      up_usage(stdout);
      return 0;
    } else if (a == "-f" || a == "--foreground") {
      o.foreground = true;
    } else if (a == "--dead-after" && i + 1 < argc) {
      char* end = nullptr;
      long s = std::strtol(argv[++i], &end, 10);
      if (!end || *end || s < 1 || s > 86400) {
        std::fprintf(stderr, "warren up: --dead-after %s: a number of seconds (1-86400)\n",
                     argv[i]);
        return 2;
      }
      o.dead_after = std::chrono::seconds(s);
    } else if (!a.empty() && a[0] != '-' && config_arg.empty()) {
      config_arg = a;
    } else {
      std::fprintf(stderr, "warren up: unexpected argument '%s'\n", argv[i]);
      up_usage(stderr);
      return 2;
    }
  }
  if (config_arg.empty()) {
    up_usage(stderr);
    return 2;
  }
  if (const char* env = std::getenv("WG_PROCESS_FOREGROUND"); env && std::string_view(env) == "1")
    o.foreground = true;
  if (!dns_override(o))
    return 2;
  ClientConfig config;
  try {
    std::string warning;
    config = client::load_config(find_config(config_arg), &warning);
    if (!warning.empty())
      std::fprintf(stderr, "warren: %s\n", warning.c_str());
  } catch (const client::ConfigError& e) {
    std::fprintf(stderr, "warren: %s\n", e.what());
    return 1;
  }
  platform::log_configure(client_log_level(), config.interface);
  return client::run_up(config, o);
}

int down_main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(argc == 2 && std::string_view(argv[1]) == "--help" ? stdout : stderr,
                 "Usage: warren down IFNAME\n");
    return argc == 2 && std::string_view(argv[1]) == "--help" ? 0 : 2;
  }
  DaemonOptions o;
  std::string name = argv[1];
  // wg-quick style: accept the config path too.
  if (name.find('/') != std::string::npos || name.ends_with(".conf")) {
    name = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
    if (name.ends_with(".conf"))
      name.resize(name.size() - 5);
  }
  return client::run_down(name, o);
}

int cleanup_main(int argc, char** argv) {
  auto usage = [](std::FILE* out) {
    std::fprintf(out,
                 "Usage: warren cleanup (--all | IFNAME...)\n"
                 "  Restores what a client daemon that is no longer running left behind (killed,\n"
                 "  crashed, or the machine lost power): resolv.conf, rules, routes, sysctls,\n"
                 "  replayed from its journal in /var/lib/warren. A running interface is left\n"
                 "  alone. --all: every journal there (what the boot-time unit runs).\n");
  };
  bool all = false;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--all") {
      all = true;
    } else if (!a.empty() && a[0] != '-') {
      names.emplace_back(a);
    } else {
      std::fprintf(stderr, "warren cleanup: unexpected argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (all == !names.empty()) {
    usage(stderr);
    return 2;
  }
  if (!platform::has_net_admin()) {
    std::fprintf(stderr, "warren cleanup: needs root or CAP_NET_ADMIN\n");
    return 1;
  }
  return client::run_cleanup(names, all, DaemonOptions{});
}

namespace {

/// The invite line from `source` ("-" = standard input, else a file): its first non-empty
/// line, trimmed. The text read is wiped (it is a secret).
Result<std::string> read_invite(const std::string& source) {
  const std::string what = source == "-" ? std::string("standard input") : source;
  auto text = platform::read_file(source == "-" ? "/dev/stdin" : source, 4096);
  if (!text)
    return text.error().with_context("cannot read the invite from " + what);
  std::string line;
  for (std::size_t pos = 0; pos < text->size() && line.empty();) {
    std::size_t end = text->find('\n', pos);
    if (end == std::string::npos)
      end = text->size();
    const std::string_view l = std::string_view(*text).substr(pos, end - pos);
    const auto b = l.find_first_not_of(" \t\r");
    if (b != std::string_view::npos)
      line = std::string(l.substr(b, l.find_last_not_of(" \t\r") - b + 1));
    pos = end + 1;
  }
  secure_zero(text->data(), text->size());
  if (line.empty())
    return Error(EINVAL, "no invite line in " + what);
  return line;
}

}  // namespace

int join_main(int argc, char** argv) {
  auto usage = [](std::FILE* out) {
    std::fprintf(out,
                 "Usage: warren join (--invite-file FILE | - | INVITE) --interface IFNAME\n"
                 "                   [--config-dir DIR] [--name NAME] [-f|--foreground]\n"
                 "  Makes or reuses DIR/IFNAME.key, enrolls with the server named in the invite,\n"
                 "  writes DIR/IFNAME.conf (0600, wg-quick format; DIR defaults to /etc/warren)\n"
                 "  and brings the interface up as `warren up DIR/IFNAME.conf` does.\n"
                 "  The invite is a secret: read it from FILE or, with -, from standard input.\n"
                 "  On the command line it is visible to every local user until warren starts.\n");
  };
  client::JoinOptions jo;
  DaemonOptions o;
  std::string invite;
  std::string invite_source;  // "" (none yet), "argv", "-" or a file name
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "-f" || a == "--foreground") {
      o.foreground = true;
    } else if ((a == "--interface" || a == "-i") && i + 1 < argc) {
      jo.interface = argv[++i];
    } else if (a == "--config-dir" && i + 1 < argc) {
      jo.config_dir = argv[++i];
    } else if (a == "--name" && i + 1 < argc) {
      jo.client_name = argv[++i];
    } else if (a == "--invite-file" && i + 1 < argc && invite_source.empty()) {
      invite_source = argv[++i];
    } else if (a == "-" && invite_source.empty()) {
      invite_source = "-";
    } else if (!a.empty() && a[0] != '-' && invite_source.empty()) {
      invite_source = "argv";
      invite = a;
      // The process list shows argv to every local user, and this process becomes the
      // long-running daemon: wipe the secret from it now (its copy lives on in `invite`).
      std::fill(argv[i], argv[i] + a.size(), 'x');
    } else {
      std::fprintf(stderr, "warren join: unexpected argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (invite_source.empty() || jo.interface.empty()) {
    usage(stderr);
    return 2;
  }
  if (invite_source != "argv") {
    auto read = read_invite(invite_source);
    if (!read) {
      std::fprintf(stderr, "warren join: %s\n", read.message().c_str());
      return 1;
    }
    invite = std::move(*read);
  }
  if (!dns_override(o))
    return 2;
  if (!client::valid_interface_name(jo.interface)) {
    std::fprintf(stderr, "warren join: '%s' is not a valid interface name\n", jo.interface.c_str());
    return 2;
  }
  if (int pid = client::running_daemon(o, jo.interface)) {
    std::fprintf(stderr, "warren: %s is up (pid %d); `warren down %s` before joining again\n",
                 jo.interface.c_str(), pid, jo.interface.c_str());
    return 1;
  }
  // A journal a dead daemon left first: its resolv.conf may still point into the old tunnel,
  // and enrolling needs the real resolver to find the server.
  if (!client::recover(o, jo.interface))
    return 1;
  ClientConfig config;
  try {
    std::string warning;
    config = client::join(invite, jo, crypto::SystemRandom::instance(), &warning);
    if (!warning.empty())
      std::fprintf(stderr, "warren: %s\n", warning.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warren join: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "warren: enrolled; wrote %s\n", config.path.c_str());
  platform::log_configure(client_log_level(), config.interface);
  return client::run_up(config, o);
}

}  // namespace warren::apps
