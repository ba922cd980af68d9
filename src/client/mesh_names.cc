// Names on a mesh node: the responder (runtime::DnsService) over the roster's NameTable, and
// the host's DNS settings that route the mesh domain to it (see mesh_names.h).

#include "client/mesh_names.h"

#include <algorithm>
#include <utility>

#include "dns/forwarder.h"
#include "mesh/names.h"
#include "platform/files.h"

namespace warren::client {

std::vector<net::IpAddress> mesh_responder_addresses(const mesh::AddressPlan& plan) {
  return {plan.dns_v4(), plan.dns_v6()};
}

std::vector<std::string> reverse_zones(const net::Prefix& prefix) {
  const net::Prefix p = prefix.canonical();
  const bool v4 = p.address.is_v4();
  const unsigned label_bits = v4 ? 8 : 4;  // an octet or a nibble per label
  const unsigned whole = p.length / label_bits, rest = p.length % label_bits;
  auto label = [&](unsigned i) -> unsigned {  // the i-th label's value, most significant first
    const std::uint8_t byte = p.address.data()[v4 ? i : i / 2];
    return v4 ? byte : (i % 2 == 0 ? byte >> 4 : byte & 0x0f);
  };
  auto hex = [](unsigned v) { return std::string(1, "0123456789abcdef"[v & 0xf]); };
  std::string suffix;
  for (unsigned i = 0; i < whole; ++i)
    suffix = (v4 ? std::to_string(label(i)) : hex(label(i))) + "." + suffix;
  suffix += v4 ? "in-addr.arpa" : "ip6.arpa";
  if (rest == 0)
    return {suffix};
  std::vector<std::string> out;
  const unsigned first = label(whole), count = 1u << (label_bits - rest);
  for (unsigned v = first; v < first + count; ++v)
    out.push_back((v4 ? std::to_string(v) : hex(v)) + "." + suffix);
  return out;
}

DnsSettings mesh_dns_settings(const ClientConfig& c, const mesh::AddressPlan& plan,
                              DnsMethod method) {
  const MeshConfig& m = *c.mesh;
  DnsSettings s;
  s.servers = mesh_responder_addresses(plan);
  if (method == DnsMethod::kResolved) {
    // ~warren and the mesh's reverse zones: only the mesh's names go to the responder.
    s.routing = {m.domain};
    for (const auto& prefix : {plan.v4_prefix(), plan.v6_prefix()})
      for (auto& z : reverse_zones(prefix))
        s.routing.push_back(std::move(z));
  } else {
    s.search = {m.domain};
  }
  // The config's own search domains stay search domains (after the mesh's).
  for (const auto& d : c.dns_search)
    if (std::find(s.search.begin(), s.search.end(), d) == s.search.end())
      s.search.push_back(d);
  return s;
}

std::vector<net::Endpoint> mesh_upstreams(const ClientConfig& c, std::string_view resolv_conf,
                                          const mesh::AddressPlan& plan) {
  const auto own = mesh_responder_addresses(plan);
  std::vector<net::Endpoint> out;
  if (!c.dns_servers.empty()) {
    for (const auto& a : c.dns_servers)
      if (std::find(own.begin(), own.end(), a) == own.end())
        out.push_back(net::Endpoint{a, 53});
    return out;
  }
  return dns::upstreams_from_resolv_conf(resolv_conf, own);
}

std::string upstreams_file(DnsMethod method, const std::string& resolv_conf) {
  // resolved's stub (127.0.0.53) in /etc/resolv.conf would work too, but its own file names the
  // servers themselves: one hop less, and no chance of asking resolved for ~warren again.
  if (method == DnsMethod::kResolved)
    return "/run/systemd/resolve/resolv.conf";
  return resolv_conf;
}

Result<std::vector<net::Endpoint>> read_mesh_upstreams(const ClientConfig& c, DnsMethod method,
                                                       const std::string& resolv_conf,
                                                       const mesh::AddressPlan& plan) {
  if (!c.dns_servers.empty())
    return mesh_upstreams(c, "", plan);
  const std::string path = upstreams_file(method, resolv_conf);
  auto text = platform::read_file(path, 64 * 1024);
  if (!text)
    return text.error().with_context("cannot read " + path +
                                     " for the resolvers names outside the mesh go to");
  return mesh_upstreams(c, *text, plan);
}

Result<std::unique_ptr<MeshNames>> MeshNames::start(runtime::DnsWatcher watcher, Options o,
                                                    const mesh::Roster& roster,
                                                    RandomSource& random,
                                                    const platform::Clock& clock) {
  auto table = mesh::NameTable::create(roster, o.domain);
  if (!table)
    return table.error();
  runtime::DnsServiceOptions so;
  so.listen = mesh_responder_addresses(o.plan);
  // Local programs ask from the responder's own address; other nodes (through the tunnel) from
  // theirs: all inside the mesh prefixes. Nothing else may use it as an open resolver.
  so.client_prefixes = {o.plan.v4_prefix(), o.plan.v6_prefix()};
  so.port = o.port;
  so.upstreams = std::move(o.upstreams);
  so.rate = kMeshDnsRate;
  so.burst = kMeshDnsBurst;
  auto s =
      runtime::DnsService::start(std::move(watcher), std::move(so), table->zone(), random, clock);
  if (!s)
    return s.error();
  return std::unique_ptr<MeshNames>(new MeshNames(std::move(o.domain), std::move(*s)));
}

Status MeshNames::update(const mesh::Roster& roster) {
  auto table = mesh::NameTable::create(roster, domain_);
  if (!table)
    return table.error();
  service_->set_zone(table->zone());
  return ok();
}

}  // namespace warren::client
