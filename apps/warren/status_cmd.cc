// warren status [--json] [IFNAME]: the status of running warren interfaces (server or
// client), read from their root-only sockets in /var/run/warren.

#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "control/status.h"

namespace warren::apps {

int status_main(int argc, char** argv) {
  bool json = false;
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("Usage: warren status [--json] [IFNAME]\n");
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr,
                   "warren status: unknown option '%s'\n\nUsage: warren status [--json] [IFNAME]\n",
                   argv[i]);
      return 2;
    } else {
      names.emplace_back(a);
    }
  }
  if (names.size() > 1) {
    std::fprintf(stderr,
                 "warren status: at most one IFNAME\n\nUsage: warren status [--json] [IFNAME]\n");
    return 2;
  }
  const bool all = names.empty();
  if (all)
    names = control::list_status_interfaces();
  if (all && names.empty()) {
    if (json)
      std::printf("[]\n");
    else
      std::fprintf(stderr, "warren status: no warren interface is running\n");
    return 0;
  }
  int rc = 0;
  std::vector<std::string> docs;
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  for (const auto& n : names) {
    try {
      control::InterfaceStatus s = control::query_status(n);
      if (json)
        docs.push_back(control::to_json(s));
      else
        std::printf("%s%s", docs.empty() && rc == 0 ? "" : "\n",
                    control::format_table(s, now).c_str()),
            docs.push_back("");
    } catch (const std::exception& e) {
      // A stale socket of a dead daemon is not an error when listing everything.
      if (!all) {
        std::fprintf(stderr, "warren status: %s\n", e.what());
        rc = 1;
      }
    }
  }
  if (json) {
    if (!all) {
      if (!docs.empty())
        std::printf("%s\n", docs[0].c_str());
    } else {
      std::printf("[");
      for (std::size_t i = 0; i < docs.size(); ++i)
        std::printf("%s%s", i ? ",\n" : "\n", docs[i].c_str());
      std::printf("\n]\n");
    }
  }
  return rc;
}

}  // namespace warren::apps
