// Status documents, their JSON and table forms, and the status socket (see status.h).

#include "control/status.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "control/tls.h"
#include "platform/files.h"

namespace warren::control {

using nlohmann::json;

namespace {
constexpr std::int64_t kRejectAfterTime = 180;
constexpr auto kIoTimeout = std::chrono::milliseconds(2000);
constexpr std::size_t kMaxRequest = 4096;
constexpr std::size_t kMaxReply = 16 << 20;

json pool_json(const PoolUsage& p) {
  return {{"total", p.total}, {"used", p.used}};
}

std::uint64_t u64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned())
    throw ControlError(std::string("status: field \"") + key + "\" missing or not a count");
  return it->get<std::uint64_t>();
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    throw ControlError(std::string("status: field \"") + key + "\" missing or not a string");
  return it->get<std::string>();
}

crypto::PublicKey key(const json& j, const char* k) {
  auto v = crypto::PublicKey::from_base64(str(j, k));
  if (!v)
    throw ControlError(std::string("status: field \"") + k + "\" is not a key");
  return *v;
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string ago(std::int64_t t, std::int64_t now) {
  if (t == 0)
    return "never";
  std::int64_t d = std::max<std::int64_t>(0, now - t);
  char buf[32];
  if (d < 120)
    std::snprintf(buf, sizeof buf, "%llds ago", static_cast<long long>(d));
  else if (d < 7200)
    std::snprintf(buf, sizeof buf, "%lldm ago", static_cast<long long>(d / 60));
  else if (d < 172800)
    std::snprintf(buf, sizeof buf, "%lldh ago", static_cast<long long>(d / 3600));
  else
    std::snprintf(buf, sizeof buf, "%lldd ago", static_cast<long long>(d / 86400));
  return buf;
}

}  // namespace

std::string peer_state(std::int64_t last_handshake, std::int64_t now_unix) {
  if (last_handshake == 0)
    return "never";
  return now_unix - last_handshake < kRejectAfterTime ? "connected" : "idle";
}

PeerStatus peer_status(const wg::PeerSnapshot& p, std::int64_t now_unix) {
  PeerStatus ps;
  ps.public_key = p.public_key;
  ps.addresses = p.allowed_ips;
  ps.endpoint = p.endpoint ? p.endpoint->to_string() : "";
  ps.last_handshake = p.last_handshake_sec;
  ps.rx_bytes = p.rx_bytes;
  ps.tx_bytes = p.tx_bytes;
  ps.rx_packets = p.rx_packets;
  ps.tx_packets = p.tx_packets;
  ps.state = peer_state(p.last_handshake_sec, now_unix);
  if (p.handshake_rtt_usec > 0)
    ps.rtt_ms = static_cast<double>(p.handshake_rtt_usec) / 1000.0;
  return ps;
}

