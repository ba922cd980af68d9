// sd_notify(3) without libsystemd: one SOCK_DGRAM send per state to NOTIFY_SOCKET.
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "platform/service_notify.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

class UnixDatagramNotifier final : public ServiceNotifier {
 public:
  UnixDatagramNotifier(UniqueFd fd, const sockaddr_un& addr, socklen_t len)
      : fd_(std::move(fd)), addr_(addr), len_(len) {}

  warren::Status notify(std::string_view state) override {
    for (;;) {
      const ssize_t n = ::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL,
                                 reinterpret_cast<const sockaddr*>(&addr_), len_);
      if (n >= 0)
        return {};
      if (errno != EINTR)
        return warren::Error::from_errno(errno, "sendto(NOTIFY_SOCKET)");
    }
  }

 private:
  UniqueFd fd_;
  sockaddr_un addr_;
  socklen_t len_;
};

}  // namespace

warren::Result<std::unique_ptr<ServiceNotifier>> service_notifier_from_environment() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (!env || !*env)
    return std::unique_ptr<ServiceNotifier>();
  const std::string path = env;
  ::unsetenv("NOTIFY_SOCKET");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof(addr.sun_path))
    return warren::Error(EINVAL, "NOTIFY_SOCKET=" + path +
                                     " is not an absolute path or an abstract name ('@...')");
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@')
    addr.sun_path[0] = '\0';  // abstract namespace; the length below excludes a trailing NUL
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                          (path[0] == '@' ? 0 : 1));
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid())
    return warren::Error::from_errno(errno, "socket(AF_UNIX, SOCK_DGRAM)");
  return std::unique_ptr<ServiceNotifier>(
      std::make_unique<UnixDatagramNotifier>(std::move(fd), addr, len));
}

}  // namespace warren::platform
