#include "net/host_port.h"

#include "net/ip_address.h"

namespace warren::net {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos)
    return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> split_host_port(std::string_view text, std::string* why) {
  auto fail = [why](std::string reason) -> std::optional<HostPort> {
    if (why)
      *why = std::move(reason);
    return std::nullopt;
  };
  HostPort hp;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return fail("'[' without a closing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return fail("no ':port' after ']'");
    hp.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return fail("no ':port'");
    if (text.find(':') != colon)
      return fail("more than one ':' (write an IPv6 address as [v6]:port)");
    hp.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (hp.host.empty())
    return fail("empty host");
  if (port.empty() || port.size() > 5)
    return fail("port '" + std::string(port) + "' is not a number from 1 to 65535");
  unsigned v = 0;
  for (char c : port) {
    if (c < '0' || c > '9')
      return fail("port '" + std::string(port) + "' is not a number from 1 to 65535");
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535)
    return fail("port '" + std::string(port) + "' is not a number from 1 to 65535");
  hp.port = static_cast<std::uint16_t>(v);
  return hp;
}

bool valid_host(std::string_view host) {
  if (IpAddress::parse(host))
    return true;
  if (!host.empty() && host.back() == '.')
    host.remove_suffix(1);
  if (host.empty() || host.size() > 253)
    return false;
  std::size_t label = 0;
  char prev = '.';
  for (char c : host) {
    if (c == '.') {
      if (label == 0 || prev == '-')
        return false;
      label = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-') {
      if (c == '-' && label == 0)
        return false;
      if (++label > 63)
        return false;
    } else {
      return false;
    }
    prev = c;
  }
  return prev != '-';
}

std::string printable(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e)
      c = '?';
  return out;
}

}  // namespace warren::net
