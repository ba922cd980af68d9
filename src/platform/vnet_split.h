#pragma once
/// The read side of a vnet-header TUN queue, shared by the Linux TUN and FakeTun: one frame
/// from the kernel may become many packets, handed out into the caller's buffers over one or
/// more read() calls (see TunDevice::read()).

#include <cstddef>
#include <span>

#include "base/bytes.h"
#include "net/gso.h"
#include "platform/batch.h"

namespace warren::platform {

struct PendingFrame {
  net::GsoFrame frame;  // its packet span points into the owner's frame storage
  std::size_t next = 0;
  bool pending = false;

  void start(const net::GsoFrame& f) {
    frame = f;
    next = 0;
    pending = true;
  }

  /// Splits segments into bufs[result.count ...] (each at `offset`) until the frame or the
  /// first `n` buffers are used up. A buffer too small for its segment loses that segment
  /// (ENOBUFS when nothing else was read). True when the frame has been handed out whole.
  bool drain(std::span<const Bytes> bufs, std::span<std::size_t> sizes, std::size_t offset,
             std::size_t n, BatchResult& result) {
    while (next < frame.segments && result.count < n) {
      Bytes buf = bufs[result.count];
      const std::size_t w =
          buf.size() > offset ? net::split_segment(frame, next, buf.subspan(offset)) : 0;
      ++next;
      if (w == 0) {
        if (result.count == 0)
          result.error = ENOBUFS;
        continue;
      }
      if (result.error == ENOBUFS)
        result.error = 0;
      sizes[result.count++] = w;
    }
    pending = next < frame.segments;
    return !pending;
  }
};

}  // namespace warren::platform
