#pragma once
/// Standby of a client interface: `warren pause IFNAME` / `warren resume IFNAME`, and the link
/// set down / up from outside (`ip link set IFNAME down|up`), which mean the same.
///
///   pause:  ActiveSetup::take_back(after the interface line and the MTU step)
///           ─► DNS, sysctl, rules, routes undone, link down, addresses removed (newest first);
///              the journal then lists only the interface line and the MTU
///   resume: the taken steps applied again in their order (addresses, link up, routes, rules,
///           sysctl, DNS), journaled again as they go
///
/// The engine, its peers, their sessions and persistent keepalives are not touched: the UDP
/// socket is the underlay, not the TUN, so the sessions stay warm and a resume needs no new
/// handshake. Addresses go too because the kernel drops a down link's IPv6 addresses (unless
/// keep_addr_on_down) and its routes; putting back exactly what `up` set means re-adding them.
///
/// Who may ask: the status socket (control/status.h) carries "pause" and "resume"; root may,
/// and so may members of the group named by `#@warren ControlGroup = NAME` in the config
/// (checked with SO_PEERCRED/SO_PEERGROUPS; only these two commands).
///
/// Threads: the status socket's thread hands a request to the loop thread (a mailbox with a
/// Notifier the loop watches) and waits for its answer; the link monitor is read on the loop
/// thread too, so every host change happens on the loop thread, as the pushed settings' do.
/// A request that arrives as the daemon shuts down (the loop thread then stops the status
/// socket and no longer serves the mailbox) is answered "did not answer in time" after at most
/// 8 s, which is also how long that shutdown can be held up by it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "client/steps.h"
#include "control/status.h"
#include "platform/netlink.h"
#include "platform/notifier.h"

namespace warren::runtime {
class Runtime;
}

namespace warren::client {

/// What paused the interface.
enum class PauseCause : std::uint8_t { kCommand, kLinkDown };

/// How many of `setup`'s leading steps a pause keeps: the interface line and the MTU step.
std::size_t standby_keep(const ActiveSetup& setup);

/// The state machine of pause and resume over one ActiveSetup (no threads, no I/O of its own:
/// the steps do it through the setup's System). Loop thread only, except paused()/cause().
class Standby {
 public:
  /// Pauses: true when it did, false when already paused (after a resume that stopped
  /// half-way, what it had applied is taken back again: true). On a failed undo the steps
  /// already taken back are applied again (the interface stays up) and the error names the step.
  [[nodiscard]] Result<bool> pause(ActiveSetup& setup, PauseCause cause);
  /// Resumes: true when it did, false when not paused. A step that fails to apply stops the
  /// resume there (still paused; the next resume continues from that step).
  [[nodiscard]] Result<bool> resume(ActiveSetup& setup);
  /// The set-up was rolled back or replaced (stop, new settings): nothing is held any more.
  void forget();

  bool paused() const { return paused_.load(); }
  PauseCause cause() const { return cause_.load(); }
  /// What a change of the link's administrative state (IFF_UP) calls for: down while running
  /// is an outside pause, up while paused an outside resume; anything else is our own doing.
  enum class LinkAction : std::uint8_t { kNone, kPause, kResume };
  LinkAction on_link(bool up) const;

 private:
  // Shared: ActiveSetup owns a forwarding step (it takes ownership on apply, and drops a step
  // whose apply failed), so the real step survives a failed resume for the next one.
  std::vector<std::shared_ptr<Step>> taken_;
  std::atomic<bool> paused_{false};
  std::atomic<PauseCause> cause_{PauseCause::kCommand};
};

/// The daemon's side: the status socket commands, the mailbox to the loop thread and the link
/// monitor, around a Standby. `setup` returns the daemon's current ActiveSetup (null when
/// none); it is called on the loop thread only.
class StandbyControl {
 public:
  StandbyControl(std::string ifname, std::function<ActiveSetup*()> setup);
  ~StandbyControl();
  StandbyControl(const StandbyControl&) = delete;
  StandbyControl& operator=(const StandbyControl&) = delete;

  /// Adds "pause" and "resume" to the status socket; with `group`, its members may send them.
  void add_commands(control::StatusServerOptions& options, std::optional<std::uint32_t> group);
  /// Loop thread, after Runtime::start(): serves the mailbox and watches the link `ifindex`.
  [[nodiscard]] Status watch(runtime::Runtime& rt, std::uint32_t ifindex);

  /// Any thread.
  bool paused() const { return standby_.paused(); }
  /// For the status: "up", or "paused" with what paused it ("command", "link down").
  std::string state() const;
  std::string paused_by() const;
  /// Loop thread: the set-up went (see Standby::forget).
  void forget() { standby_.forget(); }

 private:
  enum class Request : std::uint8_t { kPause, kResume };
  struct Pending {
    Request request;
    std::promise<std::string> reply;
  };
  /// Status thread: queue `r` for the loop and wait for its reply.
  std::string ask(Request r);
  /// Loop thread.
  void serve_mailbox();
  std::string run(Request r);
  void on_link_events();

  std::string ifname_;
  std::function<ActiveSetup*()> setup_;
  Standby standby_;
  platform::Notifier wake_;
  std::mutex mu_;
  std::vector<std::shared_ptr<Pending>> queue_;  // guarded by mu_
  std::unique_ptr<platform::LinkMonitor> monitor_;
};

}  // namespace warren::client
