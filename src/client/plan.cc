#include "client/plan.h"

#include <algorithm>
#include <set>

#include "client/mesh_names.h"
#include "mesh/address.h"

namespace warren::client {
namespace {

bool is_default(const net::Prefix& p) {
  return p.length == 0;
}

bool full_tunnel(const ClientConfig& c) {
  if (c.table)  // off or an explicit table: no policy routing
    return false;
  for (const auto& peer : c.peers)
    for (const auto& p : peer.allowed_ips)
      if (is_default(p))
        return true;
  return false;
}

}  // namespace

std::string backup_path(const PlanOptions& o, const std::string& ifname) {
  return o.state_dir + "/" + ifname + ".resolv.conf";
}

JournalScope journal_scope(const PlanOptions& o, const std::string& ifname) {
  return JournalScope{ifname, o.resolv_conf, backup_path(o, ifname), o.sysctl_dir};
}

std::uint32_t effective_fwmark(const ClientConfig& c) {
  if (c.fwmark && *c.fwmark != 0)
    return *c.fwmark;
  return full_tunnel(c) ? kDefaultFullTunnelTable : 0;
}

std::uint32_t tunnel_mtu(const ClientConfig& c, std::uint32_t created_mtu) {
  const std::uint32_t mtu = c.mtu.value_or(created_mtu);
  return may_use_quic(c) ? std::min(mtu, kQuicTunnelMtu) : mtu;
}

std::vector<std::unique_ptr<Step>> plan_steps(const ClientConfig& c, std::uint32_t ifindex,
                                              std::uint32_t current_mtu, System& sys,
                                              const PlanOptions& o) {
  std::vector<std::unique_ptr<Step>> steps;
  steps.push_back(make_interface_step(c.interface, ifindex));
  if (const std::uint32_t mtu = tunnel_mtu(c, current_mtu); mtu != current_mtu)
    steps.push_back(host::make_mtu_step(ifindex, mtu, current_mtu));
  for (const auto& a : c.addresses)
    steps.push_back(host::make_address_step(ifindex, a));
  // A mesh node's DNS responder (mesh_names.h): its fixed addresses, after the node's own so
  // that IPv4 source selection (the first address of the link) keeps picking the node's.
  std::optional<mesh::AddressPlan> mesh_plan;
  if (c.mesh)
    if (auto p = mesh::AddressPlan::create(c.mesh->prefix_v4, c.mesh->prefix_v6))
      mesh_plan = *p;
  if (mesh_plan)
    for (const auto& a : mesh_responder_addresses(*mesh_plan))
      steps.push_back(make_service_address_step(
          ifindex, net::Prefix{a, static_cast<std::uint8_t>(a.is_v4() ? 32 : 128)}));
  steps.push_back(host::make_link_up_step(ifindex));

  // Routes, deduplicated, in the order they appear.
  std::set<net::Prefix> connected;
  for (const auto& a : c.addresses)
    connected.insert(a.canonical());
  std::vector<net::Prefix> prefixes;
  for (const auto& peer : c.peers)
    for (const auto& p : peer.allowed_ips)
      if (std::find(prefixes.begin(), prefixes.end(), p.canonical()) == prefixes.end())
        prefixes.push_back(p.canonical());

  const bool routes = !c.table || *c.table != 0;
  const std::uint32_t table = c.table.value_or(0);
  const std::uint32_t mark = effective_fwmark(c);
  bool default_v4 = false, default_v6 = false;
  if (routes && table == 0) {
    for (const auto& ep : o.endpoints) {
      const bool covered = std::any_of(prefixes.begin(), prefixes.end(), [&](const net::Prefix& p) {
        return !is_default(p) && p.contains(ep);
      });
      if (!covered)
        continue;
      auto via = sys.net().route_get(ep);
      if (!via.ok() || via->ifindex == ifindex)
        continue;  // unreachable now, or already through the tunnel: nothing to pin
      platform::RouteSpec pin{via->destination, via->ifindex, 0, kEndpointRouteMetric,
                              via->gateway};
      steps.push_back(host::make_route_step(pin));
    }
  }
  if (routes) {
    for (const auto& p : prefixes) {
      if (is_default(p) && !c.table) {
        (p.address.is_v4() ? default_v4 : default_v6) = true;
        continue;
      }
      if (table == 0 && connected.count(p))
        continue;  // the kernel added it with the address
      steps.push_back(host::make_route_step(platform::RouteSpec{p, ifindex, table, {}, {}}));
    }
    // The mesh prefixes, after link up (an IPv6 route needs the link up), unless the
    // coordinator's routes already named them.
    if (c.mesh)
      for (const auto& p : {c.mesh->prefix_v4.canonical(), c.mesh->prefix_v6.canonical()})
        if (std::find(prefixes.begin(), prefixes.end(), p) == prefixes.end())
          steps.push_back(make_ensure_route_step(platform::RouteSpec{p, ifindex, table, {}, {}}));
  }
  for (net::Family f : {net::Family::kV4, net::Family::kV6}) {
    if (!(f == net::Family::kV4 ? default_v4 : default_v6))
      continue;
    const net::Prefix any{f == net::Family::kV4 ? net::IpAddress() : net::IpAddress::v6({}), 0};
    steps.push_back(host::make_route_step(platform::RouteSpec{any, ifindex, mark, {}, {}}));
    platform::RuleSpec not_ours;
    not_ours.family = f;
    not_ours.table = mark;
    not_ours.fwmark = mark;
    not_ours.invert = true;
    steps.push_back(host::make_rule_step(not_ours));
    platform::RuleSpec main_specific;
    main_specific.family = f;
    main_specific.table = platform::kMainTable;
    main_specific.suppress_prefixlength = 0;
    steps.push_back(host::make_rule_step(main_specific));
    if (f == net::Family::kV4) {
      const std::string path = o.sysctl_dir + "/net/ipv4/conf/all/src_valid_mark";
      if (auto old = host::read_sysctl(sys, path); old && *old != "1")
        steps.push_back(host::make_sysctl_step(path, "1", old->empty() ? "0" : *old));
    }
  }

  if (mesh_plan) {
    // The responder answers the mesh domain and forwards the rest (to the config's DNS
    // servers, if any): the host asks it instead (mesh_dns_settings).
    steps.push_back(make_dns_step(o.dns, c.interface, mesh_dns_settings(c, *mesh_plan, o.dns),
                                  o.resolv_conf, backup_path(o, c.interface)));
  } else if (!c.dns_servers.empty() || !c.dns_search.empty()) {
    steps.push_back(make_dns_step(o.dns, c.interface, DnsSettings{c.dns_servers, c.dns_search},
                                  o.resolv_conf, backup_path(o, c.interface)));
  }
  return steps;
}

Status check_mesh_overlap(platform::NetConfig& net, const ClientConfig& c,
                          std::uint32_t own_ifindex) {
  if (!c.mesh || c.mesh->allow_overlap)
    return {};
  auto listed = net.list_link_addresses();
  if (!listed)
    return listed.error().with_context("cannot list the interfaces' addresses for the mesh "
                                       "prefix check");
  for (const auto& a : *listed) {
    if (a.ifindex == own_ifindex)
      continue;
    for (const auto& prefix : {c.mesh->prefix_v4, c.mesh->prefix_v6}) {
      if (!prefix.contains(a.address.address))
        continue;
      auto link = net.link_by_index(a.ifindex);
      const std::string name = link.ok() ? link->name : "link " + std::to_string(a.ifindex);
      return Error(EADDRINUSE,
                   "interface " + name + " already has the address " + a.address.to_string() +
                       ", inside the mesh prefix " + prefix.to_string() +
                       " (another overlay such as Tailscale, or a carrier's CGNAT range): "
                       "routing the mesh prefix into " + c.interface +
                       " would cut it off. Use other mesh prefixes at the coordinator, or add "
                       "'#@warren MeshAllowOverlap = true' to the config to go ahead anyway");
    }
  }
  return {};
}

Result<std::unique_ptr<ActiveSetup>> bring_up(System& sys, const ClientConfig& c,
                                              std::uint32_t ifindex, std::uint32_t current_mtu,
                                              const PlanOptions& o,
                                              const std::string& journal_path) {
  if (auto s = check_mesh_overlap(sys.net(), c, ifindex); !s)
    return s.error();
  auto setup = ActiveSetup::open(sys, journal_path);
  if (!setup)
    return setup.error();
  for (auto& step : plan_steps(c, ifindex, current_mtu, sys, o)) {
    if (auto s = (*setup)->apply(std::move(step)); !s)
      return host::rollback_after(**setup, s.error());
  }
  return setup;
}

DnsMethod detect_dns_method(System& sys) {
  if (sys.program_exists("resolvconf"))
    return DnsMethod::kResolvconf;
  if (sys.resolved_running())
    return DnsMethod::kResolved;
  return DnsMethod::kFile;
}

}  // namespace warren::client
