#pragma once
/// IPv4/IPv6 addresses, prefixes and UDP endpoints as plain values (no sockaddr in the API).

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren::net {

enum class Family : std::uint8_t { kV4 = 4, kV6 = 6 };

class IpAddress {
 public:
  IpAddress() = default;  // 0.0.0.0
  static IpAddress v4(std::array<std::uint8_t, 4> b);
  static IpAddress v4(std::uint32_t host_order);
  static IpAddress v6(const std::array<std::uint8_t, 16>& b);
  /// Builds from 4 or 16 network-order bytes; nullopt for any other length.
  static std::optional<IpAddress> from_bytes(const std::uint8_t* p, std::size_t len);
  /// "192.0.2.1", "2001:db8::1"; an IPv6 zone ("fe80::1%2") is accepted and dropped.
  static std::optional<IpAddress> parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  bool is_v6() const { return family_ == Family::kV6; }
  /// 4 or 16.
  std::size_t size() const { return is_v4() ? 4 : 16; }
  const std::uint8_t* data() const { return bytes_.data(); }
  /// Bit `i` counted from the most significant bit of the first byte.
  bool bit(unsigned i) const { return (bytes_[i / 8] >> (7 - i % 8)) & 1; }
  /// IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4; anything else is unchanged.
  IpAddress unmapped() const;
  /// Keeps the first `bits` bits, zeroes the rest.
  IpAddress masked(unsigned bits) const;
  bool is_unspecified() const;
  /// 127.0.0.0/8, ::1, and ::ffff:127.x.y.z.
  bool is_loopback() const;
  std::string to_string() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<std::uint8_t, 16> bytes_{};  // v4 uses the first 4
};

/// An address with a prefix length; `parse` and `canonical` mask host bits as UAPI requires.
struct Prefix {
  IpAddress address;
  std::uint8_t length = 0;

  /// "10.0.0.0/8", "::/0"; a bare address means a host prefix. Host bits are kept; call
  /// canonical() to mask them.
  static std::optional<Prefix> parse(std::string_view text);
  Prefix canonical() const { return Prefix{address.masked(length), length}; }
  bool contains(const IpAddress& a) const;
  unsigned max_length() const { return address.is_v4() ? 32 : 128; }
  std::string to_string() const;

  friend bool operator==(const Prefix&, const Prefix&) = default;
  friend auto operator<=>(const Prefix&, const Prefix&) = default;
};

/// A UDP endpoint. IPv4 endpoints print as a.b.c.d:port, IPv6 as [addr]:port (wg's form).
struct Endpoint {
  IpAddress address;
  std::uint16_t port = 0;

  /// "192.0.2.1:51820", "[2001:db8::1]:51820", "[fe80::1%2]:51820".
  static std::optional<Endpoint> parse(std::string_view text);
  std::string to_string() const;
  bool valid() const { return port != 0; }

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

}  // namespace warren::net

namespace warren::net {

/// A datagram's path: the remote endpoint plus the local address (and interface) it arrived at,
/// so replies leave from the address the peer used (IP_PKTINFO / IPV6_PKTINFO "sticky source"),
/// and the transport that carries it.
///
/// `transport` says which of the engine's transports the path belongs to: 0 is UDP (the
/// engine's sockets; `remote` is then a UDP endpoint); any other value is a transport the
/// engine added (a relay stream, a QUIC connection; see dataplane/transport.h), for which
/// `remote`, `local` and `ifindex` mean whatever that transport says. The protocol core treats
/// the tag as opaque: it copies, stores and compares it as part of the address (roaming to
/// another transport is a change of endpoint), and never interprets it.
struct Path {
  Endpoint remote;
  std::optional<IpAddress> local;
  std::uint32_t ifindex = 0;
  std::uint8_t transport = 0;

  friend bool operator==(const Path&, const Path&) = default;
};

}  // namespace warren::net
