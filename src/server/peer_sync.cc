#include "server/peer_sync.h"

#include <algorithm>
#include <map>
#include <set>

namespace warren::server {
namespace {

bool is_host(const net::Prefix& p) {
  return p.length == p.max_length();
}

}  // namespace

PeerSync plan_peer_sync(const std::vector<ClientRecord>& clients,
                        const std::vector<wg::PeerSnapshot>& peers) {
  std::map<crypto::PublicKey, std::vector<net::Prefix>> want;
  for (const auto& c : clients) {
    if (c.revoked() || c.disabled() || c.leases.empty())
      continue;
    auto& v = want[c.public_key];
    for (const auto& l : c.leases)
      v.push_back(net::Prefix{l.address, static_cast<std::uint8_t>(l.address.is_v4() ? 32 : 128)});
  }
  PeerSync out;
  std::set<net::IpAddress> freed;
  for (const auto& p : peers) {
    auto it = want.find(p.public_key);
    if (it == want.end()) {
      wg::PeerDelta rm;
      rm.public_key = p.public_key;
      rm.remove = true;
      out.delta.peers.push_back(rm);
    }
    for (const auto& prefix : p.allowed_ips) {
      if (!is_host(prefix))
        continue;
      const bool kept = it != want.end() &&
                        std::find(it->second.begin(), it->second.end(), prefix) != it->second.end();
      if (!kept)
        freed.insert(prefix.address);
    }
  }
  for (const auto& [key, prefixes] : want) {
    wg::PeerDelta p;
    p.public_key = key;
    p.replace_allowed_ips = true;
    p.allowed_ips_add = prefixes;
    out.delta.peers.push_back(p);
  }
  out.freed.assign(freed.begin(), freed.end());
  return out;
}

std::vector<net::IpAddress> newly_routed(const std::vector<wg::PeerSnapshot>& peers,
                                         const crypto::PublicKey& key,
                                         const std::vector<net::Prefix>& addresses) {
  auto peer = std::find_if(peers.begin(), peers.end(),
                           [&](const wg::PeerSnapshot& p) { return p.public_key == key; });
  std::vector<net::IpAddress> out;
  for (const auto& a : addresses) {
    if (!is_host(a))
      continue;
    const bool routed =
        peer != peers.end() &&
        std::find(peer->allowed_ips.begin(), peer->allowed_ips.end(), a) != peer->allowed_ips.end();
    if (!routed)
      out.push_back(a.address);
  }
  return out;
}

std::string forget_flows(platform::Conntrack& conntrack, const std::vector<net::IpAddress>& freed) {
  std::string names;
  for (const auto& a : freed)
    names += (names.empty() ? "" : " ") + a.to_string();
  auto n = conntrack.forget(freed);
  if (!n)
    return names + ": cannot delete their conntrack entries: " + n.message();
  return names + ": " + std::to_string(*n) + " conntrack entries deleted";
}

}  // namespace warren::server
