#pragma once
/// The client's own set-up step, DNS, on top of the generic host steps (host/steps.h: address,
/// MTU, link, route, rule, sysctl), and the parser of a client journal.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "host/steps.h"
#include "net/ip_address.h"

namespace warren::client {

using host::ActiveSetup;
using host::ReplayResult;
using host::Step;
using host::System;

enum class DnsMethod { kResolvconf, kResolved, kFile };
const char* dns_method_name(DnsMethod m);
struct DnsSettings {
  std::vector<net::IpAddress> servers;
  std::vector<std::string> search;
};
/// resolvconf: `resolvconf -a tun.IFNAME -m 0 -x` (wg-quick's call); resolved: resolvectl dns /
/// domain, undone by `resolvectl revert`; file: `resolv_conf` rewritten in place after a copy
/// went to `backup`.
std::unique_ptr<Step> make_dns_step(DnsMethod method, const std::string& ifname,
                                    const DnsSettings& dns, const std::string& resolv_conf,
                                    const std::string& backup);

/// A line of a client journal: a DNS step or a generic host step (no firewall rules: the
/// client never adds one); nullptr otherwise.
std::unique_ptr<Step> parse_step(std::string_view line);

/// Crash recovery of a client journal (host::replay_journal with parse_step).
ReplayResult replay_journal(System& sys, const std::string& path);

}  // namespace warren::client
