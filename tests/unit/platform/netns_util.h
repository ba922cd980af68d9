#pragma once
// Test helper: run a body inside a private network namespace on its own thread.
//
// unshare(CLONE_NEWNET) affects only the calling thread, so the body's sockets, TUN devices
// and netlink requests live in a namespace nobody else sees; when the thread ends and its
// descriptors close, the kernel destroys the namespace and everything in it, also when an
// assertion failed half-way.

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "platform/netlink.h"

namespace warren::testing {

inline bool is_root() {
  return ::geteuid() == 0;
}

/// Runs `body` in a fresh network namespace with loopback up. Returns an empty string on
/// success or the reason it could not run.
inline std::string run_in_new_netns(const std::function<void()>& body) {
  std::string error;
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    auto cfg = platform::open_net_config();
    if (!cfg.ok()) {
      error = cfg.message();
      return;
    }
    auto lo = (*cfg)->link_by_name("lo");
    if (!lo.ok() || !(*cfg)->set_up(lo->ifindex, true).ok()) {
      error = "cannot bring up lo";
      return;
    }
    body();
  });
  t.join();
  return error;
}

}  // namespace warren::testing
