// EventLoop on epoll. The wake-up is a Notifier (eventfd) and the timer a timerfd armed with
// an absolute CLOCK_MONOTONIC deadline, both registered like any other descriptor.
//
// Handlers live in heap entries whose address is the epoll cookie. remove() only marks an
// entry dead and parks it; parked entries are freed after the dispatch loop, so an event that
// was already returned by epoll_wait for a removed descriptor finds a dead entry, not freed
// memory.
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <unordered_map>
#include <vector>

#include "platform/event_loop.h"
#include "platform/notifier.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

constexpr int kMaxEvents = 64;

std::uint32_t to_epoll(std::uint32_t events) {
  std::uint32_t e = 0;
  if (events & kReadable)
    e |= EPOLLIN;
  if (events & kWritable)
    e |= EPOLLOUT;
  return e;
}

std::uint32_t from_epoll(std::uint32_t e) {
  std::uint32_t events = 0;
  if (e & (EPOLLIN | EPOLLPRI))
    events |= kReadable;
  if (e & EPOLLOUT)
    events |= kWritable;
  if (e & (EPOLLERR | EPOLLHUP))
    events |= kHangup;
  return events;
}

class EpollLoop final : public EventLoop {
 public:
  EpollLoop(UniqueFd epoll_fd, UniqueFd timer_fd)
      : epoll_(std::move(epoll_fd)), timer_(std::move(timer_fd)) {}

  Status init() {
    Status s = add(wake_.fd(), kReadable, [this](std::uint32_t) {
      wake_.clear();
      if (wake_handler_)
        wake_handler_();
    });
    if (!s.ok())
      return s;
    return add(timer_.get(), kReadable, [this](std::uint32_t) {
      std::uint64_t expirations;
      if (::read(timer_.get(), &expirations, sizeof(expirations)) < 0)
        return;
      if (timer_handler_) {
        // The handler usually re-arms the timer; move it out so that is safe.
        auto handler = std::move(timer_handler_);
        timer_handler_ = nullptr;
        handler();
        if (!timer_handler_)
          timer_handler_ = std::move(handler);
      }
    });
  }

  Status add(int fd, std::uint32_t events, Handler handler) override {
    auto entry = std::make_unique<Entry>(Entry{fd, std::move(handler), true});
    epoll_event ev{};
    ev.events = to_epoll(events);
    ev.data.ptr = entry.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Error::from_errno(errno, "epoll_ctl(ADD)");
    }
    entries_[fd] = std::move(entry);
    return {};
  }

  Status modify(int fd, std::uint32_t events) override {
    auto it = entries_.find(fd);
    if (it == entries_.end())
      return Error::from_errno(ENOENT, "epoll_ctl(MOD)");
    epoll_event ev{};
    ev.events = to_epoll(events);
    ev.data.ptr = it->second.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) {
      return Error::from_errno(errno, "epoll_ctl(MOD)");
    }
    return {};
  }

  Status remove(int fd) override {
    auto it = entries_.find(fd);
    if (it == entries_.end())
      return Error::from_errno(ENOENT, "epoll_ctl(DEL)");
    // A closed descriptor has already left the epoll set; that is not an error.
    int err = 0;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0 && errno != EBADF)
      err = errno;
    it->second->alive = false;
    parked_.push_back(std::move(it->second));
    entries_.erase(it);
    if (!dispatching_)
      parked_.clear();
    return err ? Error::from_errno(err, "epoll_ctl(DEL)") : Status{};
  }

  Status set_timer(MonoTime deadline, std::function<void()> handler) override {
    itimerspec spec{};
    if (deadline != kNoDeadline) {
      // 0 would disarm the timer; a deadline in the past must fire at once instead.
      auto ns = std::max<Duration::rep>(deadline.time_since_epoch().count(), 1);
      spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
      return Error::from_errno(errno, "timerfd_settime");
    }
    timer_handler_ = std::move(handler);
    return {};
  }

  void set_wake_handler(std::function<void()> handler) override {
    wake_handler_ = std::move(handler);
  }

  void wake() noexcept override { wake_.set(); }

  Result<int> run_once(Duration timeout) override {
    int ms = -1;
    if (timeout >= Duration::zero()) {
      // Round up so a 0.5 ms timeout does not become a busy poll.
      auto t = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
      ms = t > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(t);
    }
    std::array<epoll_event, kMaxEvents> events;
    int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, ms);
    if (n < 0) {
      if (errno == EINTR)
        return 0;
      return Error::from_errno(errno, "epoll_wait");
    }
    int ran = 0;
    dispatching_ = true;
    for (int i = 0; i < n; ++i) {
      auto* entry = static_cast<Entry*>(events[i].data.ptr);
      if (!entry->alive)
        continue;
      entry->handler(from_epoll(events[i].events));
      ++ran;
    }
    dispatching_ = false;
    parked_.clear();
    return ran;
  }

 private:
  struct Entry {
    int fd;
    Handler handler;
    bool alive;
  };

  UniqueFd epoll_;
  UniqueFd timer_;
  Notifier wake_;
  std::unordered_map<int, std::unique_ptr<Entry>> entries_;
  std::vector<std::unique_ptr<Entry>> parked_;
  bool dispatching_ = false;
  std::function<void()> timer_handler_;
  std::function<void()> wake_handler_;
};

}  // namespace

Result<std::unique_ptr<EventLoop>> make_event_loop() {
  using R = Result<std::unique_ptr<EventLoop>>;
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep)
    return Error::from_errno(errno, "epoll_create1");
  UniqueFd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!tfd)
    return Error::from_errno(errno, "timerfd_create");
  auto loop = std::make_unique<EpollLoop>(std::move(ep), std::move(tfd));
  if (Status s = loop->init(); !s.ok())
    return s.error();
  return R(std::move(loop));
}

}  // namespace warren::platform
