// warren pause / warren resume: ask a running client daemon over its status socket
// (client/standby.h does the work in the daemon).

#include <cstdio>
#include <string>
#include <string_view>

#include "client/config.h"
#include "commands.h"
#include "control/status.h"

namespace warren::apps {
namespace {

// Exit code of a caller the daemon's socket refuses (neither root nor in its ControlGroup).
constexpr int kNotPermitted = 4;

int standby_main(int argc, char** argv, std::string_view verb) {
  const bool help =
      argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h");
  if (argc != 2 || help || argv[1][0] == '-') {
    std::fprintf(help ? stdout : stderr,
                 "Usage: warren %s IFNAME\n"
                 "  %s\n"
                 "  Root, or a member of the group named by '#@warren ControlGroup = NAME' in the\n"
                 "  interface's config. Exit: 0 done (or already so), 1 failed, 2 usage, 4 not\n"
                 "  permitted.\n",
                 std::string(verb).c_str(),
                 verb == "pause"
                     ? "Link down; routes, rules and DNS removed; peer sessions kept warm."
                     : "Puts back exactly what pause removed (link up, routes, rules, DNS).");
    return help ? 0 : 2;
  }
  const std::string name = argv[1];
  if (!client::valid_interface_name(name)) {
    std::fprintf(stderr, "warren %s: '%s' is not a valid interface name\n",
                 std::string(verb).c_str(), name.c_str());
    return 2;
  }
  std::string reply;
  try {
    reply = control::query_daemon(name, verb);
  } catch (const control::PermissionDenied&) {
    std::fprintf(stderr,
                 "warren %s: permission denied: to %s %s you must be root or a member of the "
                 "group its config names in '#@warren ControlGroup'\n",
                 std::string(verb).c_str(), std::string(verb).c_str(), name.c_str());
    return kNotPermitted;
  } catch (const control::ControlError& e) {
    std::fprintf(stderr, "warren %s: %s\n", std::string(verb).c_str(), e.what());
    return 1;
  }
  if (reply.empty()) {
    // Connected, but closed unanswered: the daemon does not let this user in.
    std::fprintf(stderr,
                 "warren %s: %s's daemon refused the request (not root nor a member of "
                 "its ControlGroup)\n",
                 std::string(verb).c_str(), name.c_str());
    return kNotPermitted;
  }
  if (reply.starts_with("error: permission denied")) {
    std::fprintf(stderr, "warren %s: %s", std::string(verb).c_str(), reply.c_str() + 7);
    return kNotPermitted;
  }
  if (reply.starts_with("error: unknown request")) {
    std::fprintf(stderr,
                 "warren %s: %s's daemon does not take %s (a server, or a client started by an "
                 "older warren: restart it)\n",
                 std::string(verb).c_str(), name.c_str(), std::string(verb).c_str());
    return 1;
  }
  if (reply.starts_with("error: ")) {
    std::fprintf(stderr, "warren %s: %s", std::string(verb).c_str(), reply.c_str() + 7);
    return 1;
  }
  std::fputs(reply.c_str(), stdout);
  return 0;
}

}  // namespace

int pause_main(int argc, char** argv) {
  return standby_main(argc, argv, "pause");
}

int resume_main(int argc, char** argv) {
  return standby_main(argc, argv, "resume");
}

}  // namespace warren::apps
