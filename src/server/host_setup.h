#pragma once
/// What the server changes on its host besides its own interface — IP forwarding and the NAT
/// rule — done as journaled host steps (host/steps.h), so that nothing is applied twice and
/// nothing is lost across a crash:
///
///   start:   replay a journal a crashed run left (undo in reverse) ─► journal header
///            ─► ip_forward = 1 (v4; v6 forwarding with client_to_client) ─► iptables -A NAT
///   stop:    undo in reverse ─► journal removed           (~HostSetup, also on failed start)
///   kill -9: the journal stays; the next start, or `warren server cleanup`, replays it
///
/// The journal lives beside the database (host_journal_path). Replay accepts only the steps
/// the server takes (server_step_parser): a journal naming any other file or rule is refused
/// and nothing of it is undone.

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "host/steps.h"
#include "server/config.h"

namespace warren::server {

inline constexpr const char* kIpv4ForwardPath = "/proc/sys/net/ipv4/ip_forward";
inline constexpr const char* kIpv6ForwardPath = "/proc/sys/net/ipv6/conf/all/forwarding";

/// DATABASE_DIR/INTERFACE-host.journal
std::string host_journal_path(const ServerConfig& config);

/// The iptables arguments of the NAT rule (chain and matches, without -t/-A/-D/-C).
std::vector<std::string> nat_rule(const ServerConfig& config);

/// Parses the lines of a server journal: a sysctl of one of the two forwarding files (numeric
/// values), or a nat-table POSTROUTING MASQUERADE rule tagged with this config's interface.
host::StepParser server_step_parser(const ServerConfig& config);

struct HostPlan {
  std::vector<std::unique_ptr<host::Step>> steps;
  std::vector<std::string> notes;  ///< for the log: what was skipped and why
};
/// The steps the server takes for `config`, given the host as it is now: a forwarding sysctl
/// already at 1 and a NAT rule already present (not ours: left as it is) are skipped.
Result<HostPlan> plan_host_steps(host::System& sys, const ServerConfig& config);

/// Replays the journal of a crashed run (if any), then applies plan_host_steps. The set-up
/// undoes everything when destroyed; on failure everything is already undone and the error
/// names the step.
Result<std::unique_ptr<host::ActiveSetup>> set_up_host(host::System& sys,
                                                       const ServerConfig& config,
                                                       const std::string& journal_path);

/// The server's host changes for its lifetime: set_up_host on the real system, logged; the
/// destructor rolls back and logs what could not be undone (the journal then stays).
class HostSetup {
 public:
  static Result<std::unique_ptr<HostSetup>> start(const ServerConfig& config);
  ~HostSetup();
  HostSetup(const HostSetup&) = delete;
  HostSetup& operator=(const HostSetup&) = delete;

 private:
  HostSetup() = default;
  std::unique_ptr<host::System> system_;
  std::unique_ptr<host::ActiveSetup> setup_;
};

/// `warren server cleanup`: replays the journal of `config` (restoring ip_forward and removing
/// the NAT rule) and deletes a leftover interface of that name. Fails when that server is
/// running (its UAPI socket answers). Returns what it did, one line each.
Result<std::vector<std::string>> cleanup(const ServerConfig& config);

}  // namespace warren::server
