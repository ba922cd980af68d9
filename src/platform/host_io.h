#pragma once
/// The host's programs and identity, for the journaled host-configuration steps of src/host
/// (the one place outside rtnetlink where warren changes the machine it runs on). Their files
/// (sysctls, resolv.conf, journals) go through the trusted-file calls of platform/files.h.
///
/// Every function here is a thin wrapper over system calls (src/platform/linux/host_io_linux.cc);
/// the policy (what to write, what to undo) lives in src/host. Errors are `warren::Error`
/// messages naming the operation and the file or program.

#include <string>
#include <vector>

#include "base/result.h"

namespace warren::platform {

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
