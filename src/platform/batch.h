#pragma once
/// Shared vocabulary of the batched packet interfaces (TUN and UDP).

#include <cerrno>
#include <cstddef>

namespace warren::platform {

/// Packets moved per read/write call at most (wireguard-go's IdealBatchSize). Batched
/// interfaces accept larger spans but move at most this many per call.
inline constexpr std::size_t kMaxBatch = 128;

/// Largest IP packet a TUN can carry and largest UDP payload; buffers are sized for it.
inline constexpr std::size_t kMaxPacketSize = 65535;

/// Result of one batched read or write.
struct [[nodiscard]] BatchResult {
  std::size_t count = 0;  ///< packets moved (read into the first `count` buffers / sent)
  /// 0, or the errno that ended the batch. Reads return EAGAIN only with count == 0; a read
  /// error after some packets is left for the next call. Writes report the last per-packet
  /// error while still counting the packets that went out.
  int error = 0;
  /// The device behind the descriptor is gone for good (TUN interface deleted); the owner
  /// should shut down.
  bool gone = false;

  bool would_block() const { return error == EAGAIN || error == EWOULDBLOCK; }
};

}  // namespace warren::platform