std::string to_json(const InterfaceStatus& s) {
  json j;
  j["version"] = s.version;
  j["interface"] = s.interface;
  j["role"] = s.role;
  j["public_key"] = s.public_key ? s.public_key->to_base64() : std::string();
  j["listen_port"] = s.listen_port;
  j["peers"] = json::array();
  for (const auto& p : s.peers) {
    json pj;
    pj["name"] = p.name;
    pj["public_key"] = p.public_key.to_base64();
    pj["addresses"] = json::array();
    for (const auto& a : p.addresses)
      pj["addresses"].push_back(a.to_string());
    pj["endpoint"] = p.endpoint;
    pj["last_handshake"] = p.last_handshake;
    pj["rx_bytes"] = p.rx_bytes;
    pj["tx_bytes"] = p.tx_bytes;
    pj["rx_packets"] = p.rx_packets;
    pj["tx_packets"] = p.tx_packets;
    pj["state"] = p.state;
    if (!p.path.empty())
      pj["path"] = p.path;
    if (p.rtt_ms)
      pj["rtt_ms"] = std::round(*p.rtt_ms * 1000.0) / 1000.0;  // µs resolution
    if (!p.transport.empty())
      pj["transport"] = p.transport;
    j["peers"].push_back(std::move(pj));
  }
  if (s.pool_v4 || s.pool_v6) {
    json pool = json::object();
    if (s.pool_v4)
      pool["v4"] = pool_json(*s.pool_v4);
    if (s.pool_v6)
      pool["v6"] = pool_json(*s.pool_v6);
    j["pool"] = pool;
  }
  if (s.stun) {
    json st = json::object();
    st["mapping"] = s.stun->mapping;
    st["servers"] = json::array();
    for (const auto& v : s.stun->servers) {
      st["servers"].push_back(json{{"server", v.server},
                                   {"state", v.state},
                                   {"reflexive", v.reflexive},
                                   {"learned_at", v.learned_at},
                                   {"rtt_ms", v.rtt_ms}});
    }
    j["stun"] = st;
  }
  if (!s.log.empty())
    j["log"] = s.log;
  if (s.relay) {
    j["relay"] = json{{"port", s.relay->port},
                      {"connections", s.relay->connections},
                      {"nodes", s.relay->nodes},
                      {"forwarded_frames", s.relay->forwarded_frames},
                      {"forwarded_bytes", s.relay->forwarded_bytes},
                      {"drops", s.relay->drops}};
  }
  if (s.quic) {
    const auto& q = *s.quic;
    j["quic"] =
        json{{"role", q.role},         {"endpoint", q.endpoint},     {"connected", q.connected},
             {"clients", q.clients},   {"connects", q.connects},     {"sent", q.sent},
             {"received", q.received}, {"last_error", q.last_error}, {"drops", q.drops}};
  }
  if (s.relay_path) {
    const auto& r = *s.relay_path;
    j["relay_path"] = json{{"relay", r.relay},
                           {"connected", r.connected},
                           {"carrier", r.carrier},
                           {"last_error", r.last_error},
                           {"connects", r.connects},
                           {"sent", r.sent},
                           {"received", r.received},
                           {"drops", r.drops},
                           {"relayed_peers", r.relayed_peers}};
  }
  if (!s.state.empty())
    j["state"] = s.state;
  if (!s.paused_by.empty())
    j["paused_by"] = s.paused_by;
  return j.dump(2);
}

