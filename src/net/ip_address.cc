#include "net/ip_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace warren::net {

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> b) {
  IpAddress a;
  a.family_ = Family::kV4;
  std::memcpy(a.bytes_.data(), b.data(), 4);
  return a;
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
  return v4({static_cast<std::uint8_t>(host_order >> 24),
             static_cast<std::uint8_t>(host_order >> 16),
             static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)});
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) {
  IpAddress a;
  a.family_ = Family::kV6;
  a.bytes_ = b;
  return a;
}

std::optional<IpAddress> IpAddress::from_bytes(const std::uint8_t* p, std::size_t len) {
  IpAddress a;
  if (len == 4) {
    a.family_ = Family::kV4;
  } else if (len == 16) {
    a.family_ = Family::kV6;
  } else {
    return std::nullopt;
  }
  std::memcpy(a.bytes_.data(), p, len);
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  std::string s(text);
  if (auto pct = s.find('%'); pct != std::string::npos) {
    if (s.find(':') == std::string::npos || pct + 1 == s.size())
      return std::nullopt;
    s.resize(pct);
  }
  IpAddress a;
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) != 1)
      return std::nullopt;
    a.family_ = Family::kV6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), a.bytes_.data()) != 1)
      return std::nullopt;
    a.family_ = Family::kV4;
  }
  return a;
}

IpAddress IpAddress::unmapped() const {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (is_v6() && std::memcmp(bytes_.data(), kMapped, 12) == 0) {
    return v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
  }
  return *this;
}

IpAddress IpAddress::masked(unsigned bits) const {
  IpAddress a = *this;
  unsigned total = static_cast<unsigned>(size()) * 8;
  if (bits >= total)
    return a;
  for (unsigned i = 0; i < size(); ++i) {
    unsigned lo = i * 8;
    if (bits <= lo) {
      a.bytes_[i] = 0;
    } else if (bits < lo + 8) {
      a.bytes_[i] &= static_cast<std::uint8_t>(0xff << (8 - (bits - lo)));
    }
  }
  for (std::size_t i = size(); i < 16; ++i)
    a.bytes_[i] = 0;
  return a;
}

bool IpAddress::is_loopback() const {
  const IpAddress a = unmapped();
  if (a.is_v4())
    return a.bytes_[0] == 127;
  for (std::size_t i = 0; i < 15; ++i) {
    if (a.bytes_[i])
      return false;
  }
  return a.bytes_[15] == 1;
}

bool IpAddress::is_unspecified() const {
  for (std::size_t i = 0; i < size(); ++i) {
    if (bytes_[i])
      return false;
  }
  return true;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::optional<Prefix> Prefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr)
    return std::nullopt;
  Prefix p{*addr, static_cast<std::uint8_t>(addr->is_v4() ? 32 : 128)};
  if (slash != std::string_view::npos) {
    auto bits = text.substr(slash + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), v);
    if (bits.empty() || ec != std::errc() || ptr != bits.data() + bits.size() ||
        v > p.max_length()) {
      return std::nullopt;
    }
    p.length = static_cast<std::uint8_t>(v);
  }
  return p;
}

bool Prefix::contains(const IpAddress& a) const {
  if (a.family() != address.family())
    return false;
  return a.masked(length) == address.masked(length);
}

std::string Prefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos)
      return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return std::nullopt;  // bare IPv6 needs brackets
  }
  auto addr = IpAddress::parse(host);
  if (!addr)
    return std::nullopt;
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || v == 0 ||
      v > 65535) {
    return std::nullopt;
  }
  return Endpoint{addr->unmapped(), static_cast<std::uint16_t>(v)};
}

std::string Endpoint::to_string() const {
  if (address.is_v4())
    return address.to_string() + ":" + std::to_string(port);
  return "[" + address.to_string() + "]:" + std::to_string(port);
}

}  // namespace warren::net
