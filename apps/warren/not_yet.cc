// Placeholder commands until the server (server_cmd.cc), client (client_cmd.cc) and status
// (status_cmd.cc) land; each of those files deletes its functions from here.

#include <cstdio>

#include "commands.h"

namespace warren::apps {
namespace {
int not_built(const char* what) {
  std::fprintf(stderr, "warren: '%s' is not built in this version\n", what);
  return 1;
}
}  // namespace

int server_main(int, char**) { return not_built("server"); }
int status_main(int, char**) { return not_built("status"); }

}  // namespace warren::apps
