#pragma once
/// What the server changes on its host besides its own interface — its nftables table, the
/// FORWARD accept rules and IP forwarding — done as journaled host steps (host/steps.h), so
/// that nothing is applied twice and nothing is lost across a crash:
///
///   start:   replay a journal a crashed run left (undo in reverse) ─► journal header
///            ─► nft table inet warren_IFNAME (with [nat]; server/nft_ruleset.h)
///            ─► iptables/ip6tables -I FORWARD accepts (when that chain would drop)
///            ─► ip_forward = 1, conf/all/forwarding = 1 (with [nat] or client_to_client)
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

/// The accept rules for the tunnel in the filter table's FORWARD chain of iptables (v4) or
/// ip6tables (v6), chain and matches without -t/-I/-D/-C: in from the tunnel, and back to it
/// for established/related flows, each tagged "warren:IFNAME".
///
/// Why iptables: an accept in our own nft table does not stop another table's base chain
/// from dropping (nft_ruleset.h), so the accept must go into the chain whose policy drops —
/// iptables' `filter FORWARD`, whichever backend (nft or legacy) holds it, and only iptables
/// itself writes rules there that it can read back. They are added only when that chain
/// would drop something (its policy is not ACCEPT or it has rules); a host without iptables
/// has no such chain. A native nftables ruleset with a drop policy in its own forward chain
/// (not iptables') needs the operator's rule (docs/SERVER.md).
std::vector<std::vector<std::string>> forward_rules(const ServerConfig& config);

/// Parses the lines of a server journal: a sysctl of one of the two forwarding files (numeric
/// values), this config's nft table (nft-table inet warren_IFNAME), one of forward_rules(),
/// or (journals of earlier versions) a nat-table POSTROUTING MASQUERADE rule tagged with this
/// config's interface.
host::StepParser server_step_parser(const ServerConfig& config);

struct HostPlan {
  std::vector<std::unique_ptr<host::Step>> steps;
  std::vector<std::string> notes;  ///< for the log: what was skipped and why
};
/// The steps the server takes for `config`, given the host as it is now: a forwarding sysctl
/// already at 1 and a FORWARD accept rule already present (not ours: left as it is) are
/// skipped, and so are the accept rules when iptables is not installed or its FORWARD chain
/// accepts everything.
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

/// `warren server cleanup`: replays the journal of `config` (restoring the forwarding sysctls,
/// removing the nft table and the FORWARD rules) and deletes a leftover interface of that name.
/// Fails when that server is running (its UAPI socket answers). Returns what it did, one line each.
Result<std::vector<std::string>> cleanup(const ServerConfig& config);

}  // namespace warren::server
