#include "client/mesh_node.h"

#include <algorithm>
#include <cerrno>

namespace warren::client {
namespace {

// Link-local (169.254/16, fe80::/10) and multicast (224/4, ff00::/8): no use to a peer.
bool link_local_or_multicast(const net::IpAddress& a) {
  const std::uint8_t* b = a.data();
  if (a.is_v4())
    return (b[0] == 169 && b[1] == 254) || (b[0] & 0xf0) == 224;
  return (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff;
}

std::string short_key(const crypto::PublicKey& k) {
  return k.to_base64().substr(0, 8);
}

}  // namespace

std::vector<net::Endpoint> local_candidates(const std::vector<platform::LinkAddress>& addresses,
                                            std::uint32_t mesh_ifindex, std::uint16_t port,
                                            const mesh::AddressPlan& plan) {
  std::vector<net::Endpoint> out;
  if (port == 0)
    return out;
  for (bool v4 : {true, false})
    for (const auto& a : addresses) {
      const net::IpAddress ip = a.address.address.unmapped();
      if (ip.is_v4() != v4 || a.ifindex == mesh_ifindex || ip.is_unspecified() ||
          ip.is_loopback() || link_local_or_multicast(ip) || plan.v4_prefix().contains(ip) ||
          plan.v6_prefix().contains(ip))
        continue;
      const net::Endpoint ep{ip, port};
      if (std::find(out.begin(), out.end(), ep) != out.end())
        continue;
      if (out.size() == mesh::kMaxLocalEndpoints)
        return out;
      out.push_back(ep);
    }
  return out;
}

std::optional<wg::PeerDelta> MeshNode::peer_for(const mesh::NodeEntry& e) const {
  if (e.key == self_ || e.key == coordinator_ || e.state != mesh::NodeState::kActive)
    return std::nullopt;
  wg::PeerDelta pd;
  pd.public_key = e.key;
  pd.replace_allowed_ips = true;
  const std::uint8_t v6_len = 128;
  pd.allowed_ips_add = {net::Prefix{e.v4, 32}, net::Prefix{e.v6, v6_len}};
  // Behind the same NAT as this node (the same reflexive address): its local address, as
  // hairpinning through the shared router is rare.
  const mesh::NodeEntry* me = roster_.find(self_);
  const bool same_nat = e.reflexive && me && me->reflexive &&
                        me->reflexive->address == e.reflexive->address;
  if (e.reflexive && !(same_nat && !e.local_endpoints.empty()))
    pd.endpoint = *e.reflexive;
  else if (!e.local_endpoints.empty())
    pd.endpoint = e.local_endpoints.front();
  // Keepalive only with an endpoint: the engine sends its first keepalive (a handshake) when
  // persistent keepalive is switched on for a peer that has one. A peer added without an
  // endpoint and given one later would otherwise wait for traffic (or the other side) before
  // its first initiation, and across two NATs that lone initiation from the other side is
  // dropped by this node's router: no simultaneous open.
  pd.persistent_keepalive = pd.endpoint ? kMeshKeepalive : 0;
  return pd;
}

std::vector<net::Endpoint> MeshNode::candidates(const crypto::PublicKey& key) const {
  std::vector<net::Endpoint> out;
  const mesh::NodeEntry* e = roster_.find(key);
  if (!e)
    return out;
  auto pd = peer_for(*e);
  if (!pd)
    return out;
  auto add = [&](const net::Endpoint& ep) {
    if (std::find(out.begin(), out.end(), ep) == out.end())
      out.push_back(ep);
  };
  if (pd->endpoint)
    add(*pd->endpoint);
  if (e->reflexive)
    add(*e->reflexive);
  for (const auto& ep : e->local_endpoints)
    add(ep);
  return out;
}

std::vector<wg::PeerDelta> CandidateCycler::tick(const std::vector<Peer>& peers, MonoTime now) {
  std::vector<wg::PeerDelta> out;
  std::map<crypto::PublicKey, State> next;
  for (const auto& p : peers) {
    auto it = peers_.find(p.key);
    State st;
    if (it != peers_.end() && it->second.candidates == p.candidates) {
      st = it->second;
    } else {
      // New, or the roster changed its candidates (MeshNode pointed it at the first one).
      st.candidates = p.candidates;
      st.since = now;
      st.rx = p.rx_packets;
      if (p.endpoint) {
        auto at = std::find(st.candidates.begin(), st.candidates.end(), *p.endpoint);
        if (at != st.candidates.end())
          st.index = static_cast<std::size_t>(at - st.candidates.begin());
      }
    }
    if (p.has_session || p.rx_packets != st.rx || p.transport != 0)
      st.settled = true;  // working, roamed, or the relay policy's
    if (!st.settled && st.index + 1 < st.candidates.size() && now - st.since >= try_for_) {
      ++st.index;
      st.since = now;
      wg::PeerDelta d;
      d.public_key = p.key;
      d.update_only = true;
      d.endpoint = st.candidates[st.index];
      out.push_back(std::move(d));
    }
    next.emplace(p.key, std::move(st));
  }
  peers_ = std::move(next);
  return out;
}

MeshNode::Update MeshNode::on_delta(const Result<mesh::RosterDelta>& delta) {
  Update u;
  if (!delta.ok()) {
    u.log.push_back("roster: malformed roster message from the coordinator (" +
                    delta.message() + "); asking for a snapshot");
    u.request_snapshot = true;
    return u;
  }
  const mesh::NodeEntry* me = roster_.find(self_);
  const std::optional<net::Endpoint> my_reflexive_before = me ? me->reflexive : std::nullopt;
  if (auto st = roster_.apply(*delta); !st) {
    u.request_snapshot = st.code() == ESTALE;
    u.log.push_back("roster: delta " + std::to_string(delta->from_version) + " -> " +
                    std::to_string(delta->to_version) + " not applied (" + st.message() + ")" +
                    (u.request_snapshot ? "; asking for a snapshot" : ""));
    return u;
  }
  // This node's own reflexive endpoint changed (its NAT rebound, it roamed): every peer is
  // punched again at its candidate, as the peers are doing towards the new one (they get the
  // same roster change at the same moment: a simultaneous open again).
  me = roster_.find(self_);
  const bool i_moved = my_reflexive_before && me && me->reflexive != my_reflexive_before;
  // The wanted peers against the applied ones: add/change what differs, remove what went.
  std::map<crypto::PublicKey, Applied> wanted;
  for (const auto& [key, entry] : roster_.nodes()) {
    auto pd = peer_for(entry);
    if (!pd)
      continue;
    Applied a{pd->allowed_ips_add, pd->endpoint};
    auto it = applied_.find(key);
    if (it == applied_.end() || !(it->second == a) || (i_moved && a.endpoint)) {
      if (it != applied_.end() && it->second.allowed_ips == a.allowed_ips) {
        // Only the candidate endpoint changed: leave the allowed IPs (and the session) be.
        pd->replace_allowed_ips = false;
        pd->allowed_ips_add.clear();
        pd->update_only = false;
      }
      u.log.push_back("mesh: " + std::string(it == applied_.end() ? "peer " : "peer changed ") +
                      entry.name + " (" + short_key(key) + ") " + entry.v4.to_string() +
                      (pd->endpoint ? " at " + pd->endpoint->to_string() : " (no endpoint yet)"));
      if (it != applied_.end() && it->second.endpoint && pd->endpoint) {
        // A peer that had an endpoint is moved: keepalive off, then on again with the new
        // endpoint, so the engine sends to it at once (a keepalive with a session, else an
        // initiation) and opens this node's NAT towards it. This node's next packet would
        // otherwise wait for traffic or the 25 s keepalive.
        wg::PeerDelta off;
        off.public_key = key;
        off.update_only = true;
        off.persistent_keepalive = 0;
        u.keepalive_off.peers.push_back(std::move(off));
      }
      u.engine.peers.push_back(std::move(*pd));
    }
    wanted.emplace(key, std::move(a));
  }
  for (const auto& [key, a] : applied_) {
    if (wanted.count(key))
      continue;
    wg::PeerDelta rm;
    rm.public_key = key;
    rm.remove = true;
    const mesh::NodeEntry* e = roster_.find(key);
    u.log.push_back("mesh: peer " + (e ? e->name + " revoked" : short_key(key) + " removed") +
                    ", dropped");
    u.engine.peers.push_back(std::move(rm));
  }
  applied_ = std::move(wanted);
  return u;
}

bool MeshNode::endpoints_changed(const MeshEndpoints& now) {
  if (reported_ && *reported_ == now)
    return false;
  reported_ = now;
  return true;
}

}  // namespace warren::client
