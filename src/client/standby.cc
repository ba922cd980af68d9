// Pause and resume of a client interface (see standby.h).

#include "client/standby.h"

#include <chrono>

#include "platform/log.h"
#include "runtime/runtime.h"

namespace warren::client {
namespace {

// How long the status thread waits for the loop thread (below query_daemon's 10 s).
constexpr auto kAnswerTimeout = std::chrono::seconds(8);

// A step ActiveSetup owns while the real one stays shared with the Standby.
class SharedStep final : public Step {
 public:
  explicit SharedStep(std::shared_ptr<Step> step) : step_(std::move(step)) {}
  std::string journal_line() const override { return step_->journal_line(); }
  std::string describe() const override { return step_->describe(); }
  Status apply(System& sys) override { return step_->apply(sys); }
  Status undo(System& sys) override { return step_->undo(sys); }
  bool survives_reboot() const override { return step_->survives_reboot(); }

 private:
  std::shared_ptr<Step> step_;
};

bool starts_with_word(const std::string& line, std::string_view word) {
  return line.size() > word.size() && line.compare(0, word.size(), word) == 0 &&
         line[word.size()] == ' ';
}

}  // namespace

std::size_t standby_keep(const ActiveSetup& setup) {
  std::size_t keep = 0;
  for (const auto& s : setup.steps()) {
    const std::string line = s->journal_line();
    if (!starts_with_word(line, "interface") && !starts_with_word(line, "mtu"))
      break;
    ++keep;
  }
  return keep;
}

Result<bool> Standby::pause(ActiveSetup& setup, PauseCause cause) {
  // Paused already: nothing beyond the kept steps is applied, so this takes nothing back —
  // unless a resume stopped half-way, whose applied part goes again.
  const bool was_paused = paused_.load();
  auto taken = setup.take_back(standby_keep(setup));
  if (was_paused && taken.steps.empty() && !taken.error)
    return false;
  std::vector<std::shared_ptr<Step>> steps;
  for (auto& s : taken.steps)
    steps.push_back(std::shared_ptr<Step>(std::move(s)));
  // What that half-way resume had not applied yet comes after the ones just taken back.
  steps.insert(steps.end(), taken_.begin(), taken_.end());
  taken_ = std::move(steps);
  paused_.store(true);
  if (!was_paused)
    cause_.store(cause);
  if (taken.error && was_paused)
    return *taken.error;  // still paused, holding what it could take back
  if (taken.error) {
    // Back to running: what was taken back goes on again, so the interface is never half
    // paused.
    auto back = resume(setup);
    std::string m = taken.error->text();
    if (!back)
      m += "; and putting back what was already undone failed: " + back.error().text();
    return Error(taken.error->code, m);
  }
  return true;
}

Result<bool> Standby::resume(ActiveSetup& setup) {
  if (!paused_.load())
    return false;
  std::size_t done = 0;
  for (; done < taken_.size(); ++done) {
    if (auto s = setup.apply(std::make_unique<SharedStep>(taken_[done])); !s) {
      taken_.erase(taken_.begin(), taken_.begin() + static_cast<std::ptrdiff_t>(done));
      return s.error();
    }
  }
  taken_.clear();
  paused_.store(false);
  return true;
}

void Standby::forget() {
  taken_.clear();
  paused_.store(false);
}

Standby::LinkAction Standby::on_link(bool up) const {
  if (!up && !paused_.load())
    return LinkAction::kPause;
  if (up && paused_.load())
    return LinkAction::kResume;
  return LinkAction::kNone;
}

// ---- the daemon's side -----------------------------------------------------------------------

StandbyControl::StandbyControl(std::string ifname, std::function<ActiveSetup*()> setup)
    : ifname_(std::move(ifname)), setup_(std::move(setup)) {}

StandbyControl::~StandbyControl() {
  // Whoever still waits gets "the daemon is stopping" (a broken promise), not a hang.
  std::lock_guard lock(mu_);
  queue_.clear();
}

void StandbyControl::add_commands(control::StatusServerOptions& options,
                                  std::optional<std::uint32_t> group) {
  options.commands["pause"] = [this](std::string_view) { return ask(Request::kPause); };
  options.commands["resume"] = [this](std::string_view) { return ask(Request::kResume); };
  if (group) {
    options.group = group;
    options.group_commands.insert("pause");
    options.group_commands.insert("resume");
  }
}

Status StandbyControl::watch(runtime::Runtime& rt, std::uint32_t ifindex) {
  if (auto s = rt.watch_readable(wake_.fd(), [this] { serve_mailbox(); }); !s)
    return s;
  auto monitor = platform::open_link_monitor(ifindex);
  if (!monitor)
    return monitor.error().with_context("link monitor for pause on link down");
  monitor_ = std::move(*monitor);
  return rt.watch_readable(monitor_->poll_fd(), [this] { on_link_events(); });
}

std::string StandbyControl::state() const {
  return standby_.paused() ? "paused" : "up";
}

std::string StandbyControl::paused_by() const {
  if (!standby_.paused())
    return "";
  return standby_.cause() == PauseCause::kLinkDown ? "link down" : "command";
}

std::string StandbyControl::ask(Request r) {
  auto p = std::make_shared<Pending>();
  p->request = r;
  auto answer = p->reply.get_future();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(p));
  }
  wake_.set();
  if (answer.wait_for(kAnswerTimeout) != std::future_status::ready)
    return "error: " + ifname_ + "'s daemon did not answer in time\n";
  try {
    return answer.get();
  } catch (const std::future_error&) {
    return "error: " + ifname_ + "'s daemon is stopping\n";
  }
}

