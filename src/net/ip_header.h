#pragma once
/// Minimal, bounds-checked reads of the IPv4/IPv6 header fields the tunnel needs: version,
/// source, destination and the length the header claims (to trim padding after decryption).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "net/ip_address.h"

namespace warren::net {

struct IpHeaderInfo {
  Family family;
  IpAddress source;
  IpAddress destination;
  std::size_t total_length;  // from the header: IPv4 total length, IPv6 40 + payload length
};

/// nullopt when the buffer is too short for its header, the version is neither 4 nor 6, or the
/// claimed length is smaller than the header or larger than the buffer.
std::optional<IpHeaderInfo> parse_ip_header(std::span<const std::uint8_t> packet);

/// The destination only (fast path for routing an outgoing packet).
std::optional<IpAddress> ip_destination(std::span<const std::uint8_t> packet);

struct UdpPorts {
  std::uint16_t source;
  std::uint16_t destination;
};

/// The UDP ports of an IPv4 or IPv6 UDP packet (IPv6 without extension headers, first
/// fragment only), or nullopt for anything else.
std::optional<UdpPorts> udp_ports(std::span<const std::uint8_t> packet);

}  // namespace warren::net
