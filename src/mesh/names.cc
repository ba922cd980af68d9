// Mesh names: the roster's active nodes as a dns::Zone (see names.h; the DNS work is in
// dns/zone.cc).

#include "mesh/names.h"

#include <utility>

namespace warren::mesh {

Result<std::string> canonical_mesh_domain(std::string_view domain) {
  return dns::canonical_domain(domain, "mesh domain");
}

Result<NameTable> NameTable::create(const Roster& roster, std::string_view domain) {
  NameTable t;
  std::vector<dns::Zone::Host> hosts;
  for (const auto& [key, e] : roster.nodes()) {
    if (e.state != NodeState::kActive)
      continue;  // revoked: peers drop it, so its name must not lead anywhere either
    t.by_name_.emplace(e.name, Addresses{e.v4, e.v6});
    // A name that is not one DNS label (a '.' in it) cannot be asked for as NAME.<domain>.
    if (dns::valid_host_label(e.name))
      hosts.push_back({e.name, {e.v4, e.v6}});
  }
  dns::Zone::Options o;
  o.domain = std::string(domain);
  o.what = "mesh domain";
  o.serial = static_cast<std::uint32_t>(roster.version());
  o.ttl = kNamesTtl;
  o.reverse_prefixes = {roster.plan().v4_prefix(), roster.plan().v6_prefix()};
  auto zone = dns::Zone::create(std::move(o), std::move(hosts));
  if (!zone)
    return zone.error();
  t.zone_ = std::move(*zone);
  return t;
}

std::optional<NameTable::Addresses> NameTable::find(std::string_view label) const {
  std::string l(label);
  for (auto& c : l)
    c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  auto it = by_name_.find(l);
  if (it == by_name_.end())
    return std::nullopt;
  return it->second;
}

Result<DnsAnswer> NameTable::answer(ConstBytes query, DnsTransport transport) const {
  return zone_->answer(query, transport);
}

}  // namespace warren::mesh
