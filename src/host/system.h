#pragma once
/// host::System: everything outside the data plane that configuring the host touches —
/// rtnetlink, nftables, a few files (sysctls, resolv.conf, the state journal), helper programs
/// (iptables, resolvconf, resolvectl) and the identity of the namespace and boot. Steps
/// (host/steps.h) go only through this interface, so unit tests run a whole set-up against
/// host::fake::FakeSystem (host/fake/fake_system.h) with injected failures.
///
/// The real one (make_system) forwards to platform::NetConfig, platform::Nftables,
/// platform/host_io.h and the
/// trusted-file calls of platform/files.h (O_NOFOLLOW, directory and file owner/mode checks,
/// fsync of the file and of the directory when an entry is created or removed); it makes no
/// system call of its own.

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "platform/host_io.h"
#include "platform/netlink.h"
#include "platform/nftables.h"

namespace warren::host {

using platform::ProgramExit;

class System {
 public:
  virtual ~System() = default;

  virtual platform::NetConfig& net() = 0;
  /// The nftables ruleset of this namespace (each run() one transaction).
  virtual platform::Nftables& nft() = 0;

  /// The file's content; an error with code ENOENT when it does not exist. The real system
  /// refuses a link or a file that root does not control (platform/files.h, trusted files).
  virtual Result<std::string> read_file(const std::string& path) = 0;
  /// See platform::write_trusted_file: `in_place` rewrites the existing inode; both fsync.
  virtual Status write_file(const std::string& path, const std::string& content, unsigned mode,
                            bool in_place) = 0;
  /// Appends one line (with '\n') to an existing file and fsyncs.
  virtual Status append_file(const std::string& path, const std::string& line) = 0;
  /// Removing a missing file succeeds.
  virtual Status remove_file(const std::string& path) = 0;
  /// Runs a program with `input` on its stdin: its exit status, or an error when it could not
  /// run (ENOENT: not installed).
  virtual Result<ProgramExit> run(const std::vector<std::string>& argv,
                                  const std::string& input) = 0;
  virtual bool program_exists(const std::string& name) = 0;
  /// systemd-resolved answers on this machine.
  virtual bool resolved_running() = 0;
  /// Identifies the network namespace we run in, so a journal is never replayed elsewhere.
  virtual std::string netns_id() = 0;
  /// Identifies this boot, so a journal from before a reboot (whose changes the reboot undid)
  /// is not replayed.
  virtual std::string boot_id() = 0;
};

/// Runs a program and succeeds only when it exits 0; the error quotes the command and the
/// first line of its output.
Status run_checked(System& sys, const std::vector<std::string>& argv,
                   const std::string& input = "");

/// The real system. Fails when rtnetlink cannot be opened.
Result<std::unique_ptr<System>> make_system();

}  // namespace warren::host
