#include "runtime/relay_policy.h"

#include <set>

#include "dataplane/transport.h"
#include "wg/constants.h"

namespace warren::runtime {

namespace {

wg::PeerDelta move_to(const crypto::PublicKey& key, const net::Endpoint& endpoint,
                      std::uint8_t transport) {
  wg::PeerDelta d;
  d.public_key = key;
  d.update_only = true;
  d.endpoint = endpoint;
  d.transport = transport;
  return d;
}

}  // namespace

std::vector<wg::PeerDelta> RelayPolicy::tick(const std::vector<wg::PeerSnapshot>& peers,
                                             MonoTime now, std::uint8_t relay_tag,
                                             bool relay_connected,
                                             const RelayEndpoint& relay_endpoint) {
  std::vector<wg::PeerDelta> out;
  std::set<crypto::PublicKey> seen;
  auto to_relay = [&](const crypto::PublicKey& key, PeerState& st) {
    auto ep = relay_endpoint(key);
    if (!ep)
      return;
    out.push_back(move_to(key, *ep, relay_tag));
    st.relayed = true;
    st.relayed_since = now;
    st.trial.reset();
  };

  for (const auto& p : peers) {
    seen.insert(p.public_key);
    auto [it, fresh] = peers_.try_emplace(p.public_key);
    PeerState& st = it->second;
    if (fresh) {
      st.rx = p.rx_packets;
      st.tx = p.tx_packets;
      st.tx_bytes = p.tx_bytes;
      st.rx_changed = now;
    }
    const bool received = p.rx_packets != st.rx;
    if (received) {
      st.rx = p.rx_packets;
      st.rx_changed = now;
      st.sent_since_rx = false;
      st.unanswered.reset();
    }
    if (p.tx_packets != st.tx) {
      // Anything but 32-byte keepalives (data, handshake messages) is worth an answer; sent in
      // the same second as something arrived, it counts as answered (the order is unknown).
      if (p.tx_bytes - st.tx_bytes > (p.tx_packets - st.tx) * wg::kKeepaliveSize &&
          !received && !st.unanswered)
        st.unanswered = now;
      st.tx = p.tx_packets;
      st.tx_bytes = p.tx_bytes;
      st.sent_since_rx = true;
    }

    const bool on_relay = p.endpoint_transport == relay_tag;
    if (on_relay) {
      if (!st.relayed || st.trial) {
        // Moved here by roaming (the peer reached us through the relay), or a trial of the
        // direct path ended with an answer over the relay: wait a full interval again.
        st.relayed = true;
        st.relayed_since = now;
        st.trial.reset();
      }
      if (!relay_connected) {
        if (st.direct) {
          out.push_back(move_to(p.public_key, *st.direct, dataplane::kUdpTransport));
          st.relayed = false;
        }
      } else if (st.direct && now - st.relayed_since >= options_.direct_retry) {
        out.push_back(move_to(p.public_key, *st.direct, dataplane::kUdpTransport));
        st.trial = now;
        st.rx_at_trial = p.rx_packets;
      }
      continue;
    }

    if (!p.endpoint) {
      // No endpoint at all: the relay is the only way to reach the peer.
      if (relay_connected)
        to_relay(p.public_key, st);
      continue;
    }
    st.direct = *p.endpoint;
    if (st.trial) {
      if (p.rx_packets != st.rx_at_trial) {
        st.trial.reset();  // something authenticated arrived and left the endpoint direct
        st.relayed = false;
      } else if (now - *st.trial >= options_.fallback_after) {
        if (relay_connected) {
          to_relay(p.public_key, st);
        } else {
          st.trial.reset();
          st.relayed = false;
        }
      }
      continue;
    }
    st.relayed = false;
    if (relay_connected && !p.has_session && st.sent_since_rx &&
        now - st.rx_changed >= options_.fallback_after)
      to_relay(p.public_key, st);
    else if (relay_connected && p.has_session && st.unanswered &&
             now - *st.unanswered >= options_.dead_after)
      to_relay(p.public_key, st);
  }
  std::erase_if(peers_, [&](const auto& kv) { return !seen.contains(kv.first); });
  return out;
}

std::size_t RelayPolicy::relayed_count() const {
  std::size_t n = 0;
  for (const auto& [k, st] : peers_)
    n += st.relayed ? 1 : 0;
  return n;
}

RelayCarrierChoice::Carrier RelayCarrierChoice::next(MonoTime now) const {
  if (!options_.udp)
    return Carrier::kTcp;
  if (udp_silent_since_ && now - *udp_silent_since_ < options_.udp_retry)
    return Carrier::kTcp;
  return Carrier::kUdp;
}

void RelayCarrierChoice::udp_result(bool answered, MonoTime now) {
  if (answered)
    udp_silent_since_.reset();
  else
    udp_silent_since_ = now;
}

const char* carrier_name(RelayCarrierChoice::Carrier c) {
  return c == RelayCarrierChoice::Carrier::kUdp ? "UDP" : "TCP/TLS";
}

}  // namespace warren::runtime
