#include "net/host_port.h"

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

}  // namespace warren::net
