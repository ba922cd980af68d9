#pragma once
/// Notifier: a level-triggered readiness flag with a descriptor an EventLoop can watch.
///
/// set() makes fd() readable until clear() is called; setting twice is the same as once. The
/// event loop's wake-up, the in-memory fakes' "data available" signals and cross-thread
/// mailboxes are built on it. Thread-safety: set() and clear() may be called from any thread.
/// (Linux: an eventfd; see linux/notifier_linux.cc.)

#include "platform/unique_fd.h"

namespace warren::platform {

class Notifier {
 public:
  /// Throws std::system_error if the descriptor cannot be created (start-up only).
  Notifier();
  Notifier(Notifier&&) noexcept = default;
  Notifier& operator=(Notifier&&) noexcept = default;

  int fd() const { return fd_.get(); }
  void set() noexcept;
  void clear() noexcept;

 private:
  UniqueFd fd_;
};

}  // namespace warren::platform