InterfaceStatus status_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw ControlError("status: not a JSON object");
  InterfaceStatus s;
  auto v = u64(j, "version");
  if (v != static_cast<std::uint64_t>(kStatusVersion))
    throw ControlError("status: unsupported version " + std::to_string(v));
  s.interface = str(j, "interface");
  s.role = str(j, "role");
  if (!str(j, "public_key").empty())
    s.public_key = key(j, "public_key");
  auto port = u64(j, "listen_port");
  if (port > 65535)
    throw ControlError("status: listen_port out of range");
  s.listen_port = static_cast<std::uint16_t>(port);
  if (!j.contains("peers") || !j["peers"].is_array())
    throw ControlError("status: field \"peers\" missing or not a list");
  for (const auto& pj : j["peers"]) {
    if (!pj.is_object())
      throw ControlError("status: a peer is not an object");
    PeerStatus p;
    p.name = str(pj, "name");
    p.public_key = key(pj, "public_key");
    if (!pj.contains("addresses") || !pj["addresses"].is_array())
      throw ControlError("status: field \"addresses\" missing or not a list");
    for (const auto& a : pj["addresses"]) {
      auto pre = a.is_string() ? net::Prefix::parse(a.get<std::string>()) : std::nullopt;
      if (!pre)
        throw ControlError("status: bad address in \"addresses\"");
      p.addresses.push_back(*pre);
    }
    p.endpoint = str(pj, "endpoint");
    if (!pj.contains("last_handshake") || !pj["last_handshake"].is_number_integer())
      throw ControlError("status: field \"last_handshake\" missing or not a number");
    p.last_handshake = pj["last_handshake"].get<std::int64_t>();
    p.rx_bytes = u64(pj, "rx_bytes");
    p.tx_bytes = u64(pj, "tx_bytes");
    p.rx_packets = u64(pj, "rx_packets");
    p.tx_packets = u64(pj, "tx_packets");
    p.state = str(pj, "state");
    if (auto path = pj.find("path"); path != pj.end() && path->is_string())
      p.path = path->get<std::string>();
    if (auto rtt = pj.find("rtt_ms"); rtt != pj.end()) {
      if (!rtt->is_number() || rtt->get<double>() < 0)
        throw ControlError("status: field \"rtt_ms\" is not a non-negative number");
      p.rtt_ms = rtt->get<double>();
    }
    if (auto t = pj.find("transport"); t != pj.end()) {
      if (!t->is_string())
        throw ControlError("status: field \"transport\" is not a string");
      p.transport = t->get<std::string>();
    }
    s.peers.push_back(std::move(p));
  }
  if (j.contains("pool")) {
    const auto& pool = j["pool"];
    if (!pool.is_object())
      throw ControlError("status: field \"pool\" is not an object");
    if (pool.contains("v4"))
      s.pool_v4 = PoolUsage{u64(pool["v4"], "total"), u64(pool["v4"], "used")};
    if (pool.contains("v6"))
      s.pool_v6 = PoolUsage{u64(pool["v6"], "total"), u64(pool["v6"], "used")};
  }
  if (j.contains("stun")) {
    const auto& st = j["stun"];
    if (!st.is_object() || !st.contains("servers") || !st["servers"].is_array())
      throw ControlError("status: field \"stun\" is not an object with a \"servers\" list");
    StunStatus stun;
    stun.mapping = str(st, "mapping");
    for (const auto& sv : st["servers"]) {
      if (!sv.is_object())
        throw ControlError("status: a STUN server is not an object");
      if (!sv.contains("learned_at") || !sv["learned_at"].is_number_integer())
        throw ControlError("status: field \"learned_at\" missing or not a number");
      stun.servers.push_back(
          StunServerStatus{str(sv, "server"), str(sv, "state"), str(sv, "reflexive"),
                           sv["learned_at"].get<std::int64_t>(), u64(sv, "rtt_ms")});
    }
    s.stun = std::move(stun);
  }
  if (j.contains("log"))
    s.log = str(j, "log");
  if (j.contains("relay")) {
    const auto& r = j["relay"];
    if (!r.is_object() || !r.contains("drops") || !r["drops"].is_object())
      throw ControlError("status: field \"relay\" is not an object with a \"drops\" object");
    RelayStatus relay;
    relay.port = static_cast<std::uint16_t>(u64(r, "port"));
    relay.connections = u64(r, "connections");
    relay.nodes = u64(r, "nodes");
    relay.forwarded_frames = u64(r, "forwarded_frames");
    relay.forwarded_bytes = u64(r, "forwarded_bytes");
    for (const auto& [reason, n] : r["drops"].items()) {
      if (!n.is_number_unsigned())
        throw ControlError("status: relay drop count \"" + reason + "\" is not a number");
      relay.drops[reason] = n.get<std::uint64_t>();
    }
    s.relay = std::move(relay);
  }
  if (j.contains("quic")) {
    const auto& q = j["quic"];
    if (!q.is_object() || !q.contains("drops") || !q["drops"].is_object() ||
        !q.contains("connected") || !q["connected"].is_boolean())
      throw ControlError(
          "status: field \"quic\" is not an object with \"connected\" and \"drops\"");
    QuicTransportStatus qs;
    qs.role = str(q, "role");
    qs.endpoint = str(q, "endpoint");
    qs.connected = q["connected"].get<bool>();
    qs.clients = u64(q, "clients");
    qs.connects = u64(q, "connects");
    qs.sent = u64(q, "sent");
    qs.received = u64(q, "received");
    qs.last_error = str(q, "last_error");
    for (const auto& [reason, n] : q["drops"].items()) {
      if (!n.is_number_unsigned())
        throw ControlError("status: quic drop count \"" + reason + "\" is not a number");
      qs.drops[reason] = n.get<std::uint64_t>();
    }
    s.quic = std::move(qs);
  }
  if (j.contains("relay_path")) {
    const auto& r = j["relay_path"];
    if (!r.is_object() || !r.contains("connected") || !r["connected"].is_boolean() ||
        !r.contains("drops") || !r["drops"].is_object() || !r.contains("relayed_peers") ||
        !r["relayed_peers"].is_array())
      throw ControlError(
          "status: field \"relay_path\" is not an object with \"connected\", "
          "\"drops\" and \"relayed_peers\"");
    RelayPathStatus rp;
    rp.relay = str(r, "relay");
    rp.connected = r["connected"].get<bool>();
    if (r.contains("carrier"))  // absent from daemons before the relay over UDP
      rp.carrier = str(r, "carrier");
    rp.last_error = str(r, "last_error");
    rp.connects = u64(r, "connects");
    rp.sent = u64(r, "sent");
    rp.received = u64(r, "received");
    for (const auto& [reason, n] : r["drops"].items()) {
      if (!n.is_number_unsigned())
        throw ControlError("status: relay_path drop count \"" + reason + "\" is not a number");
      rp.drops[reason] = n.get<std::uint64_t>();
    }
    for (const auto& k : r["relayed_peers"]) {
      if (!k.is_string())
        throw ControlError("status: a relayed peer is not a string");
      rp.relayed_peers.push_back(k.get<std::string>());
    }
    s.relay_path = std::move(rp);
  }
  if (j.contains("state"))
    s.state = str(j, "state");
  if (j.contains("paused_by"))
    s.paused_by = str(j, "paused_by");
  return s;
}

