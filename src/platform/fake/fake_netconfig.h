#pragma once
/// FakeNetConfig: an in-memory rtnetlink for tests of code that configures interfaces.
///
/// It keeps links, addresses, routes and rules as plain values with the kernel's error codes
/// (EEXIST on a duplicate add, EADDRNOTAVAIL / ESRCH / ENOENT on deleting what is missing,
/// ENODEV for an unknown link), so a test can compare the whole state before and after.
/// Failure injection: `fail_mutation(n)` makes the n-th mutating call from now fail (EIO),
/// so a test can walk a set-up sequence failing at every step in turn.
///
/// Thread-safety: one thread at a time (tests).

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "platform/netlink.h"

namespace warren::platform::fake {

struct FakeNetState {
  std::map<std::uint32_t, LinkInfo> links;
  std::set<std::pair<std::uint32_t, net::Prefix>> addresses;
  /// Those of `addresses` added as service addresses (add_service_address), until deleted.
  std::set<std::pair<std::uint32_t, net::Prefix>> service_addresses;
  std::set<RouteSpec> routes;
  std::vector<RuleSpec> rules;  ///< in insertion order (the kernel keeps them ordered)
  friend bool operator==(const FakeNetState&, const FakeNetState&) = default;
};

class FakeNetConfig final : public NetConfig {
 public:
  /// Adds a link (administratively down unless `up`); returns its ifindex.
  std::uint32_t add_link(const std::string& name, std::uint32_t mtu = 1500, bool up = false);
  /// Removes a link and everything on it, as the kernel does when a TUN closes.
  void remove_link(std::uint32_t ifindex);

  const FakeNetState& state() const { return state_; }
  /// The n-th mutating call from now (1 = the next) fails with EIO; 0 disarms.
  void fail_mutation(unsigned n) { fail_countdown_ = n; }
  /// Mutating calls made so far (successful or not).
  unsigned mutations() const { return mutations_; }

  Result<LinkInfo> link_by_name(std::string_view name) override;
  Result<LinkInfo> link_by_index(std::uint32_t ifindex) override;
  Status set_mtu(std::uint32_t ifindex, std::uint32_t mtu) override;
  Status set_up(std::uint32_t ifindex, bool up) override;
  Status delete_link(std::uint32_t ifindex) override;
  Status add_address(std::uint32_t ifindex, const net::Prefix& address) override;
  Status delete_address(std::uint32_t ifindex, const net::Prefix& address) override;
  /// As add_address, and the address is also listed in state().service_addresses.
  Status add_service_address(std::uint32_t ifindex, const net::Prefix& address) override;
  Status add_route(const RouteSpec& route) override;
  Status delete_route(const RouteSpec& route) override;
  Status add_rule(const RuleSpec& rule) override;
  Status delete_rule(const RuleSpec& rule) override;
  /// Longest match in the main table (rules are not evaluated).
  Result<RouteSpec> route_get(const net::IpAddress& destination) override;
  Result<std::vector<net::Prefix>> list_addresses(std::uint32_t ifindex) override;
  Result<std::vector<LinkAddress>> list_link_addresses() override;

 private:
  /// Counts a mutation; true when this one must fail.
  bool inject();

  FakeNetState state_;
  std::uint32_t next_ifindex_ = 1;
  unsigned fail_countdown_ = 0;
  unsigned mutations_ = 0;
};

}  // namespace warren::platform::fake
