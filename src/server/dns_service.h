#pragma once
/// The server's resolver on its tunnel address(es) (docs/SERVER.md, "[dns]"): enrolled clients
/// resolve NAME.<domain> to each other's tunnel addresses, and every other name is forwarded to
/// the host's resolvers — so `[clients] dns = ["10.8.0.1"]` works out of the box. The service
/// itself (sockets, forwarding, rate limit) is runtime/dns_service.h, shared with the mesh
/// node's responder; this file has the server's parts: its upstreams and its zone.

#include <string>
#include <vector>

#include "base/result.h"
#include "dns/zone.h"
#include "net/ip_address.h"
#include "runtime/dns_service.h"

namespace warren::server {

struct ClientRecord;
struct ServerConfig;

using runtime::DnsCounters;
using runtime::DnsService;
using runtime::DnsServiceOptions;
using runtime::DnsWatcher;
using runtime::kMaxTcpRetries;

/// The tunnel resolver's upstreams: [dns].upstreams, else the nameservers of /etc/resolv.conf
/// (inside `ip netns exec`, the namespace's own) without the server's own tunnel addresses
/// (dns::upstreams_from_resolv_conf). An error (naming the file) only when resolv.conf is needed
/// and cannot be read.
[[nodiscard]] Result<std::vector<net::Endpoint>> dns_upstreams(const ServerConfig& config);

/// The zone of the enrolled clients: every client that is neither revoked nor disabled and
/// whose name is one DNS label, with its leased addresses; the tunnel prefixes are the reverse
/// prefixes. Errors only for a bad domain.
[[nodiscard]] Result<dns::Zone> client_zone(const std::vector<ClientRecord>& clients,
                                            const std::string& domain,
                                            std::vector<net::Prefix> prefixes);

}  // namespace warren::server
