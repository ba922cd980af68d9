#pragma once
/// The `warren` executable's subcommands. main.cc only dispatches on the first word; each
/// command family lives in its own file and parses the rest of its command line itself.
///
///   warren server --config FILE               run the server (server_cmd.cc)
///   warren server invite|revoke|export ...    operate on a server's database (server_cmd.cc)
///   warren server check [--config FILE]       would the server start? (server_check.cc)
///   warren join INVITE --interface IFNAME     enroll and bring the interface up (client_cmd.cc)
///   warren up CONFIG / warren down IFNAME     client interface lifecycle (client_cmd.cc)
///   warren cleanup (--all | IFNAME...)        what dead client daemons left (client_cmd.cc)
///   warren pause IFNAME / warren resume IFNAME  standby of a running client (standby_cmd.cc)
///   warren status [--json] [IFNAME]           any running warren interface (status_cmd.cc)
///
/// Each returns the process exit code: 0 success, 1 failure (a message on stderr naming what
/// was wrong), 2 a bad command line (with usage); pause/resume: 4 when the caller is not
/// permitted.

namespace warren::apps {

int server_main(int argc, char** argv);   ///< argv[0] == "server"
int join_main(int argc, char** argv);     ///< argv[0] == "join"
int up_main(int argc, char** argv);       ///< argv[0] == "up"
int down_main(int argc, char** argv);     ///< argv[0] == "down"
int cleanup_main(int argc, char** argv);  ///< argv[0] == "cleanup"
int pause_main(int argc, char** argv);    ///< argv[0] == "pause"
int resume_main(int argc, char** argv);   ///< argv[0] == "resume"
int status_main(int argc, char** argv);   ///< argv[0] == "status"

/// argv[0] == "check", the word after "server" (server_main hands it over).
int server_check_main(int argc, char** argv);

}  // namespace warren::apps
