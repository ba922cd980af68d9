#include "server/registry.h"

#include <algorithm>

#include "mesh/roster.h"
#include "net/host_port.h"

namespace warren::server {
namespace {

std::set<net::IpAddress> reserved_of(const ServerConfig& c, net::Family f) {
  std::set<net::IpAddress> out;
  for (const auto& [name, addrs] : c.reservations)
    for (const auto& a : addrs)
      if (a.family() == f)
        out.insert(a);
  return out;
}

std::optional<net::IpAddress> reservation(const ServerConfig& c, const std::string& name,
                                          net::Family f) {
  auto it = c.reservations.find(name);
  if (it == c.reservations.end())
    return std::nullopt;
  for (const auto& a : it->second)
    if (a.family() == f)
      return a;
  return std::nullopt;
}

net::Prefix host_prefix(const net::IpAddress& a) {
  return net::Prefix{a, static_cast<std::uint8_t>(a.is_v4() ? 32 : 128)};
}

}  // namespace

std::string_view client_state(const ClientRecord& c) {
  if (c.revoked())
    return "revoked";
  if (c.disabled())
    return "disabled";
  if (c.leases.empty())
    return "released";
  return "active";
}

Registry::Registry(const ServerConfig& config, LeaseStore& store,
                   const crypto::PublicKey& server_key)
    : config_(config), store_(store), server_key_(server_key) {
  if (config.ipv4)
    pool_v4_.emplace(*config.ipv4, reserved_of(config, net::Family::kV4));
  if (config.ipv6)
    pool_v6_.emplace(*config.ipv6, reserved_of(config, net::Family::kV6));
}

std::string Registry::create_invite(std::string_view name, std::chrono::seconds expires, int uses,
                                    const control::Fingerprint& fingerprint, std::int64_t now) {
  if (!valid_client_name(name))
    throw RegistryError("invalid_request",
                        "'" + std::string(name) +
                            "' is not a client name (1-32 of A-Z a-z 0-9 . - _, not starting "
                            "with - or .)");
  if (uses < 1)
    throw RegistryError("invalid_request", "--uses must be at least 1");
  if (config_.strategy == PoolStrategy::kStatic && uses == 1 &&
      !config_.reservations.count(std::string(name)))
    throw RegistryError("no_reservation", "pool strategy is static and '" + std::string(name) +
                                              "' has no reservation in [pool.reservations]");
  control::Invite inv;
  inv.control_endpoint = config_.control_endpoint;
  inv.fingerprint = fingerprint;
  inv.id = control::random_invite_id();
  inv.secret = control::random_invite_secret();
  InviteRecord rec;
  rec.id = inv.id;
  rec.name = std::string(name);
  rec.secret_hash = control::sha256(inv.secret.span());
  rec.created_at = now;
  rec.expires_at = expires.count() == 0 ? 0 : now + expires.count();
  rec.max_uses = uses;
  rec.uses_left = uses;
  store_.transaction([&](StoreTxn& t) { t.put_invite(rec); });
  return control::format_invite(inv);
}

std::vector<Lease> Registry::allocate(StoreTxn& txn, const std::string& name,
                                      const std::vector<Lease>& current, std::int64_t now) const {
  std::vector<Lease> out;
  std::set<net::IpAddress> used = txn.leased_addresses();
  for (const Lease& l : current)
    used.erase(l.address);  // ours may be kept
  // Freed addresses still in quarantine are nobody's to take but their former holder's; the
  // holder gets its own back first. Expired quarantines end here.
  std::vector<net::IpAddress> own_quarantined;
  for (const Quarantined& q : txn.quarantined()) {
    if (now - q.freed_at >= config_.address_quarantine.count()) {
      txn.end_quarantine(q.address);
    } else if (q.client_name == name) {
      if (!used.count(q.address))
        own_quarantined.push_back(q.address);
    } else {
      used.insert(q.address);
    }
  }
  bool any_reservation = config_.reservations.count(name) != 0;
  for (const std::optional<AddressPool>* pool : {&pool_v4_, &pool_v6_}) {
    if (!*pool)
      continue;
    const AddressPool& p = **pool;
    const net::Family f = p.network().prefix.address.family();
    auto res = reservation(config_, name, f);
    if (res) {
      if (used.count(*res))
        throw RegistryError("pool_exhausted", "the address reserved for '" + name + "' (" +
                                                  res->to_string() +
                                                  ") is leased to another client");
      out.push_back(Lease{*res, false});
      continue;
    }
    if (config_.strategy == PoolStrategy::kStatic)
      continue;
    // Keep a current dynamic lease that is still valid under this configuration.
    auto keep = std::find_if(current.begin(), current.end(), [&](const Lease& l) {
      return l.address.family() == f && p.assignable(l.address) && !p.reserved(l.address);
    });
    if (keep != current.end()) {
      out.push_back(Lease{keep->address, true});
      continue;
    }
    auto own = std::find_if(own_quarantined.begin(), own_quarantined.end(),
                            [&](const net::IpAddress& a) {
                              return a.family() == f && p.assignable(a) && !p.reserved(a);
                            });
    auto a = own != own_quarantined.end() ? std::optional<net::IpAddress>(*own) : p.pick(used);
    if (!a)
      throw RegistryError("pool_exhausted", std::string("the ") +
                                                (f == net::Family::kV4 ? "IPv4" : "IPv6") +
                                                " address pool " + p.network().prefix.to_string() +
                                                " is exhausted; ask the operator to free or "
                                                "enlarge it");
    used.insert(*a);
    txn.end_quarantine(*a);
    out.push_back(Lease{*a, true});
  }
  if (config_.strategy == PoolStrategy::kStatic && !any_reservation)
    throw RegistryError("no_reservation",
                        "pool strategy is static and '" + name + "' has no reservation");
  return out;
}

InviteRecord Registry::check_invite(StoreTxn& t, const control::EnrollRequest& req) const {
  auto inv = t.find_invite(req.invite_id);
  const auto hash = control::sha256(req.secret.span());
  // Compare even for an unknown id, so both cases take the same time.
  const std::array<std::uint8_t, 32> zero{};
  const bool secret_ok = constant_time_equal(hash, inv ? inv->secret_hash : zero) && inv;
  if (!secret_ok)
    throw RegistryError("invite_invalid",
                        "the invite is not valid (unknown, or its secret does not match)");
  return *inv;
}

std::optional<ClientRecord> Registry::check_rejoin(StoreTxn& t, const control::EnrollRequest& req,
                                                   const InviteRecord& inv) const {
  auto known = t.find_client_by_key(req.public_key);
  if (!known || known->invite_id != inv.id)
    return std::nullopt;  // not a re-join: a new enrollment through `inv`, checked as such
  // The key this invite enrolled joins again. Expired and used up do not matter: the invite
  // was good when it enrolled the key, and the re-join uses nothing up. A revoked invite
  // enrolls nobody, its own clients included (they keep their tunnels, but cannot fetch their
  // configuration again, nor get a released lease back).
  if (known->revoked())
    throw RegistryError("revoked", "this key was revoked by the operator");
  if (known->disabled())
    throw RegistryError("disabled",
                        "this client is disabled by the operator (`warren server enable` on the "
                        "server lets it join again)");
  if (inv.revoked())
    throw RegistryError("invite_revoked", "the invite was revoked by the operator");
  return known;
}

void Registry::check_new_enrollment(StoreTxn& t, const control::EnrollRequest& req,
                                    const InviteRecord& inv, std::int64_t now) const {
  if (inv.revoked())
    throw RegistryError("invite_revoked", "the invite was revoked by the operator");
  if (inv.expires_at != 0 && now >= inv.expires_at)
    throw RegistryError("invite_expired", "the invite has expired; ask for a new one");
  if (inv.uses_left <= 0)
    throw RegistryError("invite_used_up", "the invite has been used up; ask for a new one");
  // Only now, with an invite that could enroll a new key, may the answer differ for a known
  // key, and it says no more than `wg show` does: the key is enrolled. Not by whom, not with
  // which addresses, not whether it was revoked. (An old invite gets the same answer as for
  // any key, above.)
  if (t.find_client_by_key(req.public_key))
    throw RegistryError("key_in_use",
                        "this public key is already enrolled through another invite; join with a "
                        "new key pair to use this invite");
}

std::vector<Lease> Registry::mesh_leases(const crypto::PublicKey& key,
                                         std::uint32_t index) const {
  const std::string identity = key.to_base64();
  return {Lease{config_.mesh_plan.v4(identity, index), false},
          Lease{config_.mesh_plan.v6(identity), false}};
}

bool Registry::mesh_leases_settled(const ClientRecord& c) const {
  return c.leases == mesh_leases(c.public_key, c.mesh_v4_index);
}

std::vector<Lease> Registry::allocate_mesh(StoreTxn& txn, const crypto::PublicKey& key,
                                           const std::vector<Lease>& current,
                                           std::uint32_t& index) const {
  // Its own recorded addresses are kept while the key is the same (a re-join).
  std::set<net::IpAddress> taken = txn.leased_addresses();
  for (const Lease& l : current)
    taken.erase(l.address);
  for (const auto& net : {config_.ipv4, config_.ipv6})
    if (net)
      taken.insert(net->server_address);
  taken.insert(config_.mesh_plan.dns_v4());
  taken.insert(config_.mesh_plan.dns_v6());
  // A client that holds its derived addresses keeps them and their index, even if a lower
  // index has become free since: the address never changes while the key does not.
  if (current == mesh_leases(key, index) && !taken.count(current.front().address))
    return current;
  const std::string identity = key.to_base64();
  auto a = config_.mesh_plan.assign_v4(
      identity, [&](const net::IpAddress& addr) { return taken.count(addr) != 0; },
      mesh::kMaxV4Index);
  if (!a.ok())
    throw RegistryError("pool_exhausted",
                        "no free mesh IPv4 address for this key in " +
                            config_.mesh_plan.v4_prefix().to_string() + " (" + a.message() +
                            "); the operator needs a larger mesh.prefix_v4");
  index = a->index;
  return mesh_leases(key, index);
}

bool Registry::leases_settled(const ClientRecord& c) const {
  // What allocate() would keep, computed without touching the store: reservations, and a
  // current dynamic lease per family that is still valid under this configuration.
  std::vector<Lease> want;
  for (const std::optional<AddressPool>* pool : {&pool_v4_, &pool_v6_}) {
    if (!*pool)
      continue;
    const AddressPool& p = **pool;
    const net::Family f = p.network().prefix.address.family();
    if (auto res = reservation(config_, c.name, f)) {
      want.push_back(Lease{*res, false});
      continue;
    }
    if (config_.strategy == PoolStrategy::kStatic)
      continue;
    auto keep = std::find_if(c.leases.begin(), c.leases.end(), [&](const Lease& l) {
      return l.address.family() == f && p.assignable(l.address) && !p.reserved(l.address);
    });
    if (keep == c.leases.end())
      return false;
    want.push_back(Lease{keep->address, true});
  }
  if (config_.strategy == PoolStrategy::kStatic && !config_.reservations.count(c.name))
    return false;  // allocate() has the error to give
  return want.size() == c.leases.size() &&
         std::is_permutation(want.begin(), want.end(), c.leases.begin());
}

control::EnrollReply Registry::enroll(const control::EnrollRequest& req, std::int64_t now) {
  ClientRecord result;
  try {
    // The common re-join changes nothing: answer it from a read-only snapshot, without the
    // write lock, a commit or an fsync; a request its invite refuses ends there too.
    // Everything else (and a re-join whose leases must change) goes through the write
    // transaction below, which checks everything again.
    bool answered = false;
    store_.read([&](StoreTxn& t) {
      const InviteRecord inv = check_invite(t, req);
      auto known = check_rejoin(t, req, inv);
      if (!known)
        check_new_enrollment(t, req, inv, now);  // refusals need no write lock either
      if (known && (config_.mesh ? mesh_leases_settled(*known) : leases_settled(*known))) {
        result = *known;
        answered = true;
      }
    });
    if (answered)
      return control::EnrollReply{enrollment_for(result), {}, {}};
    store_.transaction([&](StoreTxn& t) {
      InviteRecord inv = check_invite(t, req);
      if (auto known = check_rejoin(t, req, inv)) {
        // Joining again: same record, same addresses (a fresh lease if its dynamic one was
        // released), the invite is not used up again.
        std::uint32_t index = known->mesh_v4_index;
        std::vector<Lease> leases =
            config_.mesh ? allocate_mesh(t, known->public_key, known->leases, index)
                         : allocate(t, known->name, known->leases, now);
        if (leases != known->leases || index != known->mesh_v4_index) {
          known->leases = std::move(leases);
          known->mesh_v4_index = index;
          t.put_client(*known);
        }
        result = *known;
        return;
      }
      check_new_enrollment(t, req, inv, now);
      std::string name = inv.name;
      if (inv.max_uses > 1) {
        if (req.name.empty())
          throw RegistryError("invalid_request",
                              "this invite is for several clients: each must send its own name");
        name += "-" + req.name;
      }
      if (!valid_client_name(name))
        throw RegistryError("invalid_request", "'" + name + "' is not a valid client name");
      ClientRecord c;
      if (auto existing = t.find_client_by_name(name)) {
        if (!existing->revoked())
          throw RegistryError("name_taken",
                              "a client named '" + name + "' is already enrolled with another key");
        // A revoked name comes back only through an invite the operator issued for exactly
        // this name after the revocation; a group invite or an older one cannot revive it.
        const bool invited_again = inv.max_uses == 1 && inv.name == name &&
                                   inv.created_at >= existing->revoked_at &&
                                   inv.id != existing->invite_id;
        if (!invited_again)
          throw RegistryError("revoked", "the name '" + name +
                                             "' was revoked by the operator; only a new invite "
                                             "for it can enroll it again");
        c = *existing;  // a revoked name invited again: a new key, a fresh record
      }
      c.name = name;
      c.public_key = req.public_key;
      c.invite_id = inv.id;
      c.enrolled_at = now;
      c.last_seen = 0;
      c.revoked_at = 0;
      c.disabled_at = 0;
      c.mesh_v4_index = 0;
      if (config_.mesh)  // a revoked name's old addresses (`c.leases`) may be reused
        c.leases = allocate_mesh(t, c.public_key, c.leases, c.mesh_v4_index);
      else
        c.leases = allocate(t, name, {}, now);
      t.put_client(c);
      inv.uses_left -= 1;
      t.put_invite(inv);
      result = c;
    });
  } catch (const RegistryError& e) {
    return control::EnrollReply::failure(e.code(), e.what());
  } catch (const StoreError& e) {
    return control::EnrollReply::failure("storage_error",
                                         std::string("the server could not store the "
                                                     "enrollment (nothing was changed): ") +
                                             e.what());
  } catch (const std::exception& e) {
    return control::EnrollReply::failure("internal", e.what());
  }
  return control::EnrollReply{enrollment_for(result), {}, {}};
}

ClientRecord Registry::revoke(std::string_view name, std::int64_t now) {
  ClientRecord before;
  store_.transaction([&](StoreTxn& t) {
    auto c = t.find_client_by_name(name);
    if (!c)
      throw RegistryError("unknown_client", "no client named '" + std::string(name) + "'");
    if (c->revoked())
      throw RegistryError("already_revoked", "'" + std::string(name) + "' is already revoked");
    before = *c;
    c->revoked_at = now;
    // A mesh node's addresses stay recorded: its revoked entry keeps them in the roster, and
    // a new node must not get them while peers may still hold the old one's.
    if (!config_.mesh)
      c->leases.clear();
    t.put_client(*c);
    quarantine_freed(t, c->name, before.leases, c->leases, now);
  });
  return before;
}

ClientRecord Registry::disable(std::string_view name, std::int64_t now) {
  ClientRecord out;
  store_.transaction([&](StoreTxn& t) {
    auto c = t.find_client_by_name(name);
    if (!c)
      throw RegistryError("unknown_client", "no client named '" + std::string(name) + "'");
    if (c->revoked())
      throw RegistryError("revoked", "'" + std::string(name) + "' is revoked");
    if (c->disabled())
      throw RegistryError("already_disabled", "'" + std::string(name) + "' is already disabled");
    c->disabled_at = now;
    t.put_client(*c);
    out = *c;
  });
  return out;
}

ClientRecord Registry::enable(std::string_view name) {
  ClientRecord out;
  store_.transaction([&](StoreTxn& t) {
    auto c = t.find_client_by_name(name);
    if (!c)
      throw RegistryError("unknown_client", "no client named '" + std::string(name) + "'");
    if (c->revoked())
      throw RegistryError("revoked", "'" + std::string(name) +
                                         "' is revoked; only a new invite for it enrolls it again");
    if (!c->disabled())
      throw RegistryError("not_disabled", "'" + std::string(name) + "' is not disabled");
    c->disabled_at = 0;
    t.put_client(*c);
    out = *c;
  });
  return out;
}

void Registry::quarantine_freed(StoreTxn& txn, const std::string& name,
                                const std::vector<Lease>& before, const std::vector<Lease>& after,
                                std::int64_t now) const {
  if (config_.address_quarantine.count() == 0)
    return;
  for (const Lease& l : before) {
    // A reservation goes only to its owner anyway: nothing to keep others from.
    if (!l.dynamic || std::find(after.begin(), after.end(), l) != after.end())
      continue;
    txn.put_quarantine(Quarantined{l.address, name, now});
  }
}

std::vector<InviteRecord> Registry::invites() {
  std::vector<InviteRecord> out;
  store_.transaction([&](StoreTxn& t) { out = t.invites(); });
  return out;
}

InviteRecord Registry::revoke_invite(std::string_view id, std::int64_t now) {
  InviteRecord out;
  store_.transaction([&](StoreTxn& t) {
    auto inv = t.find_invite(id);
    if (!inv)
      throw RegistryError("unknown_invite", "no invite with id '" + std::string(id) + "'");
    if (inv->revoked())
      throw RegistryError("already_revoked", "invite '" + std::string(id) + "' is already revoked");
    inv->revoked_at = now;
    t.put_invite(*inv);
    out = *inv;
  });
  return out;
}

Registry::Exported Registry::export_client(std::string_view name, std::int64_t now,
                                           RandomSource& rng) {
  if (!valid_client_name(name))
    throw RegistryError("invalid_request", "'" + std::string(name) + "' is not a client name");
  Exported out;
  out.private_key = crypto::generate_private_key(rng);
  const crypto::PublicKey pub = crypto::derive_public_key(out.private_key);
  try {
    store_.transaction([&](StoreTxn& t) {
      ClientRecord c;
      if (auto existing = t.find_client_by_name(name)) {
        c = *existing;
      } else {
        c.name = std::string(name);
      }
      c.public_key = pub;
      c.invite_id.clear();  // this key was made here, not enrolled by an invite: no re-join
      c.enrolled_at = now;
      c.revoked_at = 0;
      if (config_.mesh) {
        c.mesh_v4_index = 0;  // a new key: new derived addresses (the old ones are free)
        c.leases = allocate_mesh(t, c.public_key, c.leases, c.mesh_v4_index);
      } else {
        c.leases = allocate(t, c.name, c.leases, now);
      }
      t.put_client(c);
      out.client = c;
    });
  } catch (const StoreError& e) {
    throw RegistryError("storage_error", e.what());
  }
  return out;
}

std::vector<std::string> Registry::release_idle(std::int64_t now) {
  std::vector<std::string> released;
  const std::int64_t idle = config_.lease_idle_time.count();
  if (idle == 0)
    return released;
  store_.transaction([&](StoreTxn& t) {
    for (ClientRecord c : t.clients()) {
      if (c.revoked() || c.disabled())
        continue;  // a disabled client keeps its lease: that is what disabling promises
      const std::int64_t seen = std::max(c.last_seen, c.enrolled_at);
      if (now - seen < idle)
        continue;
      const std::vector<Lease> before = c.leases;
      std::erase_if(c.leases, [](const Lease& l) { return l.dynamic; });
      if (c.leases.size() == before.size())
        continue;
      t.put_client(c);
      quarantine_freed(t, c.name, before, c.leases, now);
      released.push_back(c.name);
    }
  });
  return released;
}

control::Enrollment Registry::enrollment_for(const ClientRecord& c) const {
  control::Enrollment e;
  e.name = c.name;
  for (const Lease& l : c.leases)
    e.addresses.push_back(host_prefix(l.address));
  e.server_public_key = server_key_;
  e.server_endpoint = config_.public_endpoint;
  e.routes = config_.routes;
  e.dns = config_.dns;
  e.mtu = config_.mtu;
  e.persistent_keepalive = config_.persistent_keepalive;
  if (config_.mesh) {
    control::MeshSettings m;
    m.prefix_v4 = config_.mesh_plan.v4_prefix();
    m.prefix_v6 = config_.mesh_plan.v6_prefix();
    m.domain = config_.mesh_domain;
    m.v4_index = c.mesh_v4_index;
    // STUN and relay are on the host the invite names for the control channel.
    if (auto control = net::split_host_port(config_.control_endpoint)) {
      for (const auto& port : {config_.stun_port, config_.stun_alternate_port})
        if (port)
          m.stun.push_back(net::HostPort{control->host, *port}.to_string());
      if (config_.relay_port != 0)
        m.relay = net::HostPort{control->host, config_.relay_port}.to_string();
    }
    e.mesh = std::move(m);
  }
  // QUIC (issue 15): the WireGuard endpoint's host with the first QUIC listen port. The config
  // parser checked both, so neither split fails for a loaded config.
  if (config_.quic()) {
    auto pub = net::split_host_port(config_.public_endpoint);
    auto listen = net::split_host_port(config_.quic_listen.front());
    if (pub && listen)
      e.quic = control::QuicSettings{net::HostPort{pub->host, listen->port}.to_string()};
  }
  return e;
}

std::string Registry::wg_quick_config(const ClientRecord& c, const crypto::PrivateKey& key) const {
  control::Enrollment e = enrollment_for(c);
  auto join = [](const auto& v) {
    std::string s;
    for (const auto& x : v)
      s += (s.empty() ? "" : ", ") + x.to_string();
    return s;
  };
  std::string out = "# warren client '" + c.name + "' (warren server export)\n[Interface]\n";
  out += "PrivateKey = " + crypto::secret_to_base64(key) + "\n";
  out += "Address = " + join(e.addresses) + "\n";
  if (!e.dns.empty())
    out += "DNS = " + join(e.dns) + "\n";
  out += "MTU = " + std::to_string(e.mtu) + "\n\n[Peer]\n";
  out += "PublicKey = " + e.server_public_key.to_base64() + "\n";
  out += "Endpoint = " + e.server_endpoint + "\n";
  out += "AllowedIPs = " + join(e.routes) + "\n";
  if (e.persistent_keepalive)
    out += "PersistentKeepalive = " + std::to_string(e.persistent_keepalive) + "\n";
  return out;
}

std::optional<control::PoolUsage> Registry::usage(net::Family f,
                                                  const std::set<net::IpAddress>& leased) const {
  const auto& pool = f == net::Family::kV4 ? pool_v4_ : pool_v6_;
  if (!pool)
    return std::nullopt;
  control::PoolUsage u;
  u.total = pool->total();
  for (const auto& a : leased)
    if (pool->assignable(a))
      ++u.used;
  return u;
}

}  // namespace warren::server
