// The server's tunnel resolver: its upstreams and its zone (the service is runtime/dns_service.h).

#include "server/dns_service.h"

#include <algorithm>
#include <utility>

#include "platform/files.h"
#include "server/config.h"
#include "server/store.h"

namespace warren::server {

Result<std::vector<net::Endpoint>> dns_upstreams(const ServerConfig& config) {
  if (!config.dns_upstreams.empty())
    return config.dns_upstreams;
  std::vector<net::IpAddress> own;
  for (const auto& tn : {config.ipv4, config.ipv6})
    if (tn)
      own.push_back(tn->server_address);
  auto text = platform::read_file("/etc/resolv.conf", 64 * 1024);
  if (!text)
    return text.error().with_context("cannot read /etc/resolv.conf");
  return dns::upstreams_from_resolv_conf(*text, own);
}

Result<dns::Zone> client_zone(const std::vector<ClientRecord>& clients, const std::string& domain,
                              std::vector<net::Prefix> prefixes) {
  std::vector<dns::Zone::Host> hosts;
  for (const auto& c : clients) {
    if (c.revoked() || c.disabled() || !dns::valid_host_label(c.name))
      continue;
    dns::Zone::Host h{c.name, {}};
    for (const auto& l : c.leases)
      h.addresses.push_back(l.address);
    // Client names are unique in the store, but only case-sensitively: the first of two names
    // that differ in case only keeps it (DNS names do not tell them apart).
    const bool clash = std::any_of(hosts.begin(), hosts.end(), [&](const dns::Zone::Host& o) {
      return std::equal(o.label.begin(), o.label.end(), h.label.begin(), h.label.end(),
                        [](char a, char b) { return (a | 0x20) == (b | 0x20); });
    });
    if (!clash)
      hosts.push_back(std::move(h));
  }
  dns::Zone::Options o;
  o.domain = domain;
  o.what = "dns.domain";
  o.reverse_prefixes = std::move(prefixes);
  return dns::Zone::create(std::move(o), std::move(hosts));
}

}  // namespace warren::server
