#pragma once
/// The host's files, programs and identity, for the journaled host-configuration steps of
/// src/host (the one place outside rtnetlink where warren changes the machine it runs on).
///
/// Every function here is a thin wrapper over system calls (src/platform/linux/host_io_linux.cc);
/// the policy (what to write, what to undo) lives in src/host. Errors are `warren::Error`
/// messages naming the operation and the file or program.

#include <string>
#include <vector>

#include "base/result.h"

namespace warren::platform {

/// The whole content of a file. ENOENT (code) when it does not exist.
warren::Result<std::string> read_file(const std::string& path);
/// Replaces a file's content and fsyncs it. `in_place`: truncate and rewrite the existing inode
/// (a bind mount such as /etc/resolv.conf inside `ip netns exec`, a /proc/sys file); otherwise
/// create it with `mode` (and set `mode` on an existing file).
warren::Status write_file(const std::string& path, const std::string& content, unsigned mode,
                          bool in_place);
/// Appends one line (with '\n') to an existing file and fsyncs it.
warren::Status append_file(const std::string& path, const std::string& line);
/// Removing a missing file succeeds.
warren::Status remove_file(const std::string& path);

/// How a program ended: its exit status and what it printed (stdout and stderr, at most a few
/// KiB, for error messages).
struct ProgramExit {
  int status = 0;
  std::string output;
};
/// Runs a program without a shell: argv[0] is searched in the sbin/bin directories (not $PATH,
/// which a root daemon should not trust), `input` goes to its stdin. An error when it cannot be
/// started (ENOENT: not installed) or is killed by a signal; otherwise its exit status.
warren::Result<ProgramExit> run_program(const std::vector<std::string>& argv,
                                        const std::string& input);
/// argv[0] of run_program would be found.
bool program_exists(const std::string& name);

/// systemd-resolved answers on this machine.
bool resolved_running();
/// Identifies the network namespace we run in ("dev:inode" of /proc/self/ns/net).
std::string netns_id();
/// Identifies this boot (/proc/sys/kernel/random/boot_id); "unknown" when unreadable.
std::string boot_id();

}  // namespace warren::platform
