// Notifier on an eventfd: set() adds 1 to the counter, clear() reads it back to zero. The
// descriptor is readable while the counter is non-zero, which is exactly a level-triggered
// flag; repeated set() calls only grow the counter.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "platform/notifier.h"

namespace warren::platform {

Notifier::Notifier() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (!fd_)
    throw std::system_error(errno, std::generic_category(), "eventfd");
}

void Notifier::set() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN only if the counter would overflow, which still leaves it readable.
  [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof(one));
}

void Notifier::clear() noexcept {
  std::uint64_t value;
  [[maybe_unused]] auto n = ::read(fd_.get(), &value, sizeof(value));
}

}  // namespace warren::platform
