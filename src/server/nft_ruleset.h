#pragma once
/// The nftables table the server owns while it runs with [nat] (full tunnel): its name and
/// its exact text. Pure functions of the config; server/host_setup.cc applies the table as
/// one journaled step (host::make_nft_table_step), so it appears and disappears atomically
/// and a crashed run's journal removes it.
///
/// For interface wg0, address_v4 10.8.0.1/24, address_v6 fd00:8::1/64, no out_interface:
///
///   table inet warren_wg0 {
///     chain forward {
///       type filter hook forward priority filter; policy accept;
///       iifname "wg0" counter accept
///       oifname "wg0" ct state established,related counter accept
///     }
///     chain postrouting {
///       type nat hook postrouting priority srcnat; policy accept;
///       ip saddr 10.8.0.0/24 oifname != "wg0" counter masquerade
///       ip6 saddr fd00:8::/64 oifname != "wg0" counter masquerade     (nat.ipv6 = "masquerade")
///     }
///   }
///
/// With out_interface = "eth0" the masquerade rules match `oifname "eth0"` instead; with
/// nat.ipv6 = "routed" there is no IPv6 masquerade rule (the clients' addresses are routed).
///
/// The forward chain accepts only within this table: a packet passes every base chain at the
/// forward hook, and an accept ends just the chain it is in, so a DROP in another table (the
/// iptables `filter FORWARD` chain's policy as Docker and ufw set it) still drops. The server
/// opens that chain with iptables itself (host_setup.h); the forward chain here makes the
/// tunnel's forwarded traffic visible in counters (`nft list table inet warren_wg0`).

#include <string>

#include "server/config.h"

namespace warren::server {

inline constexpr const char* kNftFamily = "inet";

/// "warren_" + the interface name (interface names are [A-Za-z0-9_.-], valid in nft names).
std::string nft_table_name(const ServerConfig& config);

/// The table's definition as above, `table inet NAME { ... }` with a trailing newline. Only
/// meaningful with config.nat.
std::string nft_table_definition(const ServerConfig& config);

}  // namespace warren::server
