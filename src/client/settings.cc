// A pushed settings message against the running config (see settings.h).

#include "client/settings.h"

#include "net/host_port.h"

namespace warren::client {
namespace {

template <typename T>
std::string list(const std::vector<T>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + v[i].to_string();
  return out + "]";
}

}  // namespace

std::optional<SettingsChange> settings_change(const ClientConfig& current,
                                              const control::Enrollment& pushed) {
  SettingsChange c;
  c.next = current;
  PeerConfig* peer = nullptr;
  for (auto& p : c.next.peers)
    if (p.public_key == pushed.server_public_key)
      peer = &p;
  if (!peer)
    return std::nullopt;
  // As join writes it: no routes means at least the tunnel itself.
  std::vector<net::Prefix> routes = pushed.routes.empty() ? pushed.addresses : pushed.routes;
  if (routes != peer->allowed_ips) {
    c.changes.push_back("routes: " + list(peer->allowed_ips) + " -> " + list(routes));
    peer->allowed_ips = routes;
    c.host = c.peer = true;
  }
  if (pushed.persistent_keepalive != peer->persistent_keepalive) {
    c.changes.push_back("persistent_keepalive: " + std::to_string(peer->persistent_keepalive) +
                        " -> " + std::to_string(pushed.persistent_keepalive));
    peer->persistent_keepalive = pushed.persistent_keepalive;
    c.peer = true;
  }
  if (pushed.dns != current.dns_servers) {
    c.changes.push_back("dns: " + list(current.dns_servers) + " -> " + list(pushed.dns));
    c.next.dns_servers = pushed.dns;
    c.host = true;
  }
  if (pushed.mtu != 0 && c.next.mtu != pushed.mtu) {
    c.changes.push_back("mtu: " + (current.mtu ? std::to_string(*current.mtu) : "default") +
                        " -> " + std::to_string(pushed.mtu));
    c.next.mtu = pushed.mtu;
    c.host = true;
  }
  // QUIC (issue 15): the endpoint follows the server's offer. Offered anew: Transport = auto
  // unless the file names a mode; withdrawn: both lines go (quic without an endpoint would be
  // an invalid config, and there is nothing to fall back to). The MTU cap follows may_use_quic.
  std::optional<HostPort> quic;
  if (pushed.quic)
    if (auto hp = parse_host_port(pushed.quic->endpoint); hp && hp->port != 0)
      quic = *hp;
  if (pushed.quic && !quic)
    c.ignored.push_back("quic endpoint '" + net::printable(pushed.quic->endpoint) +
                        "' (not host:port)");
  else if (quic != current.quic_endpoint) {
    c.changes.push_back(
        "quic endpoint: " + (current.quic_endpoint ? current.quic_endpoint->to_string() : "none") +
        " -> " + (quic ? quic->to_string() : "none"));
    c.next.quic_endpoint = quic;
    if (!quic)
      c.next.transport.reset();
    else if (!current.quic_endpoint && !c.next.transport)
      c.next.transport = Transport::kAuto;
    c.transport = true;
    if (may_use_quic(c.next) != may_use_quic(current))
      c.host = true;  // the interface MTU's cap (plan.h, tunnel_mtu)
  }
  if (pushed.addresses != current.addresses)
    c.ignored.push_back("addresses " + list(pushed.addresses) + " (yours: " +
                        list(current.addresses) + "; they change with a re-join)");
  if (c.changes.empty())
    return std::nullopt;
  return c;
}

}  // namespace warren::client
