#pragma once
/// Interface configuration and link notifications (rtnetlink on Linux, through libmnl).
///
/// NetConfig changes links, addresses and routes; LinkMonitor reports what happens to links.
/// The daemon uses them for the tunnel's MTU and for noticing `ip link del`; the client uses
/// them to configure its interface. Nothing here runs external programs.
///
/// Thread-safety: NetConfig serialises its requests internally (any thread). A LinkMonitor is
/// read by one thread at a time.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "net/ip_address.h"

namespace warren::platform {

struct LinkInfo {
  std::uint32_t ifindex = 0;
  std::string name;
  std::uint32_t mtu = 0;
  bool up = false;       ///< administratively up (IFF_UP)
  bool running = false;  ///< operationally up (IFF_RUNNING)
  friend bool operator==(const LinkInfo&, const LinkInfo&) = default;
};

struct RouteSpec {
  net::Prefix destination;
  std::uint32_t ifindex = 0;
  std::uint32_t table = 0;              ///< 0 = the main table; any 32-bit table id works
  std::optional<std::uint32_t> metric;  ///< RTA_PRIORITY
  /// Next hop (RTA_GATEWAY, scope universe); without one the route is on-link (scope link).
  std::optional<net::IpAddress> gateway;
  friend bool operator==(const RouteSpec&, const RouteSpec&) = default;
  friend auto operator<=>(const RouteSpec&, const RouteSpec&) = default;
};

/// A policy routing rule (`ip rule`, FIB rule). Matching fields left empty are wildcards.
///
///   not fwmark 0xca6c lookup 51820          {fwmark=0xca6c, invert=true, table=51820}
///   lookup main suppress_prefixlength 0     {table=254, suppress_prefixlength=0}
struct RuleSpec {
  net::Family family = net::Family::kV4;
  std::uint32_t table = 0;                ///< required (254 = main)
  std::optional<std::uint32_t> priority;  ///< FRA_PRIORITY; unset = the kernel picks on add
  std::optional<std::uint32_t> fwmark;    ///< FRA_FWMARK
  std::optional<std::uint32_t> fwmask;    ///< FRA_FWMASK (default all ones with a fwmark)
  std::optional<std::uint32_t> suppress_prefixlength;  ///< FRA_SUPPRESS_PREFIXLEN
  bool invert = false;                                 ///< FIB_RULE_INVERT ("not")
  friend bool operator==(const RuleSpec&, const RuleSpec&) = default;
  friend auto operator<=>(const RuleSpec&, const RuleSpec&) = default;
};

inline constexpr std::uint32_t kMainTable = 254;

/// An address and the link it is configured on (list_link_addresses).
struct LinkAddress {
  std::uint32_t ifindex = 0;
  net::Prefix address;
  friend bool operator==(const LinkAddress&, const LinkAddress&) = default;
};

class NetConfig {
 public:
  virtual ~NetConfig() = default;

  /// ENODEV when there is no such link.
  virtual Result<LinkInfo> link_by_name(std::string_view name) = 0;
  virtual Result<LinkInfo> link_by_index(std::uint32_t ifindex) = 0;

  virtual Status set_mtu(std::uint32_t ifindex, std::uint32_t mtu) = 0;
  virtual Status set_up(std::uint32_t ifindex, bool up) = 0;
  /// Deletes the link (`ip link del`).
  virtual Status delete_link(std::uint32_t ifindex) = 0;

  /// `address` is the interface address with its prefix length (10.0.0.1/24). Adding an
  /// existing address fails with EEXIST; deleting a missing one with EADDRNOTAVAIL.
  virtual Status add_address(std::uint32_t ifindex, const net::Prefix& address) = 0;
  virtual Status delete_address(std::uint32_t ifindex, const net::Prefix& address) = 0;
  /// As add_address, with a preferred lifetime of 0 (`ip addr add ... preferred_lft 0`): the
  /// address is local and may be bound, but IPv6 source selection avoids it (deprecated, RFC
  /// 6724 rule 3). For a service address such as the mesh DNS responder's. Deleted with
  /// delete_address.
  virtual Status add_service_address(std::uint32_t ifindex, const net::Prefix& address) = 0;

  /// Adding an existing route fails with EEXIST; deleting a missing one with ESRCH.
  virtual Status add_route(const RouteSpec& route) = 0;
  virtual Status delete_route(const RouteSpec& route) = 0;

  /// Adding an identical rule fails with EEXIST (NLM_F_EXCL); deleting a missing one with
  /// ENOENT. Deletion removes the first rule matching every given field.
  virtual Status add_rule(const RuleSpec& rule) = 0;
  virtual Status delete_rule(const RuleSpec& rule) = 0;

  /// The route the kernel would use for `destination` now (`ip route get`): ifindex, gateway
  /// and table of the match, with the host prefix as destination. ENETUNREACH when none.
  virtual Result<RouteSpec> route_get(const net::IpAddress& destination) = 0;

  /// The addresses configured on `ifindex` (0 = every link), with their prefix lengths.
  virtual Result<std::vector<net::Prefix>> list_addresses(std::uint32_t ifindex) = 0;
  /// Every address of every link, with the link's index (one RTM_GETADDR dump).
  virtual Result<std::vector<LinkAddress>> list_link_addresses() = 0;
};

Result<std::unique_ptr<NetConfig>> open_net_config();

struct LinkEvent {
  /// kRoutesChanged: a route or a local address of this namespace changed (any link); the
  /// source addresses chosen for sending may have changed with it. `link` is empty then.
  enum class Kind : std::uint8_t { kChanged, kDeleted, kRoutesChanged };
  Kind kind = Kind::kChanged;
  LinkInfo link;  ///< the new state (for kDeleted: the last known ifindex and name)
};

class LinkMonitor {
 public:
  virtual ~LinkMonitor() = default;
  /// Readable when poll() has notifications to deliver.
  virtual int poll_fd() const = 0;
  /// Delivers pending notifications without blocking; returns how many were delivered or an
  /// error. If the kernel dropped notifications (socket overrun), the monitor re-reads the
  /// watched link and reports its current state (kDeleted if it is gone).
  virtual Result<std::size_t> poll(const std::function<void(const LinkEvent&)>& on_event) = 0;
};

/// Watches link notifications for `ifindex` (0 = every link).
Result<std::unique_ptr<LinkMonitor>> open_link_monitor(std::uint32_t ifindex);

}  // namespace warren::platform
