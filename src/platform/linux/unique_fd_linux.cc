#include "platform/unique_fd.h"

#include <unistd.h>

namespace warren::platform {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0 && fd_ != fd) {
    // close() is not retried on EINTR: on Linux the descriptor is released even then, and a
    // retry could close a descriptor another thread has just been given.
    ::close(fd_);
  }
  fd_ = fd;
}

}  // namespace warren::platform
