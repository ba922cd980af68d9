#pragma once
/// Host configuration steps with their undo, a journal of them, and the RAII owner of applied
/// steps. Used by the client (routes, rules, DNS of a wg-quick plan) and by the server
/// (ip_forward, its nftables table, FORWARD accept rules).
///
///   auto setup = ActiveSetup::open(system, journal_path);   // writes the journal header
///   setup->apply(step) ─► journal line (fsync'd) ─► step.apply ─► kept for undo
///   ~ActiveSetup / rollback() ─► undo every kept step in reverse ─► journal removed
///
/// The journal line is written before the step takes effect, so after a crash (kill -9)
/// replay_journal() undoes everything that may have been applied. Undo of something already
/// gone (the kernel removed routes with the TUN, a rule deleted by hand) counts as success,
/// which also makes replay idempotent.
///
/// Journal format: a header "warren-state 1 netns=NS boot=BOOT", then one step per line
/// (Step::journal_line). A journal of another network namespace is refused. One of an earlier
/// boot is stale: the reboot undid what lived in the kernel (routes, rules, sysctls, firewall
/// rules, resolvconf/resolved records under /run), so only the steps whose change is on disk
/// (Step::survives_reboot: the client's resolv.conf rewrite) are undone, then it is removed.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "host/system.h"
#include "net/ip_address.h"
#include "platform/netlink.h"

namespace warren::host {

class Step {
 public:
  virtual ~Step() = default;
  /// One line that a StepParser turns back into a step whose undo() works.
  virtual std::string journal_line() const = 0;
  /// For messages: "add route 10.0.0.0/24".
  virtual std::string describe() const = 0;
  /// On failure nothing of this step is left behind.
  [[nodiscard]] virtual Status apply(System& sys) = 0;
  [[nodiscard]] virtual Status undo(System& sys) = 0;
  /// The change is on persistent storage (a file on disk), so a reboot does not undo it and the
  /// replay of a journal from an earlier boot must. Everything in the kernel does not survive.
  virtual bool survives_reboot() const { return false; }
};

std::unique_ptr<Step> make_mtu_step(std::uint32_t ifindex, std::uint32_t mtu, std::uint32_t old);
std::unique_ptr<Step> make_link_up_step(std::uint32_t ifindex);
std::unique_ptr<Step> make_address_step(std::uint32_t ifindex, const net::Prefix& address);
std::unique_ptr<Step> make_route_step(const platform::RouteSpec& route);
std::unique_ptr<Step> make_rule_step(const platform::RuleSpec& rule);
/// Writes `value` to a sysctl file (under /proc/sys/); undo writes `old` back. Values are one
/// word (no whitespace).
std::unique_ptr<Step> make_sysctl_step(std::string path, std::string value, std::string old);
/// An iptables (v4) or ip6tables (v6) rule inserted at the top of its chain: `-t TABLE -I
/// RULE...` (an accept must come before whatever drops), undone with `-D`. RULE is the chain
/// and the match/target arguments, each one word (no whitespace), e.g.
/// {"FORWARD", "-i", "wg0", "-j", "ACCEPT"}.
std::unique_ptr<Step> make_firewall_step(net::Family family, std::string table,
                                         std::vector<std::string> rule);
/// The firewall rule is in place now (`iptables -C`): true/false, or an error when iptables
/// cannot run.
Result<bool> firewall_rule_present(System& sys, net::Family family, const std::string& table,
                                   const std::vector<std::string>& rule);

/// An nftables table owned by the caller: apply replaces any table of that name with
/// `definition` (`table FAMILY NAME { ... }`) in one transaction, undo deletes it (a table
/// already gone counts as deleted). The journal line names the table only
/// ("nft-table inet warren_wg0"): its undo needs nothing else. NAME is [A-Za-z0-9_.-].
std::unique_ptr<Step> make_nft_table_step(std::string family, std::string name,
                                          std::string definition);

/// The current value of a sysctl file, trimmed.
Result<std::string> read_sysctl(System& sys, const std::string& path);

/// Turns a journal line back into a step; nullptr when the line is not one this parser
/// accepts. Each user passes the parser of the steps it writes, so that a journal can only make
/// it undo what it would have done itself.
using StepParser = std::function<std::unique_ptr<Step>(std::string_view line)>;
/// The same with a reason: an error saying why the line is refused ("names /etc/shadow, not
/// /etc/resolv.conf"), which replay_journal quotes with the file, line number and the line.
using StepChecker = std::function<Result<std::unique_ptr<Step>>(std::string_view line)>;
/// The generic steps above (sysctl paths only under /proc/sys/, without "..").
std::unique_ptr<Step> parse_host_step(std::string_view line);

/// A journal line split at white space (journal lines never carry spaces inside a field).
std::vector<std::string> journal_words(std::string_view line);

/// Owns the applied steps of one set-up (quincy's ActiveInterface): destroying it undoes
/// them. Not copyable or movable (hold it by unique_ptr).
class ActiveSetup {
 public:
  /// Creates the journal at `journal_path` (empty = no journal, for tests of the steps alone).
  static Result<std::unique_ptr<ActiveSetup>> open(System& sys, const std::string& journal_path);
  ~ActiveSetup();
  ActiveSetup(const ActiveSetup&) = delete;
  ActiveSetup& operator=(const ActiveSetup&) = delete;

  /// Journals and applies. On failure the step is not kept (the caller usually destroys the
  /// setup, which rolls everything back); the error names the step.
  [[nodiscard]] Status apply(std::unique_ptr<Step> step);
  /// Undoes every applied step in reverse order and removes the journal (kept when an undo
  /// failed, for a later replay). Returns the undo failures ("undo <step>: ..."); keeps going
  /// past them. Idempotent.
  std::vector<Error> rollback();
  std::size_t applied() const { return steps_.size(); }
  /// The applied steps, oldest first.
  const std::vector<std::unique_ptr<Step>>& steps() const { return steps_; }
  /// Takes back every step after the first `keep`: undoes them newest first, then rewrites the
  /// journal (atomically: a new file renamed over it) to list only the steps still applied, and
  /// hands the undone steps back, oldest first, for a later apply() of each (`warren pause`
  /// and `resume`, client/standby.h). Until the rewrite the journal still names the undone
  /// steps, whose replay then finds nothing to undo: a crash at any point leaves it consistent.
  /// An undo that fails stops there; that step and the older ones stay applied (and
  /// journaled), and `error` names it.
  struct TakenBack {
    std::vector<std::unique_ptr<Step>> steps;
    std::optional<Error> error;
  };
  [[nodiscard]] TakenBack take_back(std::size_t keep);
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

/// Rolls back `setup` after `failure` and appends the rollback's own failures to the message.
Error rollback_after(ActiveSetup& setup, Error failure);

struct ReplayResult {
  bool found = false;         ///< a journal existed
  bool stale = false;         ///< it was from an earlier boot: only survives_reboot() steps undone
  std::size_t undone = 0;     ///< steps replayed
  std::vector<Error> errors;  ///< a refused journal is one of these; empty = all restored
};
/// Crash recovery: undoes every step of the journal at `path` in reverse (of a journal from an
/// earlier boot: only the steps that survive a reboot), then removes it. Nothing is undone, and
/// the journal is kept, when it belongs to another network namespace or holds a line `parse`
/// does not accept (except a torn last line, whose step never ran); it is kept too when a step
/// could not be undone.
ReplayResult replay_journal(System& sys, const std::string& path, const StepParser& parse);
/// The same with a parser that says why it refuses a line.
ReplayResult replay_journal_checked(System& sys, const std::string& path, const StepChecker& check);

}  // namespace warren::host
