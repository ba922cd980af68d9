#pragma once
/// "host:port" / "[v6]:port" as written in configuration files, invites and command lines.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren::net {

struct HostPort {
  std::string host;  ///< a literal address (without brackets) or a DNS name
  std::uint16_t port = 0;
  std::string to_string() const;  ///< "host:port", "[v6]:port"
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

/// Splits "host:port" or "[host]:port" (brackets are how an IPv6 literal carries its colons; an
/// unbracketed host may not contain ':'). The port is 1 to 5 decimal digits, 1..65535. The host
/// is only checked to be non-empty: callers that need an address or a DNS name check it. On
/// failure returns nullopt and, when `why` is given, stores a reason naming what was wrong.
std::optional<HostPort> split_host_port(std::string_view text, std::string* why = nullptr);

/// True when `host` is a literal IPv4/IPv6 address or a DNS host name (RFC 1123: dot-separated
/// labels of 1-63 letters, digits and '-', not starting or ending with '-', at most 253
/// characters, one optional trailing dot). Anything else — control characters, spaces,
/// shell or URL syntax — is refused, so a host from an untrusted source (an invite) can be
/// printed, logged and resolved safely.
bool valid_host(std::string_view host);

/// `text` with every byte outside printable ASCII shown as '?', for error messages about
/// untrusted input.
std::string printable(std::string_view text);

}  // namespace warren::net
