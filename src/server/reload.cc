// Live reload: what a new config changes on a running server (see reload.h).

#include "server/reload.h"

#include <functional>

namespace warren::server {
namespace {

template <typename T, typename F>
std::string join(const std::vector<T>& v, F text) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    out += (i ? ", " : "") + text(v[i]);
  return out + "]";
}

std::string addresses(const std::vector<net::IpAddress>& v) {
  return join(v, [](const net::IpAddress& a) { return a.to_string(); });
}

std::string prefixes(const std::vector<net::Prefix>& v) {
  return join(v, [](const net::Prefix& p) { return p.to_string(); });
}

std::string network(const std::optional<TunnelNetwork>& t) {
  return t ? t->interface_address().to_string() : "(none)";
}

std::string optional_text(const std::optional<std::string>& s) {
  return s ? *s : "(none)";
}

std::string list_text(const std::vector<std::string>& v) {
  if (v.empty())
    return "(none)";
  std::string out;
  for (const auto& s : v)
    out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool same_network(const std::optional<TunnelNetwork>& a, const std::optional<TunnelNetwork>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return !a || (a->prefix == b->prefix && a->server_address == b->server_address);
}

}  // namespace

ReloadPlan plan_reload(const ServerConfig& running, const ServerConfig& loaded) {
  ReloadPlan plan;
  plan.next = loaded;
  ServerConfig& next = plan.next;
  auto applied = [&](const std::string& key, const std::string& from, const std::string& to) {
    plan.applied.push_back(key + ": " + from + " -> " + to);
  };
  // A value that cannot change live: reported, and the running one stays in `next`.
  auto keep = [&](const std::string& key, const std::string& from, const std::string& to,
                  const std::function<void()>& restore) {
    plan.kept.push_back(key + ": " + from + " -> " + to + " needs a restart; still " + from);
    restore();
  };

  // ---- kept ----
  if (loaded.interface != running.interface)
    keep("interface.name", running.interface, loaded.interface,
         [&] { next.interface = running.interface; });
  if (loaded.listen_port != running.listen_port)
    keep("interface.listen_port", std::to_string(running.listen_port),
         std::to_string(loaded.listen_port), [&] { next.listen_port = running.listen_port; });
  if (loaded.private_key_file != running.private_key_file)
    keep("interface.private_key_file", running.private_key_file, loaded.private_key_file,
         [&] { next.private_key_file = running.private_key_file; });
  if (!same_network(loaded.ipv4, running.ipv4))
    keep("interface.address_v4", network(running.ipv4), network(loaded.ipv4),
         [&] { next.ipv4 = running.ipv4; });
  if (!same_network(loaded.ipv6, running.ipv6))
    keep("interface.address_v6", network(running.ipv6), network(loaded.ipv6),
         [&] { next.ipv6 = running.ipv6; });
  if (loaded.control_listen != running.control_listen)
    keep("enrollment.listen", list_text(running.control_listen), list_text(loaded.control_listen),
         [&] { next.control_listen = running.control_listen; });
  // Mesh mode and its address plan: the running roster and every node's addresses follow
  // from them (docs/MESH.md); changing them live would move every node.
  auto mesh_text = [](const ServerConfig& c) {
    return c.mesh ? c.mesh_plan.v4_prefix().to_string() + " " +
                        c.mesh_plan.v6_prefix().to_string() + " " + c.mesh_domain
                  : std::string("(no [mesh])");
  };
  if (mesh_text(loaded) != mesh_text(running))
    keep("mesh (prefix_v4, prefix_v6, domain)", mesh_text(running), mesh_text(loaded), [&] {
      next.mesh = running.mesh;
      next.mesh_plan = running.mesh_plan;
      next.mesh_domain = running.mesh_domain;
    });
  // The QUIC listener is bound at start (and its absence means no transport was added to the
  // engine), so [quic] waits for a restart like the other listen addresses.
  if (loaded.quic_listen != running.quic_listen) {
    auto text = [](const ServerConfig& c) {
      return c.quic() ? list_text(c.quic_listen) : std::string("(no [quic])");
    };
    keep("quic.listen", text(running), text(loaded),
         [&] { next.quic_listen = running.quic_listen; });
  }
  if (loaded.database != running.database)
    keep("storage.database", running.database, loaded.database,
         [&] { next.database = running.database; });

  // Reservations were checked against the loaded prefixes; with a kept (running) prefix they may
  // lie outside it: such a reservation is left out of `next` and reported, the rest applies.
  for (auto it = next.reservations.begin(); it != next.reservations.end();) {
    bool fits = true;
    for (const auto& a : it->second) {
      const auto& tn = a.is_v4() ? next.ipv4 : next.ipv6;
      fits = fits && tn && tn->prefix.contains(a) && a != tn->server_address;
    }
    if (fits) {
      ++it;
      continue;
    }
    plan.kept.push_back("pool.reservations." + it->first + ": " + addresses(it->second) +
                        " is outside the running prefixes; ignored until a restart");
    it = next.reservations.erase(it);
  }

  // ---- live ----
  for (const auto& [name, addrs] : next.reservations) {
    auto old = running.reservations.find(name);
    if (old == running.reservations.end())
      applied("pool.reservations." + name, "(none)", addresses(addrs));
    else if (old->second != addrs)
      applied("pool.reservations." + name, addresses(old->second),
              addresses(addrs) + " (an enrolled client moves when it re-joins)");
  }
  for (const auto& [name, addrs] : running.reservations)
    if (!next.reservations.count(name))
      applied("pool.reservations." + name, addresses(addrs), "(none)");
  if (next.strategy != running.strategy)
    applied("pool.strategy", strategy_name(running.strategy), strategy_name(next.strategy));
  if (next.lease_idle_time != running.lease_idle_time)
    applied("pool.lease_idle_time", std::to_string(running.lease_idle_time.count()) + "s",
            std::to_string(next.lease_idle_time.count()) + "s");
  if (next.address_quarantine != running.address_quarantine)
    applied("pool.quarantine", std::to_string(running.address_quarantine.count()) + "s",
            std::to_string(next.address_quarantine.count()) + "s");
  plan.pool_changed = next.reservations != running.reservations ||
                      next.strategy != running.strategy ||
                      next.lease_idle_time != running.lease_idle_time ||
                      next.address_quarantine != running.address_quarantine;

  const std::size_t before_clients = plan.applied.size();
  if (next.routes != running.routes)
    applied("clients.routes", prefixes(running.routes), prefixes(next.routes));
  if (next.dns != running.dns)
    applied("clients.dns", addresses(running.dns), addresses(next.dns));
  if (next.persistent_keepalive != running.persistent_keepalive)
    applied("clients.persistent_keepalive", std::to_string(running.persistent_keepalive),
            std::to_string(next.persistent_keepalive));
  if (next.mtu != running.mtu) {
    applied("interface.mtu", std::to_string(running.mtu), std::to_string(next.mtu));
    plan.mtu_changed = true;
  }
  if (next.public_endpoint != running.public_endpoint)
    applied("enrollment.public_endpoint", running.public_endpoint, next.public_endpoint);
  plan.clients_changed = plan.applied.size() != before_clients;
  if (next.control_endpoint != running.control_endpoint)
    applied("enrollment.control_endpoint", running.control_endpoint,
            next.control_endpoint + " (in new invites)");

  if (next.client_to_client != running.client_to_client) {
    applied("clients.client_to_client", running.client_to_client ? "true" : "false",
            next.client_to_client ? "true" : "false");
    plan.isolation_changed = true;
    plan.host_changed = true;  // IPv6 forwarding follows it
  }
  if (next.nat != running.nat) {
    applied("nat", running.nat ? "on" : "off", next.nat ? "on" : "off");
    plan.host_changed = true;
  }
  if (next.nat_ipv6 != running.nat_ipv6) {
    auto name = [](Ipv6Egress e) { return e == Ipv6Egress::kRouted ? "routed" : "masquerade"; };
    applied("nat.ipv6", name(running.nat_ipv6), name(next.nat_ipv6));
    plan.host_changed = true;
  }
  if (next.nat_interface != running.nat_interface) {
    applied("nat.out_interface", optional_text(running.nat_interface),
            optional_text(next.nat_interface));
    plan.host_changed = true;
  }
  if (next.metrics_listen != running.metrics_listen ||
      next.metrics_allow_remote != running.metrics_allow_remote) {
    applied("metrics.listen", list_text(running.metrics_listen),
            list_text(next.metrics_listen) +
                (next.metrics_allow_remote ? " (allow_remote)" : ""));
    plan.metrics_changed = true;
  }
  if (next.log_level != running.log_level) {
    applied("log.level", optional_text(running.log_level), optional_text(next.log_level));
    plan.log_changed = true;
  }
  return plan;
}

std::vector<std::string> describe(const ReloadPlan& plan) {
  std::vector<std::string> out;
  for (const auto& a : plan.applied)
    out.push_back("applied: " + a);
  for (const auto& k : plan.kept)
    out.push_back("not applied: " + k);
  if (out.empty())
    out.push_back("no changes");
  return out;
}

}  // namespace warren::server
