#pragma once
/// Wire layout of the four WireGuard messages (whitepaper §5.4.2-5.4.6). All integers are
/// little-endian; bytes 1-3 are reserved and must be zero, so the first four bytes read as a
/// little-endian u32 type (a non-zero reserved byte makes an unknown type, as in wireguard-go).

#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/bytes.h"
#include "wg/constants.h"

namespace warren::wg::msg {

// Type 1, handshake initiation.
inline constexpr std::size_t kInitSender = 4;
inline constexpr std::size_t kInitEphemeral = 8;
inline constexpr std::size_t kInitStatic = 40;     // 32 + 16
inline constexpr std::size_t kInitTimestamp = 88;  // 12 + 16
inline constexpr std::size_t kInitMac1 = 116;
inline constexpr std::size_t kInitMac2 = 132;
static_assert(kInitMac2 + 16 == kInitiationSize);

// Type 2, handshake response.
inline constexpr std::size_t kRespSender = 4;
inline constexpr std::size_t kRespReceiver = 8;
inline constexpr std::size_t kRespEphemeral = 12;
inline constexpr std::size_t kRespEmpty = 44;  // 0 + 16
inline constexpr std::size_t kRespMac1 = 60;
inline constexpr std::size_t kRespMac2 = 76;
static_assert(kRespMac2 + 16 == kResponseSize);

// Type 3, cookie reply.
inline constexpr std::size_t kCookieReceiver = 4;
inline constexpr std::size_t kCookieNonce = 8;
inline constexpr std::size_t kCookieEncrypted = 32;  // 16 + 16
static_assert(kCookieEncrypted + 32 == kCookieReplySize);

// Type 4, transport data.
inline constexpr std::size_t kDataReceiver = 4;
inline constexpr std::size_t kDataCounter = 8;
inline constexpr std::size_t kDataContent = 16;
static_assert(kDataContent == kTransportHeaderSize);

/// Offset of mac1 / mac2 in a handshake message of the given type (1 or 2).
constexpr std::size_t mac1_offset(std::uint32_t type) {
  return type == kMessageInitiation ? kInitMac1 : kRespMac1;
}
constexpr std::size_t mac2_offset(std::uint32_t type) {
  return type == kMessageInitiation ? kInitMac2 : kRespMac2;
}

/// The message type, or nullopt when the datagram is shorter than 4 bytes.
inline std::optional<std::uint32_t> type_of(ConstBytes datagram) {
  if (datagram.size() < 4)
    return std::nullopt;
  return load_le32(datagram.data());
}

inline void write_header(std::uint8_t* p, std::uint32_t type) {
  store_le32(p, type);
}

}  // namespace warren::wg::msg
