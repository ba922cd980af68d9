#include "net/ip_header.h"

#include "base/bytes.h"

namespace warren::net {

std::optional<IpHeaderInfo> parse_ip_header(std::span<const std::uint8_t> p) {
  if (p.empty())
    return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4) {
    if (p.size() < 20)
      return std::nullopt;
    const std::size_t ihl = (p[0] & 0x0f) * 4u;
    const std::size_t total = load_be16(&p[2]);
    if (ihl < 20 || total < ihl || total > p.size())
      return std::nullopt;
    return IpHeaderInfo{Family::kV4, *IpAddress::from_bytes(&p[12], 4),
                        *IpAddress::from_bytes(&p[16], 4), total};
  }
  if (version == 6) {
    if (p.size() < 40)
      return std::nullopt;
    const std::size_t total = 40u + load_be16(&p[4]);
    if (total > p.size())
      return std::nullopt;
    return IpHeaderInfo{Family::kV6, *IpAddress::from_bytes(&p[8], 16),
                        *IpAddress::from_bytes(&p[24], 16), total};
  }
  return std::nullopt;
}

std::optional<IpAddress> ip_destination(std::span<const std::uint8_t> p) {
  if (p.empty())
    return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4 && p.size() >= 20)
    return IpAddress::from_bytes(&p[16], 4);
  if (version == 6 && p.size() >= 40)
    return IpAddress::from_bytes(&p[24], 16);
  return std::nullopt;
}

std::optional<UdpPorts> udp_ports(std::span<const std::uint8_t> p) {
  constexpr std::uint8_t kUdp = 17;
  if (p.empty())
    return std::nullopt;
  const unsigned version = p[0] >> 4;
  if (version == 4 && p.size() >= 20) {
    const std::size_t ihl = (p[0] & 0x0f) * 4u;
    const bool later_fragment = (load_be16(&p[6]) & 0x1fff) != 0;
    if (p[9] != kUdp || later_fragment || ihl < 20 || p.size() < ihl + 8)
      return std::nullopt;
    return UdpPorts{load_be16(&p[ihl]), load_be16(&p[ihl + 2])};
  }
  if (version == 6 && p.size() >= 48 && p[6] == kUdp) {
    return UdpPorts{load_be16(&p[40]), load_be16(&p[42])};
  }
  return std::nullopt;
}

}  // namespace warren::net
