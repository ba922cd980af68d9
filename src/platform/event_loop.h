#pragma once
/// EventLoop: readiness callbacks for descriptors, one timer and a cross-thread wake-up.
///
/// A loop belongs to the thread that calls run_once(); add/remove/set_timer are called from
/// that thread too (or before it starts). wake() is the only call other threads may make: it
/// makes the owning thread's current or next run_once() return promptly and then runs the
/// wake handler on the owning thread. Readiness is level-triggered: a callback that leaves
/// data unread is called again on the next run_once().
///
/// Callbacks may add or remove descriptors (including their own) while being dispatched.

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.h"
#include "base/time.h"

namespace warren::platform {

enum EventMask : std::uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  ///< error or hang-up; always reported, never requested
};

class EventLoop {
 public:
  using Handler = std::function<void(std::uint32_t events)>;

  virtual ~EventLoop() = default;

  /// Watches `fd` (not owned; it must stay open until remove()) for `events`.
  virtual Status add(int fd, std::uint32_t events, Handler handler) = 0;
  virtual Status modify(int fd, std::uint32_t events) = 0;
  virtual Status remove(int fd) = 0;

  /// Calls `handler` once Now::mono (CLOCK_MONOTONIC) reaches `deadline`; kNoDeadline
  /// disarms. A new call replaces the previous deadline and handler.
  virtual Status set_timer(MonoTime deadline, std::function<void()> handler) = 0;
  /// Runs on the loop's thread after wake().
  virtual void set_wake_handler(std::function<void()> handler) = 0;
  /// Thread-safe.
  virtual void wake() noexcept = 0;

  /// Waits for at most `timeout` (kNoTimeout or any negative value = no limit) and dispatches what is ready. Returns
  /// the number of callbacks run; EINTR is not an error (returns 0).
  virtual Result<int> run_once(Duration timeout) = 0;
};

/// Creates the platform's loop (epoll + timerfd + eventfd on Linux).
Result<std::unique_ptr<EventLoop>> make_event_loop();

}  // namespace warren::platform
