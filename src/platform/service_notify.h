#pragma once
/// The service manager's readiness protocol (systemd's sd_notify(3)): one datagram per state
/// change to the AF_UNIX socket named by NOTIFY_SOCKET.
///
///   daemon ──"READY=1" / "RELOADING=1\nMONOTONIC_USEC=..." / "STOPPING=1"──► NOTIFY_SOCKET
///
/// Only the sending lives here (it is a system call); which state to send when is the
/// runtime's business (runtime/runtime.h). A path starting with '@' is an abstract socket.
/// (Linux: linux/service_notify_linux.cc.)

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace warren::platform {

class ServiceNotifier {
 public:
  virtual ~ServiceNotifier() = default;
  /// Sends `state` ("READY=1", ...) as one datagram. Thread-safe.
  [[nodiscard]] virtual warren::Status notify(std::string_view state) = 0;
};

/// The notifier for NOTIFY_SOCKET, or null when it is unset or empty (not run by a service
/// manager). Removes NOTIFY_SOCKET from the environment, so programs the daemon runs (iptables,
/// resolvconf) cannot speak for it. EINVAL when the value is not an absolute path or an
/// abstract name ('@...'), or too long for a socket address; the socket is opened here.
[[nodiscard]] warren::Result<std::unique_ptr<ServiceNotifier>> service_notifier_from_environment();

}  // namespace warren::platform
