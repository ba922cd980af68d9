#pragma once
/// Names on a mesh node (docs/MESH.md, "Names"; docs/CLIENT.md, "DNS on a mesh node"): the
/// client daemon answers DNS for the mesh domain itself, from its own copy of the roster, on the
/// responder's fixed addresses (mesh::AddressPlan::dns_v4 / dns_v6), and forwards every other
/// name to the resolvers the host had before `up`.
///
///   plan_steps (mesh):  addr 100.64.0.1/32, 200::53/128 on IFNAME (service addresses: never a
///                       source) ─► ... ─► DNS step: servers = the responder;
///                       systemd-resolved: routing-only ~<domain>; resolvconf / file: the
///                       responder is the only nameserver, search <domain>
///   daemon started:     MeshNames::start ─► runtime::DnsService on UDP+TCP :53 of both
///                       addresses, zone = NameTable(roster).zone(), upstreams = mesh_upstreams
///   roster change:      MeshNames::update(roster) ─► the zone rebuilt (loop thread)
///   every tick:         MeshNames::tick (upstream timeouts, idle TCP)
///
/// The addresses and the DNS step are ordinary journaled steps, so `pause` / `resume` / `down`
/// and crash replay take them back and put them back like every other; the sockets stay bound
/// across a pause (Linux keeps a socket bound to an address that went away, and it receives
/// again once the address is back).
///
/// Loop thread only (the runtime's), as runtime::DnsService.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/random.h"
#include "base/result.h"
#include "client/config.h"
#include "client/steps.h"
#include "mesh/address.h"
#include "mesh/roster.h"
#include "net/ip_address.h"
#include "platform/clock.h"
#include "runtime/dns_service.h"

namespace warren::client {

/// Queries a second (and at once) from one source address: every local program asks from the
/// responder's own address, so the limit is the whole host's, not one client's.
inline constexpr double kMeshDnsRate = 2000;
inline constexpr double kMeshDnsBurst = 4000;

/// The responder's addresses, IPv4 then IPv6.
[[nodiscard]] std::vector<net::IpAddress> mesh_responder_addresses(const mesh::AddressPlan& plan);

/// The reverse zones (in-addr.arpa / ip6.arpa, no final dot) that cover exactly `prefix`: one
/// when its length is on a label boundary (octets for IPv4, nibbles for IPv6), else one per
/// value of the partial label — 100.64.0.0/10 is 64.100.in-addr.arpa ... 127.100.in-addr.arpa,
/// 200::/7 is 2.0.ip6.arpa and 3.0.ip6.arpa. For systemd-resolved's routing-only domains, so
/// that reverse lookups of mesh addresses reach the responder too.
[[nodiscard]] std::vector<std::string> reverse_zones(const net::Prefix& prefix);

/// The host's DNS settings on a mesh node (plan_steps' DNS step): the responder's addresses as
/// the servers; with systemd-resolved only the mesh domain and the reverse zones of the mesh
/// prefixes are routed there (routing-only `~<domain>`, `~64.100.in-addr.arpa`, ...), with
/// resolvconf and the file method the responder is the only nameserver and the domain a search
/// domain (it forwards everything else). The config's own DNS servers are not listed: they become
/// the responder's upstreams (mesh_upstreams); its search domains stay search domains, after
/// the mesh domain. `config.mesh` must be set.
[[nodiscard]] DnsSettings mesh_dns_settings(const ClientConfig& config,
                                            const mesh::AddressPlan& plan, DnsMethod method);

/// Where the forwarded names go: the config's `DNS =` servers when it names any, else the
/// nameservers of `resolv_conf` (the host's resolv.conf as it was before `up`; with
/// systemd-resolved, /run/systemd/resolve/resolv.conf, its real upstreams), never the
/// responder's own addresses (a loop). Port 53.
[[nodiscard]] std::vector<net::Endpoint> mesh_upstreams(const ClientConfig& config,
                                                        std::string_view resolv_conf,
                                                        const mesh::AddressPlan& plan);

/// The file to read mesh_upstreams' `resolv_conf` from for `method`.
[[nodiscard]] std::string upstreams_file(DnsMethod method, const std::string& resolv_conf);

/// mesh_upstreams with upstreams_file(method, resolv_conf) read now (through links: with
/// resolvconf it is one). Without `DNS =` servers in the config, an error naming the file when
/// it cannot be read (the responder then answers SERVFAIL for other names).
[[nodiscard]] Result<std::vector<net::Endpoint>> read_mesh_upstreams(const ClientConfig& config,
                                                                     DnsMethod method,
                                                                     const std::string& resolv_conf,
                                                                     const mesh::AddressPlan& plan);

/// The responder of one node: a runtime::DnsService serving the roster's NameTable.
class MeshNames {
 public:
  struct Options {
    mesh::AddressPlan plan;
    std::string domain = "warren";
    std::vector<net::Endpoint> upstreams;
    std::uint16_t port = 53;
  };

  /// Binds UDP and TCP on the responder's addresses (they must be on the interface already)
  /// and serves `roster`'s names. Errors name the address ("cannot serve DNS on
  /// 100.64.0.1:53 (UDP): bind: Address already in use") or the bad domain. `random` and
  /// `clock` must outlive it.
  [[nodiscard]] static Result<std::unique_ptr<MeshNames>> start(runtime::DnsWatcher watcher,
                                                                Options options,
                                                                const mesh::Roster& roster,
                                                                RandomSource& random,
                                                                const platform::Clock& clock);

  /// The roster changed: its names from now on (an error only for a bad domain, which start
  /// refused already).
  [[nodiscard]] Status update(const mesh::Roster& roster);
  void tick() { service_->tick(); }
  const runtime::DnsService& service() const { return *service_; }

 private:
  MeshNames(std::string domain, std::unique_ptr<runtime::DnsService> s)
      : domain_(std::move(domain)), service_(std::move(s)) {}
  std::string domain_;
  std::unique_ptr<runtime::DnsService> service_;
};

}  // namespace warren::client
