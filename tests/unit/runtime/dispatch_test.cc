// Signals → stop or reload, and what the service manager hears (runtime/runtime.h), with a
// fake NOTIFY_SOCKET; and the periodic timers (runtime/timers.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/timers.h"

namespace warren::runtime {
namespace {

class RecordingNotifier final : public platform::ServiceNotifier {
 public:
  explicit RecordingNotifier(std::vector<std::string>& sent) : sent_(sent) {}
  warren::Status notify(std::string_view state) override {
    sent_.emplace_back(state);
    return {};
  }

 private:
  std::vector<std::string>& sent_;
};

TEST(SignalAction, HangupReloadsAndNeverStops) {
  EXPECT_EQ(signal_action(platform::Signal::kHangup), SignalAction::kReload);
  EXPECT_EQ(signal_action(platform::Signal::kTerminate), SignalAction::kStop);
  EXPECT_EQ(signal_action(platform::Signal::kInterrupt), SignalAction::kStop);
  EXPECT_EQ(signal_action(platform::Signal::kOther), SignalAction::kIgnore);
}

TEST(SignalDispatch, HangupRunsTheReloadHookBetweenReloadingAndReady) {
  std::vector<std::string> sent;
  Readiness readiness(platform::StartupReport{}, std::make_unique<RecordingNotifier>(sent));
  int reloads = 0;
  SignalDispatch d(readiness, [&] {
    ++reloads;
    sent.emplace_back("hook");
  });
  EXPECT_EQ(d.dispatch(platform::Signal::kHangup), SignalAction::kReload);
  EXPECT_EQ(d.dispatch(platform::Signal::kHangup), SignalAction::kReload);
  EXPECT_EQ(reloads, 2);
  EXPECT_FALSE(d.stop_requested());
  ASSERT_EQ(sent.size(), 6u);
  EXPECT_EQ(sent[0].rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << sent[0];
  EXPECT_EQ(sent[1], "hook");
  EXPECT_EQ(sent[2], "READY=1");
}

TEST(SignalDispatch, TermAndIntStop) {
  for (platform::Signal sig : {platform::Signal::kTerminate, platform::Signal::kInterrupt}) {
    std::vector<std::string> sent;
    Readiness readiness(platform::StartupReport{}, std::make_unique<RecordingNotifier>(sent));
    int reloads = 0;
    SignalDispatch d(readiness, [&] { ++reloads; });
    EXPECT_EQ(d.dispatch(sig), SignalAction::kStop);
    EXPECT_TRUE(d.stop_requested());
    EXPECT_EQ(reloads, 0);
  }
}

TEST(SignalDispatch, HangupWithoutHookIsIgnored) {
  std::vector<std::string> sent;
  Readiness readiness(platform::StartupReport{}, std::make_unique<RecordingNotifier>(sent));
  SignalDispatch d(readiness, nullptr);
  EXPECT_EQ(d.dispatch(platform::Signal::kHangup), SignalAction::kReload);
  EXPECT_FALSE(d.stop_requested());
  EXPECT_TRUE(sent.empty()) << "no reload to announce";
}

TEST(Readiness, StatesInOrder) {
  std::vector<std::string> sent;
  Readiness r(platform::StartupReport{}, std::make_unique<RecordingNotifier>(sent));
  r.ready();
  r.stopping();
  EXPECT_EQ(sent, (std::vector<std::string>{"READY=1", "STOPPING=1"}));
  Readiness none;  // no NOTIFY_SOCKET, foreground: nothing to send, nothing fails
  none.ready();
  none.stopping();
}

// The runtime detaches stdio after ready() when it is the child of a fork-and-wait; that must
// still be known once the start-up report has been sent (and its descriptor closed).
TEST(Readiness, StaysBackgroundAfterTheReadyReport) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  platform::UniqueFd read_end(fds[0]);
  Readiness r(platform::StartupReport(platform::UniqueFd(fds[1])), nullptr);
  EXPECT_TRUE(r.background());
  r.ready();
  EXPECT_TRUE(r.background());
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'R') << "the waiting parent is told 'ready'";
}

using std::chrono::seconds;

// A monotonic time point S seconds after the clock's epoch.
MonoTime at(int s) {
  return MonoTime(seconds(s));
}

TEST(TimerSet, RunsDueTimersAndRearmsThem) {
  TimerSet t;
  EXPECT_EQ(t.next_deadline(), kNoDeadline);
  std::vector<std::string> ran;
  t.add(at(1), seconds(1), [&] { ran.push_back("watch"); });
  t.add(at(5), seconds(5), [&] { ran.push_back("maintain"); });
  EXPECT_EQ(t.next_deadline(), at(1));
  EXPECT_EQ(t.run_due(at(0)), 0);
  EXPECT_EQ(t.run_due(at(1)), 1);
  EXPECT_EQ(t.next_deadline(), at(2));
  EXPECT_EQ(t.run_due(at(5)), 2);
  EXPECT_EQ(ran, (std::vector<std::string>{"watch", "watch", "maintain"}));
  EXPECT_EQ(t.next_deadline(), at(6));
}

TEST(TimerSet, TimerAddedByACallbackWaitsForTheNextRound) {
  TimerSet t;
  int inner = 0;
  t.add(at(1), seconds(1), [&] { t.add(at(0), seconds(1), [&] { ++inner; }); });
  EXPECT_EQ(t.run_due(at(1)), 1);
  EXPECT_EQ(inner, 0);
  EXPECT_EQ(t.next_deadline(), at(0));
  EXPECT_EQ(t.run_due(at(1)), 1);
  EXPECT_EQ(inner, 1);
}

}  // namespace
}  // namespace warren::runtime
