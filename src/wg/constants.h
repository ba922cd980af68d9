#pragma once
/// Protocol constants with the whitepaper's names (§5.4, §6.1), and wire sizes.

#include <cstddef>
#include <cstdint>

#include "base/time.h"

namespace warren::wg {

// Timers and limits, whitepaper §6.1 (wireguard-go constants.go uses the same values).
inline constexpr std::uint64_t kRekeyAfterMessages = 1ULL << 60;
inline constexpr std::uint64_t kRejectAfterMessages = ~0ULL - (1ULL << 13);  // 2^64 - 2^13 - 1
inline constexpr Duration kRekeyAfterTime = std::chrono::seconds{120};
inline constexpr Duration kRejectAfterTime = std::chrono::seconds{180};
inline constexpr Duration kRekeyAttemptTime = std::chrono::seconds{90};
inline constexpr Duration kRekeyTimeout = std::chrono::seconds{5};
inline constexpr Duration kKeepaliveTimeout = std::chrono::seconds{10};
inline constexpr Duration kCookieRefreshTime = std::chrono::seconds{120};
inline constexpr Duration kHandshakeInitiationRate = std::chrono::milliseconds{20};  // 50 per second per peer
inline constexpr std::uint32_t kRekeyTimeoutJitterMaxMs = 334;
inline constexpr int kMaxTimerHandshakes =
    static_cast<int>(kRekeyAttemptTime / kRekeyTimeout);  // 18
inline constexpr Duration kUnderLoadAfterTime = std::chrono::seconds{1};

inline constexpr std::size_t kPaddingMultiple = 16;
inline constexpr std::size_t kMaxPeers = 1u << 20;
inline constexpr std::size_t kMaxStagedPackets = 128;  // per peer, while no session exists
inline constexpr std::uint16_t kDefaultMtu = 1420;

// Message types and sizes, whitepaper §5.4.2-5.4.6.
inline constexpr std::uint32_t kMessageInitiation = 1;
inline constexpr std::uint32_t kMessageResponse = 2;
inline constexpr std::uint32_t kMessageCookieReply = 3;
inline constexpr std::uint32_t kMessageTransport = 4;

inline constexpr std::size_t kInitiationSize = 148;
inline constexpr std::size_t kResponseSize = 92;
inline constexpr std::size_t kCookieReplySize = 64;
inline constexpr std::size_t kTransportHeaderSize = 16;
inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kKeepaliveSize = kTransportHeaderSize + kTagSize;  // 32
inline constexpr std::size_t kMaxDatagramSize = 65535;
inline constexpr std::size_t kMaxContentSize = kMaxDatagramSize - kKeepaliveSize;

/// Room a send buffer needs before and after an IP packet to encrypt it in place.
inline constexpr std::size_t kSendHeadroom = kTransportHeaderSize;
inline constexpr std::size_t kSendTailroom = kPaddingMultiple - 1 + kTagSize;

static_assert(kInitiationSize == 4 + 4 + 32 + (32 + 16) + (12 + 16) + 16 + 16);
static_assert(kResponseSize == 4 + 4 + 4 + 32 + (0 + 16) + 16 + 16);
static_assert(kCookieReplySize == 4 + 4 + 24 + (16 + 16));
static_assert(kKeepaliveSize == 32);
static_assert(kMaxTimerHandshakes == 18);

}  // namespace warren::wg