void StandbyControl::serve_mailbox() {
  wake_.clear();
  std::vector<std::shared_ptr<Pending>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queue_);
  }
  for (auto& p : batch)
    p->reply.set_value(run(p->request));
}

std::string StandbyControl::run(Request r) {
  ActiveSetup* setup = setup_();
  if (!setup)
    return "error: " + ifname_ + " has no host set-up to " +
           (r == Request::kPause ? "pause" : "resume") + " (see its log)\n";
  if (r == Request::kPause) {
    auto done = standby_.pause(*setup, PauseCause::kCommand);
    if (!done) {
      platform::log_error("Pause failed: %s", done.error().text().c_str());
      return "error: cannot pause " + ifname_ + ": " + done.error().text() + "\n";
    }
    if (!*done)
      return ifname_ + " was already paused\n";
    platform::log_verbose("Paused %s: link down, routes, rules and DNS removed; sessions kept",
                          ifname_.c_str());
    return "paused " + ifname_ + "\n";
  }
  auto done = standby_.resume(*setup);
  if (!done) {
    platform::log_error("Resume failed: %s", done.error().text().c_str());
    return "error: cannot resume " + ifname_ + ": " + done.error().text() +
           " (still paused; resume again to retry)\n";
  }
  if (!*done)
    return ifname_ + " was not paused\n";
  platform::log_verbose("Resumed %s: addresses, link, routes, rules and DNS back", ifname_.c_str());
  return "resumed " + ifname_ + "\n";
}

void StandbyControl::on_link_events() {
  // The last state of the batch: our own changes (a pause, a resume, pushed settings redoing
  // the set-up) all ran on this thread before, so what is left to see is where they ended.
  std::optional<bool> up;
  auto polled = monitor_->poll([&](const platform::LinkEvent& e) {
    if (e.kind == platform::LinkEvent::Kind::kChanged)
      up = e.link.up;
  });
  if (!polled) {
    platform::log_error("Link monitor: %s", polled.error().text().c_str());
    return;
  }
  ActiveSetup* setup = setup_();
  if (!up || !setup)
    return;
  switch (standby_.on_link(*up)) {
    case Standby::LinkAction::kNone:
      return;
    case Standby::LinkAction::kPause: {
      // The kernel dropped the link's routes (and IPv6 addresses) already; their undo finds
      // them gone, which counts as done. DNS and the rules are ours to remove.
      auto done = standby_.pause(*setup, PauseCause::kLinkDown);
      if (!done)
        platform::log_error("%s was set down from outside; pausing failed: %s", ifname_.c_str(),
                            done.error().text().c_str());
      else
        platform::log_verbose(
            "%s was set down from outside: paused (the kernel dropped its "
            "routes with the link; DNS and rules removed)",
            ifname_.c_str());
      return;
    }
    case Standby::LinkAction::kResume: {
      auto done = standby_.resume(*setup);
      if (!done)
        platform::log_error("%s was set up from outside; resuming failed: %s", ifname_.c_str(),
                            done.error().text().c_str());
      else
        platform::log_verbose("%s was set up from outside: resumed", ifname_.c_str());
      return;
    }
  }
}

}  // namespace warren::client
