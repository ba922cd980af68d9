#pragma once
/// Name resolution for peer endpoints (platform/resolve.h: getaddrinfo on Linux).

#include <functional>
#include <optional>
#include <string>

#include "client/config.h"
#include "net/ip_address.h"

namespace warren::client {

/// The endpoint for `hp`: a literal address as is, a name resolved to its first UDP address.
/// nullopt with `error` set when it cannot be resolved (now).
using Resolver =
    std::function<std::optional<net::Endpoint>(const HostPort& hp, std::string& error)>;

/// getaddrinfo(AF_UNSPEC, SOCK_DGRAM), first result, as wg does.
std::optional<net::Endpoint> resolve_endpoint(const HostPort& hp, std::string& error);

}  // namespace warren::client
