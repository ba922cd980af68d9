// Prometheus text exposition of the server's metrics (see metrics.h).

#include "server/metrics.h"

#include <algorithm>

#ifndef WARREN_VERSION
#define WARREN_VERSION "unknown"
#endif
#ifndef WARREN_COMMIT
#define WARREN_COMMIT "unknown"
#endif

namespace warren::server {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

/// Writes one family: the HELP and TYPE lines once, then its samples. The text is built in
/// one string reserved up front: a scrape of a server with a few hundred peers is a few
/// hundred kilobytes at most, and nothing else is allocated per sample but the number.
class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  template <typename Number>
  void sample(std::string_view name, const Labels& labels, Number value) {
    out_.append(name);
    if (!labels.empty()) {
      out_.push_back('{');
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first)
          out_.push_back(',');
        first = false;
        out_.append(k).append("=\"").append(escape_label_value(v)).push_back('"');
      }
      out_.push_back('}');
    }
    out_.append(" ").append(std::to_string(value)).append("\n");
  }
  std::string take() { return std::move(out_); }
  void reserve(std::size_t n) { out_.reserve(n); }

 private:
  std::string out_;
};

std::string allowed_ips(const control::PeerStatus& p) {
  std::string s;
  for (const auto& a : p.addresses) {
    if (!s.empty())
      s += ',';
    s += a.to_string();
  }
  return s;
}

}  // namespace

const std::vector<std::string_view>& known_refusal_codes() {
  // As in docs/SERVER.md's table of answer codes (src/control/enroll.cc answers the first three
  // and `busy`; src/server/registry.cc the rest).
  static const std::vector<std::string_view> codes = {
      "invalid_request", "unsupported_version", "proof_invalid", "invite_invalid",
      "invite_expired",  "invite_used_up",      "revoked",       "invite_revoked",
      "disabled",        "key_in_use",          "name_taken",    "pool_exhausted",
      "no_reservation",  "storage_error",       "busy",          "internal",
  };
  return codes;
}

std::string escape_label_value(std::string_view value) {
  std::string s;
  s.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        s += "\\\\";
        break;
      case '"':
        s += "\\\"";
        break;
      case '\n':
        s += "\\n";
        break;
      default:
        s += c;
    }
  }
  return s;
}

