#include "net/ip_header.h"

#include "base/bytes.h"

namespace warren::net {

std::optional<IpHeaderInfo> parse_ip_header(std::span<const std::uint8_t> p) {
  if (p.empty()) return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4) {
    if (p.size() < 20) return std::nullopt;
    const std::size_t ihl = (p[0] & 0x0f) * 4u;
    const std::size_t total = load_be16(&p[2]);
    if (ihl < 20 || total < ihl || total > p.size()) return std::nullopt;
    return IpHeaderInfo{Family::kV4, *IpAddress::from_bytes(&p[12], 4),
                        *IpAddress::from_bytes(&p[16], 4), total};
  }
  if (version == 6) {
    if (p.size() < 40) return std::nullopt;
    const std::size_t total = 40u + load_be16(&p[4]);
    if (total > p.size()) return std::nullopt;
    return IpHeaderInfo{Family::kV6, *IpAddress::from_bytes(&p[8], 16),
                        *IpAddress::from_bytes(&p[24], 16), total};
  }
  return std::nullopt;
}

std::optional<IpAddress> ip_destination(std::span<const std::uint8_t> p) {
  if (p.empty()) return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4 && p.size() >= 20) return IpAddress::from_bytes(&p[16], 4);
  if (version == 6 && p.size() >= 40) return IpAddress::from_bytes(&p[24], 16);
  return std::nullopt;
}

}  // namespace warren::net
