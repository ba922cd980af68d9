#pragma once
/// Set-up steps with their undo, a journal of them, and the RAII owner of applied steps.
///
///   ActiveSetup setup(system, journal_path);   // writes the journal header
///   setup.apply(step) ─► journal line (fsync'd) ─► step.apply ─► kept for undo
///   ~ActiveSetup / rollback() ─► undo every kept step in reverse ─► journal removed
///
/// The journal line is written before the step takes effect, so after a crash (kill -9)
/// replay_journal() undoes everything that may have been applied. Undo of something already
/// gone (the kernel removed routes with the TUN, a file restored before) counts as success,
/// which also makes replay idempotent.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/system.h"
#include "net/ip_address.h"
#include "platform/netlink.h"

namespace warren::client {

class Step {
 public:
  virtual ~Step() = default;
  /// One line that parse_step() turns back into a step whose undo() works.
  virtual std::string journal_line() const = 0;
  /// For messages: "route 10.0.0.0/24 dev 5".
  virtual std::string describe() const = 0;
  /// "" on success; on failure nothing of this step is left behind.
  virtual std::string apply(System& sys) = 0;
  virtual std::string undo(System& sys) = 0;
};

std::unique_ptr<Step> make_mtu_step(std::uint32_t ifindex, std::uint32_t mtu, std::uint32_t old);
std::unique_ptr<Step> make_link_up_step(std::uint32_t ifindex);
std::unique_ptr<Step> make_address_step(std::uint32_t ifindex, const net::Prefix& address);
std::unique_ptr<Step> make_route_step(const platform::RouteSpec& route);
std::unique_ptr<Step> make_rule_step(const platform::RuleSpec& rule);
/// Writes `value` to a sysctl file (/proc/sys/...); undo writes `old` back.
std::unique_ptr<Step> make_sysctl_step(std::string path, std::string value, std::string old);

enum class DnsMethod { kResolvconf, kResolved, kFile };
const char* dns_method_name(DnsMethod m);
struct DnsSettings {
  std::vector<net::IpAddress> servers;
  std::vector<std::string> search;
};
/// resolvconf: `resolvconf -a tun.IFNAME -m 0 -x` (wg-quick's call); resolved: resolvectl dns /
/// domain, undone by `resolvectl revert`; file: `resolv_conf` rewritten in place after a copy
/// went to `backup`.
std::unique_ptr<Step> make_dns_step(DnsMethod method, const std::string& ifname,
                                    const DnsSettings& dns, const std::string& resolv_conf,
                                    const std::string& backup);

/// nullptr when the line is not a step line.
std::unique_ptr<Step> parse_step(std::string_view line);

/// Owns the applied steps of one interface (quincy's ActiveInterface): destroying it undoes
/// them. Not copyable; movable.
class ActiveSetup {
 public:
  /// Creates the journal at `journal_path` (empty = no journal, for tests of the steps alone).
  /// Returns an error message instead when the journal cannot be written.
  static std::string open(System& sys, const std::string& journal_path,
                          std::unique_ptr<ActiveSetup>& out);
  ~ActiveSetup();
  ActiveSetup(const ActiveSetup&) = delete;
  ActiveSetup& operator=(const ActiveSetup&) = delete;

  /// Journals and applies; "" on success. On failure the step is not kept (the caller
  /// usually destroys the setup, which rolls everything back).
  std::string apply(std::unique_ptr<Step> step);
  /// Undoes every applied step in reverse order and removes the journal. Returns the undo
  /// failures (each "describe: message"); keeps going past them. Idempotent.
  std::vector<std::string> rollback();
  std::size_t applied() const { return steps_.size(); }
  /// Forgets the applied steps without undoing them and leaves the journal as it is: what a
  /// crash leaves behind (tests of recovery use it).
  void abandon() {
    steps_.clear();
    journal_.clear();
  }

 private:
  ActiveSetup(System& sys, std::string journal) : sys_(sys), journal_(std::move(journal)) {}
  System& sys_;
  std::string journal_;
  std::vector<std::unique_ptr<Step>> steps_;
};

struct ReplayResult {
  bool found = false;               ///< a journal existed
  std::size_t undone = 0;           ///< steps replayed
  std::vector<std::string> errors;  ///< undo failures; a foreign-netns journal is one of these
};
/// Crash recovery: undoes every step of the journal at `path` in reverse, then removes it
/// (kept when a step could not be undone, or when it belongs to another network namespace).
ReplayResult replay_journal(System& sys, const std::string& path);

}  // namespace warren::client
