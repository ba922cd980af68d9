#pragma once
/// System: everything outside the data plane that bringing a client interface up touches —
/// rtnetlink, a few files (resolv.conf, sysctls, the state journal) and the DNS helper
/// programs. Steps (client/steps.h) go only through this interface, so unit tests run the
/// whole set-up against FakeSystem (client/fake/fake_system.h) with injected failures.
///
/// Errors are messages for the operator ("" = success), naming the operation and the file.

#include <cstdint>
#include <string>
#include <vector>

#include "platform/netlink.h"

namespace warren::client {

class System {
 public:
  virtual ~System() = default;

  virtual platform::NetConfig& net() = 0;

  /// The file's content; false and `error` set (ENOENT: "missing") when it cannot be read.
  virtual bool read_file(const std::string& path, std::string& content, int& error) = 0;
  /// Replaces a file's content. `in_place`: truncate and rewrite the existing inode (a bind
  /// mount such as /etc/resolv.conf inside `ip netns exec` cannot be renamed onto); otherwise
  /// create it with `mode`. Both fsync before returning.
  virtual std::string write_file(const std::string& path, const std::string& content, unsigned mode,
                                 bool in_place) = 0;
  /// Appends one line (with '\n') and fsyncs.
  virtual std::string append_file(const std::string& path, const std::string& line) = 0;
  /// Removing a missing file succeeds.
  virtual std::string remove_file(const std::string& path) = 0;
  /// Runs a program (argv[0] searched in the usual sbin/bin directories) with `input` on its
  /// stdin; success when it exits 0.
  virtual std::string run(const std::vector<std::string>& argv, const std::string& input) = 0;
  virtual bool program_exists(const std::string& name) = 0;
  /// systemd-resolved answers on this machine.
  virtual bool resolved_running() = 0;
  /// Identifies the network namespace we run in, so a journal is never replayed elsewhere.
  virtual std::string netns_id() = 0;
};

/// The real system (src/client/linux/system_linux.cc). Throws std::runtime_error when
/// rtnetlink cannot be opened.
std::unique_ptr<System> make_system();

}  // namespace warren::client
