#include "platform/fake/fake_netconfig.h"

#include <algorithm>
#include <cerrno>

namespace warren::platform::fake {
namespace {

RouteSpec normalized(RouteSpec r) {
  r.destination = r.destination.canonical();
  if (r.table == 0)
    r.table = kMainTable;
  return r;
}

// The kernel's identity of a route for EEXIST: table, destination and metric.
bool same_key(const RouteSpec& a, const RouteSpec& b) {
  return a.table == b.table && a.destination == b.destination &&
         a.metric.value_or(0) == b.metric.value_or(0);
}

// Deletion matches on what is given, as RTM_DELROUTE / RTM_DELRULE do.
bool route_matches(const RouteSpec& want, const RouteSpec& have) {
  return same_key(want, have) && (want.ifindex == 0 || want.ifindex == have.ifindex) &&
         (!want.gateway || want.gateway == have.gateway);
}

bool rule_matches(const RuleSpec& want, const RuleSpec& have) {
  return want.family == have.family && want.table == have.table && want.invert == have.invert &&
         (!want.priority || want.priority == have.priority) && want.fwmark == have.fwmark &&
         want.suppress_prefixlength == have.suppress_prefixlength;
}

}  // namespace

std::uint32_t FakeNetConfig::add_link(const std::string& name, std::uint32_t mtu, bool up) {
  const std::uint32_t ifindex = next_ifindex_++;
  state_.links[ifindex] = LinkInfo{ifindex, name, mtu, up, up};
  return ifindex;
}

void FakeNetConfig::remove_link(std::uint32_t ifindex) {
  state_.links.erase(ifindex);
  std::erase_if(state_.addresses, [&](const auto& a) { return a.first == ifindex; });
  std::erase_if(state_.routes, [&](const RouteSpec& r) { return r.ifindex == ifindex; });
}

bool FakeNetConfig::inject() {
  ++mutations_;
  if (fail_countdown_ == 0)
    return false;
  return --fail_countdown_ == 0;
}

Result<LinkInfo> FakeNetConfig::link_by_name(std::string_view name) {
  for (const auto& [i, l] : state_.links)
    if (l.name == name)
      return l;
  return Error::from_errno(ENODEV, "fake(get link)");
}

Result<LinkInfo> FakeNetConfig::link_by_index(std::uint32_t ifindex) {
  auto it = state_.links.find(ifindex);
  if (it == state_.links.end())
    return Error::from_errno(ENODEV, "fake(get link)");
  return it->second;
}

Status FakeNetConfig::set_mtu(std::uint32_t ifindex, std::uint32_t mtu) {
  if (inject())
    return Error::from_errno(EIO, "fake(set mtu)");
  auto it = state_.links.find(ifindex);
  if (it == state_.links.end())
    return Error::from_errno(ENODEV, "fake(set mtu)");
  it->second.mtu = mtu;
  return {};
}

Status FakeNetConfig::set_up(std::uint32_t ifindex, bool up) {
  if (inject())
    return Error::from_errno(EIO, "fake(set up)");
  auto it = state_.links.find(ifindex);
  if (it == state_.links.end())
    return Error::from_errno(ENODEV, "fake(set up)");
  it->second.up = it->second.running = up;
  return {};
}

Status FakeNetConfig::delete_link(std::uint32_t ifindex) {
  if (inject())
    return Error::from_errno(EIO, "fake(delete link)");
  if (!state_.links.count(ifindex))
    return Error::from_errno(ENODEV, "fake(delete link)");
  remove_link(ifindex);
  return {};
}

Status FakeNetConfig::add_address(std::uint32_t ifindex, const net::Prefix& address) {
  if (inject())
    return Error::from_errno(EIO, "fake(add address)");
  if (!state_.links.count(ifindex))
    return Error::from_errno(ENODEV, "fake(add address)");
  if (!state_.addresses.insert({ifindex, address}).second)
    return Error::from_errno(EEXIST, "fake(add address)");
  return {};
}

Status FakeNetConfig::add_service_address(std::uint32_t ifindex, const net::Prefix& address) {
  if (auto s = add_address(ifindex, address); !s)
    return s;
  state_.service_addresses.insert({ifindex, address});
  return {};
}

Status FakeNetConfig::delete_address(std::uint32_t ifindex, const net::Prefix& address) {
  if (inject())
    return Error::from_errno(EIO, "fake(delete address)");
  if (!state_.links.count(ifindex))
    return Error::from_errno(ENODEV, "fake(delete address)");
  if (state_.addresses.erase({ifindex, address}) == 0)
    return Error::from_errno(EADDRNOTAVAIL, "fake(delete address)");
  state_.service_addresses.erase({ifindex, address});
  return {};
}

Status FakeNetConfig::add_route(const RouteSpec& route) {
  if (inject())
    return Error::from_errno(EIO, "fake(add route)");
  const RouteSpec r = normalized(route);
  if (r.ifindex != 0 && !state_.links.count(r.ifindex))
    return Error::from_errno(ENODEV, "fake(add route)");
  for (const auto& have : state_.routes)
    if (same_key(r, have))
      return Error::from_errno(EEXIST, "fake(add route)");
  state_.routes.insert(r);
  return {};
}

Status FakeNetConfig::delete_route(const RouteSpec& route) {
  if (inject())
    return Error::from_errno(EIO, "fake(delete route)");
  const RouteSpec r = normalized(route);
  for (auto it = state_.routes.begin(); it != state_.routes.end(); ++it) {
    if (route_matches(r, *it)) {
      state_.routes.erase(it);
      return {};
    }
  }
  return Error::from_errno(ESRCH, "fake(delete route)");
}

Status FakeNetConfig::add_rule(const RuleSpec& rule) {
  if (inject())
    return Error::from_errno(EIO, "fake(add rule)");
  for (const auto& have : state_.rules)
    if (rule_matches(rule, have) && have.priority == rule.priority)
      return Error::from_errno(EEXIST, "fake(add rule)");
  state_.rules.push_back(rule);
  return {};
}

Status FakeNetConfig::delete_rule(const RuleSpec& rule) {
  if (inject())
    return Error::from_errno(EIO, "fake(delete rule)");
  auto it = std::find_if(state_.rules.begin(), state_.rules.end(),
                         [&](const RuleSpec& have) { return rule_matches(rule, have); });
  if (it == state_.rules.end())
    return Error::from_errno(ENOENT, "fake(delete rule)");
  state_.rules.erase(it);
  return {};
}

Result<RouteSpec> FakeNetConfig::route_get(const net::IpAddress& destination) {
  const RouteSpec* best = nullptr;
  for (const auto& r : state_.routes) {
    if (r.table != kMainTable || r.destination.address.family() != destination.family() ||
        !r.destination.contains(destination))
      continue;
    if (!best || r.destination.length > best->destination.length ||
        (r.destination.length == best->destination.length &&
         r.metric.value_or(0) < best->metric.value_or(0)))
      best = &r;
  }
  if (!best)
    return Error::from_errno(ENETUNREACH, "fake(get route)");
  RouteSpec out = *best;
  out.destination = net::Prefix{destination, static_cast<std::uint8_t>(destination.size() * 8)};
  out.metric.reset();
  return out;
}

Result<std::vector<net::Prefix>> FakeNetConfig::list_addresses(std::uint32_t ifindex) {
  std::vector<net::Prefix> out;
  for (const auto& [i, p] : state_.addresses)
    if (ifindex == 0 || i == ifindex)
      out.push_back(p);
  return out;
}

Result<std::vector<LinkAddress>> FakeNetConfig::list_link_addresses() {
  std::vector<LinkAddress> out;
  for (const auto& [i, p] : state_.addresses)
    out.push_back(LinkAddress{i, p});
  return out;
}

}  // namespace warren::platform::fake