std::string render_metrics(const MetricsSnapshot& m) {
  const control::InterfaceStatus& s = m.status;
  const std::string_view ifname = s.interface;
  Writer w;
  w.reserve(1024 + s.peers.size() * 1200);

  w.family("warren_build_info", "gauge",
           "Always 1; the labels name the version and source commit of the running server.");
  w.sample("warren_build_info", {{"version", m.version}, {"commit", m.commit}}, 1);

  // Per peer: the exporters' label set, computed once per peer.
  struct PeerLabels {
    std::string key, ips;
    const control::PeerStatus* p;
  };
  std::vector<PeerLabels> peers;
  peers.reserve(s.peers.size());
  for (const auto& p : s.peers)
    peers.push_back({p.public_key.to_base64(), allowed_ips(p), &p});
  auto per_peer = [&](std::string_view name, std::string_view type, std::string_view help,
                      auto value) {
    w.family(name, type, help);
    for (const auto& pl : peers) {
      w.sample(name,
               {{"interface", ifname},
                {"public_key", pl.key},
                {"allowed_ips", pl.ips},
                {"friendly_name", pl.p->name}},
               value(*pl.p));
    }
  };
  per_peer("wireguard_sent_bytes_total", "counter", "Bytes sent to the peer.",
           [](const control::PeerStatus& p) { return p.tx_bytes; });
  per_peer("wireguard_received_bytes_total", "counter", "Bytes received from the peer.",
           [](const control::PeerStatus& p) { return p.rx_bytes; });
  per_peer("wireguard_latest_handshake_seconds", "gauge",
           "Unix time of the latest handshake with the peer (0 = never).",
           [](const control::PeerStatus& p) { return p.last_handshake; });
  per_peer("warren_peer_sent_packets_total", "counter", "Packets sent to the peer.",
           [](const control::PeerStatus& p) { return p.tx_packets; });
  per_peer("warren_peer_received_packets_total", "counter", "Packets received from the peer.",
           [](const control::PeerStatus& p) { return p.rx_packets; });

  w.family("warren_peers", "gauge", "Peers on the interface.");
  w.sample("warren_peers", {{"interface", ifname}}, s.peers.size());

  w.family("warren_pool_addresses", "gauge", "Assignable addresses in the pool.");
  for (auto [fam, pool] : {std::pair{"v4", s.pool_v4}, std::pair{"v6", s.pool_v6}}) {
    if (pool)
      w.sample("warren_pool_addresses", {{"interface", ifname}, {"family", fam}}, pool->total);
  }
  w.family("warren_pool_addresses_used", "gauge", "Addresses leased to clients.");
  for (auto [fam, pool] : {std::pair{"v4", s.pool_v4}, std::pair{"v6", s.pool_v6}}) {
    if (pool)
      w.sample("warren_pool_addresses_used", {{"interface", ifname}, {"family", fam}}, pool->used);
  }

  w.family("warren_dropped_packets_total", "counter",
           "Packets dropped by the data plane, by reason (docs/SERVER.md).");
  for (const auto& [reason, n] : m.drops)
    w.sample("warren_dropped_packets_total", {{"interface", ifname}, {"reason", reason}}, n);

  w.family("warren_handshake_queue_depth", "gauge",
           "Handshake messages waiting to be processed, by lane (all workers).");
  for (const auto& [lane, n] : m.handshake_queue_depth)
    w.sample("warren_handshake_queue_depth", {{"interface", ifname}, {"lane", lane}}, n);
  w.family("warren_handshake_queue_dropped_total", "counter",
           "Handshake messages dropped on arrival because their lane was full.");
  for (const auto& [lane, n] : m.handshake_queue_dropped)
    w.sample("warren_handshake_queue_dropped_total", {{"interface", ifname}, {"lane", lane}}, n);

  w.family("warren_enrollments_total", "counter",
           "Enrollment requests answered with an enrollment (new clients and re-joins).");
  w.sample("warren_enrollments_total", {{"interface", ifname}}, m.enrollments);
  w.family("warren_enrollment_refusals_total", "counter",
           "Enrollment requests refused, by the code of the answer.");
  const auto& known = known_refusal_codes();
  for (std::string_view code : known) {
    auto it = m.refusals.find(code);
    w.sample("warren_enrollment_refusals_total", {{"interface", ifname}, {"code", code}},
             it == m.refusals.end() ? std::uint64_t{0} : it->second);
  }
  for (const auto& [code, n] : m.refusals) {  // a code added later and not listed yet
    if (std::find(known.begin(), known.end(), code) == known.end())
      w.sample("warren_enrollment_refusals_total", {{"interface", ifname}, {"code", code}}, n);
  }
  if (m.status.quic) {  // [quic] (docs/QUIC.md)
    const control::QuicTransportStatus& q = *m.status.quic;
    w.family("warren_quic_clients", "gauge", "Clients connected over QUIC now (authenticated).");
    w.sample("warren_quic_clients", {{"interface", ifname}}, q.clients);
    w.family("warren_quic_messages_total", "counter",
             "WireGuard messages carried over QUIC, by direction.");
    w.sample("warren_quic_messages_total", {{"interface", ifname}, {"direction", "sent"}}, q.sent);
    w.sample("warren_quic_messages_total", {{"interface", ifname}, {"direction", "received"}},
             q.received);
    w.family("warren_quic_dropped_total", "counter",
             "QUIC datagrams dropped and connections refused, by reason (docs/QUIC.md).");
    for (const auto& [reason, n] : q.drops)
      w.sample("warren_quic_dropped_total", {{"interface", ifname}, {"reason", reason}}, n);
  }
  return w.take();
}

std::string_view build_version() {
  return WARREN_VERSION;
}

std::string_view build_commit() {
  return WARREN_COMMIT;
}

}  // namespace warren::server