std::string format_table(const InterfaceStatus& s, std::int64_t now_unix) {
  std::string out = "interface: " + s.interface + " (" + s.role + ")\n";
  out += "  public key:  " + (s.public_key ? s.public_key->to_base64() : "(none)") + "\n";
  out += "  listen port: " + std::to_string(s.listen_port) + "\n";
  if (!s.state.empty())
    out += "  state:       " + s.state +
           (s.paused_by.empty() ? std::string() : " (" + s.paused_by + ")") + "\n";
  if (!s.log.empty())
    out += "  log:         " + s.log + "\n";
  if (s.pool_v4)
    out += "  pool v4:     " + std::to_string(s.pool_v4->used) + " of " +
           std::to_string(s.pool_v4->total) + " used\n";
  if (s.pool_v6)
    out += "  pool v6:     " + std::to_string(s.pool_v6->used) + " of " +
           std::to_string(s.pool_v6->total) + " used\n";
  if (s.stun) {
    for (const auto& v : s.stun->servers) {
      out += "  stun:        " + (v.reflexive.empty() ? std::string("-") : v.reflexive) + " via " +
             v.server + " (" + v.state +
             (v.learned_at ? ", learned " + ago(v.learned_at, now_unix) : std::string()) + ")\n";
    }
    out += "  nat mapping: " + s.stun->mapping + "\n";
  }
  if (s.quic) {
    const auto& q = *s.quic;
    if (q.role == "server")
      out += "  quic:        listening on UDP " + q.endpoint + ", " + std::to_string(q.clients) +
             " client(s) connected\n";
    else
      out += "  quic:        " + q.endpoint +
             (q.connected ? std::string(" connected") : std::string(" not connected")) +
             (q.last_error.empty() ? std::string() : " (" + q.last_error + ")") + "\n";
  }
  if (s.relay_path) {
    const auto& r = *s.relay_path;
    out += "  relay path:  " + r.relay +
           (r.connected ? " connected" + (r.carrier.empty() ? std::string() : " over " + r.carrier)
                        : std::string(" not connected")) +
           (r.last_error.empty() ? std::string() : " (" + r.last_error + ")") + ", " +
           std::to_string(r.relayed_peers.size()) + " peer(s) relayed\n";
  }
  if (s.peers.empty()) {
    out += "  no peers\n";
    return out;
  }
  std::vector<std::array<std::string, 8>> rows;
  rows.push_back({"NAME", "STATE", "ADDRESSES", "ENDPOINT", "HANDSHAKE", "RX", "TX", "KEY"});
  // The handshake's round trip goes with its age: "5s ago, 0.4 ms".
  auto handshake = [&](const PeerStatus& p) {
    std::string h = ago(p.last_handshake, now_unix);
    if (p.rtt_ms) {
      char rtt[32];
      std::snprintf(rtt, sizeof rtt, ", %.*f ms", *p.rtt_ms < 10 ? 2 : 0, *p.rtt_ms);
      h += rtt;
    }
    return h;
  };
  for (const auto& p : s.peers) {
    std::string addrs;
    for (const auto& a : p.addresses)
      addrs += (addrs.empty() ? "" : ",") + a.to_string();
    // The mesh path and the transport follow the state: "connected (direct)",
    // "connected (quic)"; a transport that repeats the path is not said twice.
    std::string how = p.path;
    if (!p.transport.empty() && p.transport != p.path)
      how += (how.empty() ? "" : ", ") + p.transport;
    rows.push_back({p.name.empty() ? "-" : p.name,
                    how.empty() ? p.state : p.state + " (" + how + ")", addrs.empty() ? "-" : addrs,
                    p.endpoint.empty() ? "-" : p.endpoint, handshake(p),
                    human_bytes(p.rx_bytes) + " (" + std::to_string(p.rx_packets) + ")",
                    human_bytes(p.tx_bytes) + " (" + std::to_string(p.tx_packets) + ")",
                    p.public_key.to_base64()});
  }
  std::array<std::size_t, 8> width{};
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  out += "\n";
  for (const auto& r : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += " " + r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

// ---- socket --------------------------------------------------------------------------------

StatusServer::StatusServer(std::string ifname, StatusProvider provider, StatusServerOptions options)
    : ifname_(std::move(ifname)), provider_(std::move(provider)), options_(std::move(options)) {
  path_ = options_.socket_dir + "/" + ifname_ + ".sock";
}

StatusServer::~StatusServer() {
  stop();
}

void StatusServer::start() {
  if (ifname_.empty() || ifname_.find('/') != std::string::npos || ifname_ == "." ||
      ifname_ == "..")
    throw ControlError("invalid interface name '" + ifname_ + "'");
  // listen_unix creates missing directories too; this one is made first so that it gets 0700
  // even when it is the only missing one. An existing directory is left as it is.
  (void)platform::make_directory(options_.socket_dir, 0700);
  if (options_.group) {
    // Members of the group must be able to reach the socket: traversal (never listing) for
    // everyone; the socket's own mode and group keep the others out.
    if (auto info = platform::file_info(options_.socket_dir);
        info && info->directory && (info->mode & 0001) == 0) {
      if (auto s = platform::set_file_mode(options_.socket_dir, info->mode | 0011); !s)
        throw ControlError("cannot open " + options_.socket_dir +
                           " to the control group: " + s.message());
    }
  }
  auto l = platform::listen_unix(
      path_, platform::ListenOptions{.directory_mode = 0700,
                                     .socket_mode = options_.group ? 0660u : 0600u,
                                     .socket_group = options_.group,
                                     .backlog = 16});
  if (!l.ok()) {
    if (l.code() == EADDRINUSE)
      throw ControlError("interface " + ifname_ + " is already served by another process (" +
                         path_ + ")");
    throw ControlError("cannot create status socket " + path_ + ": " + l.message());
  }
  listener_ = std::move(*l);
  thread_ = std::thread([this] { loop(); });
}

void StatusServer::stop() {
  if (!listener_)
    return;
  listener_->interrupt();
  if (thread_.joinable())
    thread_.join();
  listener_->close();
  listener_.reset();
}

std::string StatusServer::handle(std::string_view line, bool limited) {
  auto space = line.find(' ');
  std::string_view word = line.substr(0, space);
  std::string_view arg = space == std::string_view::npos ? "" : line.substr(space + 1);
  if (limited && !options_.group_commands.contains(word))
    return "error: permission denied: only root may ask '" + std::string(word.substr(0, 32)) +
           "' of " + ifname_ + "\n";
  if (word == "status")
    return to_json(provider_()) + "\n";
  if (auto it = options_.commands.find(word); it != options_.commands.end())
    return it->second(arg);
  return "error: unknown request '" + std::string(word.substr(0, 32)) + "'\n";
}

void StatusServer::loop() {
  for (;;) {
    auto c = listener_->accept();
    if (c.code() == ECANCELED)
      return;
    if (!c.ok()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    platform::ControlConnection& conn = *c;
    bool limited = false;
    if (auto uid = conn.peer_uid(); !uid || (*uid != 0 && *uid != platform::effective_uid())) {
      if (!uid || !options_.group || !conn.peer_in_group(*options_.group))
        continue;      // defence in depth: the file modes already keep others out
      limited = true;  // a member of the control group: its commands only
    }
    std::string line;
    char buf[512];
    bool complete = false;
    while (line.size() < kMaxRequest) {
      auto r = conn.read(buf, kIoTimeout);
      if (!r.ok() || *r == 0)
        break;
      line.append(buf, *r);
      if (auto nl = line.find('\n'); nl != std::string::npos) {
        line.resize(nl);
        complete = true;
        break;
      }
    }
    if (!complete)
      continue;  // timed out, too long or hung up: drop the connection
    std::string reply;
    try {
      reply = handle(line, limited);
    } catch (const std::exception& e) {
      reply = std::string("error: ") + e.what() + "\n";
    }
    (void)conn.write_all(reply, kIoTimeout);
    conn.close();
  }
}

std::string query_daemon(std::string_view ifname, std::string_view request,
                         std::string_view socket_dir, std::chrono::milliseconds timeout) {
  const std::string path = std::string(socket_dir) + "/" + std::string(ifname) + ".sock";
  auto c = platform::connect_unix(path);
  if (!c.ok()) {
    if (c.code() == ENOENT || c.code() == ECONNREFUSED)
      throw DaemonNotRunning("no warren daemon is running for interface " + std::string(ifname) +
                             " (" + path + ")");
    if (c.code() == EACCES || c.code() == EPERM)
      throw PermissionDenied("permission denied for " + path + " (run as root)");
    throw ControlError("cannot connect to " + path + ": " + c.message());
  }
  std::string req = std::string(request) + "\n";
  if (auto s = c->write_all(req, kIoTimeout); !s.ok())
    throw ControlError("cannot send to " + path + ": " + s.message());
  std::string reply;
  char buf[4096];
  for (;;) {
    auto r = c->read(buf, timeout);
    if (!r.ok())
      throw ControlError("no answer from " + path + ": " + r.message());
    if (*r == 0)
      break;
    reply.append(buf, *r);
    if (reply.size() > kMaxReply)
      throw ControlError("reply from " + path + " is too large");
  }
  return reply;
}

InterfaceStatus query_status(std::string_view ifname, std::string_view socket_dir) {
  std::string reply = query_daemon(ifname, "status", socket_dir);
  if (reply.starts_with("error:"))
    throw ControlError(reply.substr(0, reply.find('\n')));
  return status_from_json(reply);
}

std::vector<std::string> list_status_interfaces(std::string_view socket_dir) {
  std::vector<std::string> out;
  auto names = platform::list_directory(std::string(socket_dir));
  if (!names)
    return out;
  for (const auto& n : *names)
    if (n.size() > 5 && n.ends_with(".sock"))
      out.push_back(n.substr(0, n.size() - 5));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace warren::control
