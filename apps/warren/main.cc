// warren: the server, client and status front end (see commands.h for the subcommands).

#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"

namespace {

constexpr const char* kVersion = "0.1.0";

void usage(std::FILE* out) {
  std::fprintf(
      out,
      "Usage: warren COMMAND [ARGS]\n"
      "\n"
      "Server:\n"
      "  warren server [--config FILE]               run a server (default "
      "/etc/warren/server.toml)\n"
      "  warren server invite --config FILE --name NAME [--expires DURATION] [--uses N]\n"
      "  warren server revoke --config FILE NAME\n"
      "  warren server export --config FILE NAME [--json | --qr[=utf8|ascii]]\n"
      "  warren server clients --config FILE [--json]  every client: state, last handshake\n"
      "  warren server disable --config FILE NAME    off the interface, address kept\n"
      "  warren server enable --config FILE NAME\n"
      "  warren server cleanup --config FILE         after a crash: restore ip_forward/NAT\n"
      "  warren server check [--config FILE] [--json]  would the server start? (exit 0/1)\n"
      "  warren server reload [--config FILE]        the running server re-reads its config\n"
      "Client:\n"
      "  warren join INVITE --interface IFNAME       enroll, write the config, bring it up\n"
      "  warren up CONFIG                            bring up a warren or wg-quick config\n"
      "  warren down IFNAME                          take it down and restore everything\n"
      "  warren cleanup (--all | IFNAME...)          after a crash or power loss (at boot):\n"
      "                                              restore what dead daemons left (DNS, rules)\n"
      "  warren pause IFNAME                         standby: link down, routes and DNS off,\n"
      "                                              peer sessions kept warm\n"
      "  warren resume IFNAME                        put back what pause removed\n"
      "Both:\n"
      "  warren status [--json] [IFNAME]\n"
      "  warren --version | --help\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("warren v%s\n", kVersion);
    return 0;
  }
  using namespace warren::apps;
  if (cmd == "server")
    return server_main(argc - 1, argv + 1);
  if (cmd == "join")
    return join_main(argc - 1, argv + 1);
  if (cmd == "up")
    return up_main(argc - 1, argv + 1);
  if (cmd == "down")
    return down_main(argc - 1, argv + 1);
  if (cmd == "cleanup")
    return cleanup_main(argc - 1, argv + 1);
  if (cmd == "pause")
    return pause_main(argc - 1, argv + 1);
  if (cmd == "resume")
    return resume_main(argc - 1, argv + 1);
  if (cmd == "status")
    return status_main(argc - 1, argv + 1);
  std::fprintf(stderr, "warren: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
