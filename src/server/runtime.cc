// The running server (see runtime.h).

#include "server/runtime.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "base/secure.h"
#include "control/enroll.h"
#include "control/status.h"
#include "crypto/blake2s.h"
#include "crypto/random.h"
#include "dataplane/engine.h"
#include "dns/forwarder.h"
#include "net/host_port.h"
#include "platform/clock.h"
#include "platform/conntrack.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/netlink.h"
#include "platform/process.h"
#include "platform/tcp.h"
#include "quic/identity.h"
#include "runtime/runtime.h"
#include "server/dns_service.h"
#include "server/host_setup.h"
#include "server/metrics.h"
#include "server/peer_sync.h"
#include "server/relay_service.h"
#include "server/reload.h"
#include "server/roster_service.h"
#include "server/state.h"
#include "server/stun_responder.h"

namespace warren::server {
namespace {

// "a, b" for the log.
std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items)
    out += (out.empty() ? "" : ", ") + i;
  return out;
}

// Maintenance runs every second: it notices database changes made by other processes (a
// revoke whose `sync` did not reach us) within that; the heavier part (handshake times, idle
// release) runs every kHeavyMaintenanceEvery rounds.
constexpr auto kMaintenanceInterval = std::chrono::seconds(1);
constexpr int kHeavyMaintenanceEvery = 5;
constexpr std::int64_t kIdleCheckSeconds = 60;

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

/// The running server's moving parts. Threads: enrollment workers call enroll(); the
/// status thread calls status() and sync(); the main thread runs maintenance. Engine and
/// store are thread-safe; `mutex_` orders "store, then engine" updates so that an enrollment
/// and a revoke of the same client cannot apply to the engine in the opposite order, and
/// guards the live config and the registry made from it (replaced by a reload).
class Server {
 public:
  /// `conntrack` may be null (no conntrack netlink here): freed addresses are then not flushed.
  Server(const ServerConfig& config, ServerState& state, dataplane::Engine& engine,
         platform::Conntrack* conntrack)
      : config_(std::make_unique<ServerConfig>(config)),
        registry_(std::make_unique<Registry>(*config_, *state.store, state.public_key)),
        state_(state),
        engine_(engine),
        conntrack_(conntrack) {}

  /// The config the server runs with now (a copy: a reload may replace it meanwhile).
  ServerConfig config() {
    std::lock_guard lock(mutex_);
    return *config_;
  }

  /// A reload's new config: the registry (reservations, pool rules, what clients are told) is
  /// made from it; enrollments after this call see only the new one.
  void set_config(const ServerConfig& next) {
    auto config = std::make_unique<ServerConfig>(next);
    auto registry = std::make_unique<Registry>(*config, *state_.store, state_.public_key);
    std::lock_guard lock(mutex_);
    registry_ = std::move(registry);  // before the config it refers to goes
    config_ = std::move(config);
  }

  /// The settings session's answer (control/session.h): what the enrolled, enabled client with
  /// this key is told now; nullopt for any other key.
  std::optional<control::Enrollment> settings_for(const crypto::PublicKey& key) {
    std::lock_guard lock(mutex_);
    for (const auto& c : state_.store->clients())
      if (c.public_key == key && !c.revoked() && !c.disabled() && !c.leases.empty()) {
        platform::log_verbose("Settings for %s's session", c.name.c_str());
        return registry_->enrollment_for(c);
      }
    platform::log_verbose("Settings session refused: no enrolled, enabled client has key %s",
                          key.to_base64().c_str());
    return std::nullopt;
  }

  /// The QUIC transport's answer for a client whose key proof verified (runtime/quic_transport.h):
  /// its assignment (what the settings session tells it), or the refusal's code.
  runtime::QuicAuthorization quic_authorization(const crypto::PublicKey& key) {
    runtime::QuicAuthorization a;
    std::lock_guard lock(mutex_);
    for (const auto& c : state_.store->clients()) {
      if (!(c.public_key == key))
        continue;
      if (c.revoked()) {
        a.code = "revoked";
        a.message = "this client was revoked";
      } else if (c.disabled()) {
        a.code = "disabled";
        a.message = "this client is disabled";
      } else if (c.leases.empty()) {
        a.code = "unknown_client";
        a.message = "this client has no addresses";
      } else {
        a.assignment = registry_->enrollment_for(c);
        platform::log_verbose("QUIC: assignment for %s", c.name.c_str());
      }
      return a;
    }
    a.code = "unknown_client";
    a.message = "no enrolled client has this key";
    return a;
  }

  /// Makes the engine's peers exactly the enrolled, non-revoked clients with addresses.
  void sync() {
    std::lock_guard lock(mutex_);
    sync_locked();
  }

  /// Deletes the conntrack entries of addresses that changed hands (server/peer_sync.h).
  /// Any thread; the Conntrack serialises its requests.
  void forget(const std::vector<net::IpAddress>& addresses) {
    if (!conntrack_ || addresses.empty())
      return;
    platform::log_verbose("Freed %s", forget_flows(*conntrack_, addresses).c_str());
  }

  /// Called after every sync (the roster may have changed: revoke, disable, database change);
  /// the relay re-checks its connected nodes. Set before the server runs.
  void set_on_synced(std::function<void()> f) { on_synced_ = std::move(f); }
  /// Called with every client record after every sync and enrollment (mesh mode: the roster
  /// service takes them, server/roster_service.h). Must return at once. Set before the server
  /// runs.
  void set_on_clients(std::function<void(std::vector<ClientRecord>)> f) {
    on_clients_ = std::move(f);
  }

  /// May `key` use the relay: an enrolled client, neither revoked nor disabled (as of the last
  /// sync or enrollment: a lookup, no database read). Any thread.
  bool relay_allowed(const crypto::PublicKey& key) {
    std::lock_guard lock(relay_keys_mutex_);
    return relay_keys_.contains(key);
  }

  control::EnrollReply enroll(const control::EnrollRequest& req) {
    std::lock_guard lock(mutex_);
    control::EnrollReply reply = registry_->enroll(req, unix_now());
    if (!reply.enrollment) {
      platform::log_verbose("Enrollment refused (%s): %s", reply.error_code.c_str(),
                            reply.error_message.c_str());
      return reply;
    }
    wg::ConfigDelta d;
    wg::PeerDelta p;
    p.public_key = req.public_key;
    p.replace_allowed_ips = true;
    p.allowed_ips_add = reply.enrollment->addresses;
    d.peers.push_back(p);
    // Addresses this key does not route yet: whatever flows a former holder left behind go
    // before the new holder's peer exists.
    forget(newly_routed(engine_.snapshot().peers, req.public_key, reply.enrollment->addresses));
    if (auto e = engine_.apply(d); !e) {
      platform::log_error("Cannot add peer %s to the interface: %s", reply.enrollment->name.c_str(),
                          e.message().c_str());
      return control::EnrollReply::failure("internal", "the server could not add the peer");
    }
    ++names_generation_;
    std::string addrs;
    for (const auto& a : reply.enrollment->addresses)
      addrs += " " + a.to_string();
    {
      std::lock_guard relay_lock(relay_keys_mutex_);
      relay_keys_.insert(req.public_key);
    }
    platform::log_verbose("Enrolled %s:%s", reply.enrollment->name.c_str(), addrs.c_str());
    if (on_clients_)
      on_clients_(state_.store->clients());  // before the answer: the node's session may follow
    return reply;
  }

  /// Moves whenever the set of enrolled clients may have changed (enrollment, sync): the DNS
  /// zone of client names is rebuilt when it does. Any thread.
  std::uint64_t names_generation() const { return names_generation_.load(); }

  control::InterfaceStatus status() {
    wg::DeviceSnapshot snap = engine_.snapshot();
    std::vector<ClientRecord> clients = state_.store->clients();
    std::map<crypto::PublicKey, const ClientRecord*> by_key;
    std::set<net::IpAddress> leased;
    for (const auto& c : clients) {
      if (!c.revoked())
        by_key[c.public_key] = &c;
      for (const auto& l : c.leases)
        leased.insert(l.address);
    }
    control::InterfaceStatus s;
    {
      std::lock_guard lock(mutex_);
      s.interface = config_->interface;
    }
    s.role = "server";
    s.public_key = state_.public_key;
    s.listen_port = snap.listen_port;
    const std::int64_t now = unix_now();
    for (const auto& p : snap.peers) {
      control::PeerStatus ps = control::peer_status(p, now);
      if (auto it = by_key.find(p.public_key); it != by_key.end())
        ps.name = it->second->name;
      s.peers.push_back(std::move(ps));
    }
    std::sort(s.peers.begin(), s.peers.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    {
      std::lock_guard lock(mutex_);
      s.pool_v4 = registry_->usage(net::Family::kV4, leased);
      s.pool_v6 = registry_->usage(net::Family::kV6, leased);
    }
    return s;
  }

  /// The scrape (server/metrics.h). `enroll` may be null (not started yet).
  std::string metrics(const control::EnrollServer* enroll,
                      std::optional<control::QuicTransportStatus> quic) {
    MetricsSnapshot m;
    m.status = status();
    m.status.quic = std::move(quic);
    for (std::size_t d = 1; d < static_cast<std::size_t>(wg::Drop::kCount); ++d) {
      const auto drop = static_cast<wg::Drop>(d);
      m.drops.emplace_back(wg::drop_name(drop), engine_.device().drop_count(drop));
    }
    const dataplane::EngineCounters c = engine_.counters();
    m.drops.emplace_back("send_failed", c.send_errors);
    m.drops.emplace_back("handoff_full", c.handoff_dropped);
    for (std::size_t l = 0; l < wg::kHandshakeLanes; ++l) {
      const char* lane = wg::lane_name(static_cast<wg::Lane>(l));
      m.handshake_queue_depth.emplace_back(lane, c.handshakes_queued[l]);
      m.handshake_queue_dropped.emplace_back(lane, c.handshakes_dropped[l]);
    }
    if (enroll) {
      control::EnrollServer::AnswerCounts a = enroll->answer_counts();
      m.enrollments = a.enrolled;
      m.refusals = std::move(a.refused);
    }
    m.version = build_version();
    m.commit = build_commit();
    return render_metrics(m);
  }

  /// Re-syncs the interface when another process committed to the database (revoke, export,
  /// enrollment through the CLI) since the last look.
  void apply_store_changes() {
    const std::int64_t v = state_.store->data_version();
    if (v == store_version_)
      return;
    store_version_ = v;
    sync();
  }

  /// Every second: database changes by others. Every kHeavyMaintenanceEvery seconds also:
  /// handshake times to the store; idle dynamic leases released (and their peers removed).
  void maintain() {
    apply_store_changes();
    if (++rounds_ % kHeavyMaintenanceEvery != 0)
      return;
    wg::DeviceSnapshot snap = engine_.snapshot();
    std::map<crypto::PublicKey, std::int64_t> hs;
    for (const auto& p : snap.peers)
      if (p.last_handshake_sec > 0)
        hs[p.public_key] = p.last_handshake_sec;
    std::vector<std::pair<std::string, std::int64_t>> seen;
    for (const auto& c : state_.store->clients()) {
      auto it = hs.find(c.public_key);
      // Only write when it moved by a minute: the store fsyncs every commit.
      if (it != hs.end() && it->second >= c.last_seen + 60)
        seen.emplace_back(c.name, it->second);
    }
    state_.store->touch(seen);
    const std::int64_t now = unix_now();
    if (now - last_idle_check_ >= kIdleCheckSeconds) {
      last_idle_check_ = now;
      std::lock_guard lock(mutex_);
      auto released = registry_->release_idle(now);
      for (const auto& n : released)
        platform::log_verbose("Released the idle dynamic lease of %s", n.c_str());
      if (!released.empty())
        sync_locked();
    }
  }

 private:
  void sync_locked() {
    ++names_generation_;
    const std::vector<ClientRecord> clients = state_.store->clients();
    {
      std::set<crypto::PublicKey> keys;
      for (const auto& c : clients)
        if (!c.revoked() && !c.disabled())
          keys.insert(c.public_key);
      std::lock_guard lock(relay_keys_mutex_);
      relay_keys_.swap(keys);
    }
    PeerSync plan = plan_peer_sync(clients, engine_.snapshot().peers);
    if (auto e = engine_.apply(plan.delta); !e)
      throw std::runtime_error("cannot update the interface's peers: " + e.message());
    // After the peers are gone, so that none of their packets makes a new entry meanwhile.
    forget(plan.freed);
    if (on_synced_)
      on_synced_();
    if (on_clients_)
      on_clients_(clients);
  }

  std::unique_ptr<ServerConfig> config_;  // guarded by mutex_
  std::unique_ptr<Registry> registry_;    // refers to *config_; guarded by mutex_
  ServerState& state_;
  dataplane::Engine& engine_;
  platform::Conntrack* conntrack_;
  std::function<void()> on_synced_;
  std::function<void(std::vector<ClientRecord>)> on_clients_;
  std::mutex relay_keys_mutex_;
  std::set<crypto::PublicKey> relay_keys_;  // guarded by relay_keys_mutex_
  std::mutex mutex_;
  std::atomic<std::uint64_t> names_generation_{1};
  std::int64_t last_idle_check_ = 0;
  std::int64_t store_version_ = -1;  // main thread only (maintain)
  std::uint64_t rounds_ = 0;         // main thread only (maintain)
};

/// Serves GET /metrics (any path) on a local TCP address, one request at a time.
class MetricsServer {
 public:
  MetricsServer(std::string_view listen, std::function<std::string()> body)
      : listener_(listen_on(listen)), body_(std::move(body)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~MetricsServer() {
    listener_->interrupt();
    thread_.join();
  }

 private:
  static std::unique_ptr<platform::TcpListener> listen_on(std::string_view listen) {
    auto l = platform::tcp_listen(listen);
    if (!l)
      throw control::ControlError("cannot listen on " + std::string(listen) + ": " + l.message());
    return std::move(*l);
  }

  void loop() {
    for (;;) {
      auto c = listener_->accept();
      if (!c && c.code() == ECANCELED)
        return;
      if (!c) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // EMFILE and friends
        continue;
      }
      auto deadline = control::SteadyClock::now() + std::chrono::seconds(2);
      auto req = c->read_until("\r\n\r\n", 8192, deadline);
      if (!req)
        continue;
      std::string body;
      try {
        body = body_();
      } catch (const std::exception&) {
        continue;  // nothing to serve this time; the connection closes
      }
      std::string resp = req->rfind("GET ", 0) == 0
                             ? "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                               "Content-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body
                             : "HTTP/1.0 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";
      (void)c->write_all(resp, deadline);
    }
  }
  std::unique_ptr<platform::TcpListener> listener_;
  std::function<std::string()> body_;
  std::thread thread_;
};

std::string endpoints_text(const std::vector<net::Endpoint>& v) {
  std::string out;
  for (const auto& e : v)
    out += (out.empty() ? "" : " ") + e.to_string();
  return out.empty() ? std::string("none") : out;
}

// The tunnel resolver, its zone kept in step with the registry (server/dns_service.h).
class TunnelDns {
 public:
  TunnelDns(const ServerConfig& config, ServerState& state, Server& server)
      : config_(config), state_(state), server_(server) {}

  Status start(runtime::Runtime& rt) {
    DnsServiceOptions o;
    for (const auto& tn : {config_.ipv4, config_.ipv6}) {
      if (!tn)
        continue;
      o.listen.push_back(tn->server_address);
      o.client_prefixes.push_back(tn->prefix);
    }
    o.upstreams = upstreams();
    generation_ = server_.names_generation();
    auto zone = build_zone();
    if (!zone)
      return zone.error();
    DnsWatcher watcher{
        [&rt](int fd, std::function<void()> fn) { return rt.watch_readable(fd, std::move(fn)); },
        [&rt](int fd) { rt.unwatch(fd); }};
    auto s = DnsService::start(std::move(watcher), std::move(o), std::move(*zone),
                               crypto::SystemRandom::instance(), clock_);
    if (!s)
      return s.error();
    service_ = std::move(*s);
    std::string at;
    for (const auto& tn : {config_.ipv4, config_.ipv6})
      if (tn)
        at += (at.empty() ? "" : ", ") + tn->server_address.to_string();
    platform::log_error("DNS on %s port 53: *.%s from the registry, other names to %s", at.c_str(),
                        config_.dns_domain.c_str(), endpoints_text(service_->upstreams()).c_str());
    if (service_->upstreams().empty())
      platform::log_error(
          "warning: DNS: no upstream resolver (none in /etc/resolv.conf but the server itself, "
          "and no [dns].upstreams): names outside %s get SERVFAIL",
          config_.dns_domain.c_str());
    return ok();
  }

  /// Timeouts; the zone again when the registry changed. On the loop's thread.
  void tick() {
    if (!service_)
      return;
    service_->tick();
    const std::uint64_t g = server_.names_generation();
    if (g == generation_)
      return;
    generation_ = g;
    if (auto z = build_zone())
      service_->set_zone(std::move(*z));
  }

  /// SIGHUP: the host's resolvers may have changed (DHCP, resolvconf).
  void reload() {
    if (!service_)
      return;
    service_->set_upstreams(upstreams());
    platform::log_error("DNS upstreams: %s", endpoints_text(service_->upstreams()).c_str());
  }

 private:
  std::vector<net::Endpoint> upstreams() {
    auto u = dns_upstreams(config_);
    if (!u) {
      platform::log_error("warning: DNS: %s", u.message().c_str());
      return {};
    }
    return std::move(*u);
  }

  Result<dns::Zone> build_zone() {
    std::vector<net::Prefix> prefixes;
    for (const auto& tn : {config_.ipv4, config_.ipv6})
      if (tn)
        prefixes.push_back(tn->prefix);
    return client_zone(state_.store->clients(), config_.dns_domain, std::move(prefixes));
  }

  const ServerConfig& config_;
  ServerState& state_;
  Server& server_;
  platform::SystemClock clock_;
  std::unique_ptr<DnsService> service_;
  std::uint64_t generation_ = 0;
};
}  // namespace

// The interface's MTU: the configured one, capped with [quic] so that every WireGuard message
// fits one QUIC DATAGRAM frame (runtime::kQuicTunnelMtu). Packets routed into the interface
// above it get ICMP "too big" from the kernel, so senders learn the path MTU.
std::uint32_t tunnel_mtu(const ServerConfig& config) {
  const std::uint32_t mtu = config.mtu != 0 ? config.mtu : 1420;
  return config.quic() ? std::min(mtu, runtime::kQuicTunnelMtu) : mtu;
}

int run_server(const ServerConfig& config, ConfigLoader load_config) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "warren server: %s\n", m.c_str());
    return 1;
  };
  // Signals, TUN, workers, engine, UAPI and status sockets, sd_notify and the shutdown order
  // are the shared runtime's; the server runs in the foreground (a service manager's child).
  runtime::RuntimeOptions ro;
  ro.data_plane.interface = config.interface;
  ro.data_plane.mtu = tunnel_mtu(config);
  ro.data_plane.engine.listen_port = config.listen_port;
  ro.data_plane.engine.device.isolate_peers = !config.client_to_client;
  auto created = runtime::Runtime::create(std::move(ro));
  if (!created)
    return fail(created.message());
  runtime::Runtime& rt = **created;
  // Checked before the state is opened, so that a user without the right is told that, not
  // about a file it may not read.
  if (!platform::has_net_admin())
    return fail("creating interface " + config.interface +
                " requires root or CAP_NET_ADMIN (Operation not permitted)");

  // One running server per database: a second one (another config naming the same database,
  // or the same config twice) would allocate from the same pool and manage the same peers.
  const std::string lock_path = config.database + ".lock";
  auto db_lock = platform::FileLock::acquire(lock_path);
  if (!db_lock) {
    if (db_lock.would_block())
      return fail("another warren server is running on the database " + config.database +
                  " (it holds " + lock_path + "); stop it first");
    return fail("cannot lock " + lock_path + ": " + db_lock.message());
  }

  ServerState state;
  try {
    state = open_state(config);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  for (const auto& w : state.warnings)
    platform::log_error("warning: %s", w.c_str());
  // The conntrack table of the server's namespace: a freed tunnel address's flows are deleted
  // (server/peer_sync.h). Without it the server still runs; the operator is told.
  std::unique_ptr<platform::Conntrack> conntrack;
  if (auto ct = platform::open_conntrack())
    conntrack = std::move(*ct);
  else
    platform::log_error(
        "warning: the conntrack entries of revoked or released addresses will not "
        "be deleted: %s",
        ct.message().c_str());

  std::unique_ptr<platform::NetConfig> netcfg;
  std::unique_ptr<Server> server;
  std::unique_ptr<HostSetup> host_changes;  // ip_forward and NAT, journaled (server/host_setup.h)
  std::unique_ptr<control::EnrollServer> enroll;
  std::vector<std::unique_ptr<MetricsServer>> metrics;
  // The STUN responder on [mesh] stun_port (and the alternate port), served by the runtime's
  // event loop (server/stun_responder.h).
  std::unique_ptr<platform::BindFactory> stun_binds;
  std::unique_ptr<platform::Clock> stun_clock;
  std::vector<std::unique_ptr<StunService>> stun;
  std::unique_ptr<TunnelDns> tunnel_dns;          // [dns]: the resolver on the tunnel addresses
  std::atomic<bool> dns_reload_requested{false};  // set by a reload, taken by the DNS tick
  // The relay on [mesh] relay_port (server/relay_service.h), on its own thread.
  std::unique_ptr<RelayService> relay;
  // Mesh mode: the roster and its deltas on the settings sessions (server/roster_service.h).
  std::unique_ptr<RosterService> roster;

  runtime::Hooks hooks;
  // [quic]: the QUIC listener presents the control channel's certificate (clients pin it from
  // the invite) and answers proven keys from the registry (runtime/quic_transport.h).
  std::unique_ptr<WireGuardPortStun> wg_port_stun;
  if (config.quic()) {
    auto listen = net::split_host_port(config.quic_listen.front());
    auto cert = platform::read_file(config.tls_cert_file());
    auto key = platform::read_file(config.tls_key_file());
    if (!cert.ok() || !key.ok())
      return fail("[quic]: cannot read the control certificate: " +
                  (cert.ok() ? key.message() : cert.message()));
    auto identity = quic::ServerIdentity::from_pem(*cert, *key);
    // The stateless reset secret: a function of the TLS key, so a restarted server (same
    // key) recognises its predecessor's connections and resets them.
    Secret<32> reset_secret;
    static constexpr std::string_view kResetLabel = "warren quic stateless reset v1";
    crypto::hmac_blake2s(
        ConstBytes(reinterpret_cast<const std::uint8_t*>(key->data()), key->size()),
        {ConstBytes(reinterpret_cast<const std::uint8_t*>(kResetLabel.data()), kResetLabel.size())},
        reset_secret.span());
    secure_zero(key->data(), key->size());
    if (!identity.ok())
      return fail("[quic]: " + identity.message());
    runtime::QuicServerConfig q;
    q.port = listen->port;
    q.identity = *identity;
    q.reset_secret = std::move(reset_secret);
    q.authorize = [&](const crypto::PublicKey& k) { return server->quic_authorization(k); };
    hooks.quic_server = std::move(q);
  }
  hooks.tun_created = [&](std::uint32_t ifindex) -> Status {
    auto n = platform::open_net_config();
    if (!n.ok())
      return Error(n.code(), "cannot open rtnetlink: " + n.message());
    netcfg = std::move(*n);
    for (const auto& tn : {config.ipv4, config.ipv6}) {
      if (!tn)
        continue;
      if (auto s = netcfg->add_address(ifindex, tn->interface_address());
          !s.ok() && s.code() != EEXIST)
        return Error(s.code(), "cannot add address " + tn->interface_address().to_string() +
                                   " to " + config.interface + ": " + s.message());
    }
    return {};
  };
  hooks.configure = [&](dataplane::Engine& engine) -> Status {
    wg::ConfigDelta d;
    d.private_key = state.private_key;
    if (auto e = engine.apply(d); !e)
      return Error(e.code(), "cannot set the private key: " + e.message());
    server = std::make_unique<Server>(config, state, engine, conntrack.get());
    if (config.quic()) {
      // The QUIC fallback's UDP probe (runtime/udp_probe.h) is answered on the WireGuard port.
      const std::uint64_t seed =
          (std::uint64_t{crypto::SystemRandom::instance().next_u32()} << 32) |
          crypto::SystemRandom::instance().next_u32();
      wg_port_stun = std::make_unique<WireGuardPortStun>(
          [&engine](const net::Endpoint& to, ConstBytes datagram) {
            engine.send_datagram(to, datagram);
          },
          seed);
      engine.set_stun_sink(wg_port_stun.get());
    }
    try {
      server->sync();  // every enrolled peer, as stored
      // Addresses freed while no server ran (a CLI revoke, an idle release before a stop):
      // their holders' flows may still be in the table; nobody holds them now.
      std::vector<Quarantined> quarantined;
      state.store->read([&](StoreTxn& t) { quarantined = t.quarantined(); });
      std::vector<net::IpAddress> addresses;
      for (const auto& q : quarantined)
        addresses.push_back(q.address);
      server->forget(addresses);
    } catch (const std::exception& e) {
      return Error(EIO, e.what());
    }
    if (auto s = netcfg->set_up(rt.ifindex(), true); !s.ok())
      return Error(s.code(), "cannot bring " + config.interface + " up: " + s.message());
    return {};
  };
  hooks.started = [&]() -> Status {
    // Forwarding and NAT (server/host_setup.h): journaled; a crashed run's journal is replayed
    // first. Undone in `stopping`.
    auto h = HostSetup::start(config);
    if (!h)
      return h.error();
    host_changes = std::move(*h);
    try {
      enroll = std::make_unique<control::EnrollServer>(
          state.tls, config.control_listen,
          [&](const control::EnrollRequest& r) { return server->enroll(r); });
      enroll->set_session_handler(
          [&](const crypto::PublicKey& key) { return server->settings_for(key); });
      if (config.mesh) {
        roster = std::make_unique<RosterService>(
            config.mesh_plan,
            [e = enroll.get()](SessionId s, std::shared_ptr<const std::string> m) {
              e->send_to_session(s, std::move(m));
            },
            [](const std::string& line) { platform::log_verbose("%s", line.c_str()); });
        control::SessionEvents events;
        events.on_message = [r = roster.get()](SessionId s, const crypto::PublicKey& k,
                                               std::string_view type, std::string_view m) {
          r->on_session_message(s, k, type, m);
        };
        events.on_closed = [r = roster.get()](SessionId s) { r->on_session_closed(s); };
        enroll->set_session_events(std::move(events));
        server->set_on_clients(
            [r = roster.get()](std::vector<ClientRecord> c) { r->clients_changed(std::move(c)); });
        roster->clients_changed(state.store->clients());
        roster->start();
        platform::log_verbose(
            "Mesh coordinator: %s %s, domain %s", config.mesh_plan.v4_prefix().to_string().c_str(),
            config.mesh_plan.v6_prefix().to_string().c_str(), config.mesh_domain.c_str());
      }
      enroll->start();
      for (const auto& address : config.metrics_listen)
        metrics.push_back(std::make_unique<MetricsServer>(
            address, [&] { return server->metrics(enroll.get(), rt.quic_status()); }));
    } catch (const std::exception& e) {
      return Error(EIO, e.what());
    }
    if (config.relay_port != 0) {
      RelayServiceOptions relay_options;
      relay_options.switchboard.rate_bytes = config.relay_rate;
      relay_options.switchboard.rate_frames = config.relay_frame_rate;
      relay_options.max_connections_per_source = config.relay_connections_per_source;
      // On the host of the first enrollment listen address ([::] serves both families).
      auto host = control::split_host_port(config.control_listen.front())->host;
      const std::string listen = net::HostPort{host, config.relay_port}.to_string();
      try {
        relay = std::make_unique<RelayService>(
            state.tls, listen, [&](const crypto::PublicKey& k) { return server->relay_allowed(k); },
            relay_options);
        relay->start();
      } catch (const std::exception& e) {
        return Error(EIO, e.what());
      }

      platform::log_verbose("Relay on TCP %s", listen.c_str());
    }
    // After every sync (revoke, disable, a database change): the relay re-checks its nodes, and
    // a QUIC client that may no longer connect is cut off at once.
    if (relay || rt.quic()) {
      server->set_on_synced([r = relay.get(), q = rt.quic(), s = server.get()] {
        if (r)
          r->revalidate();
        if (q)
          for (const auto& k : q->connected_keys())
            if (!s->relay_allowed(k))
              q->disconnect(k);
      });
    }
    std::vector<std::uint16_t> stun_ports;
    if (config.stun_port)
      stun_ports.push_back(*config.stun_port);
    if (config.stun_alternate_port)
      stun_ports.push_back(*config.stun_alternate_port);
    if (!stun_ports.empty()) {
      stun_binds = platform::make_system_bind_factory();
      stun_clock = std::make_unique<platform::SystemClock>();
    }
    for (const std::uint16_t port : stun_ports) {
      const std::uint64_t seed =
          (std::uint64_t{crypto::SystemRandom::instance().next_u32()} << 32) |
          crypto::SystemRandom::instance().next_u32();
      auto svc = StunService::open(*stun_binds, *stun_clock, port, seed);
      if (!svc.ok())
        return svc.error();
      StunService* p = svc->get();
      stun.push_back(std::move(*svc));
      for (std::size_t i = 0; i < p->socket_count(); ++i) {
        if (auto w = rt.watch_readable(p->poll_fd(i), [p, i] { p->on_readable(i); }); !w)
          return Error(w.code(), "cannot watch the STUN port: " + w.message());
      }
      platform::log_verbose("STUN responder on UDP port %u", static_cast<unsigned>(port));
    }
    if (config.dns_enabled) {
      tunnel_dns = std::make_unique<TunnelDns>(config, state, *server);
      if (auto s = tunnel_dns->start(rt); !s) {
        tunnel_dns.reset();
        if (config.dns_required)
          return s;
        // On by default only because [clients].dns names this address: another resolver may
        // serve it already (a dnsmasq on the host's wildcard address), and the tunnel must not
        // fail for that.
        platform::log_error(
            "warning: %s; the server answers no DNS (another resolver there? [dns] enabled = "
            "false silences this, enabled = true makes it an error)",
            s.message().c_str());
      }
    }
    return {};
  };
  hooks.status = [&] {
    control::InterfaceStatus s = server->status();
    if (relay) {
      const RelayCounters r = relay->counters();
      const auto& b = r.switchboard;
      control::RelayStatus rs;
      rs.port = relay->port();
      rs.connections = r.connections;
      rs.nodes = r.nodes;
      rs.forwarded_frames = b.forwarded_frames;
      rs.forwarded_bytes = b.forwarded_bytes;
      rs.drops = {{"unknown_destination", b.drop_unknown_destination},
                  {"rate_limited", b.drop_rate_limited},
                  {"queue_full", b.drop_queue_full},
                  {"auth_required", b.drop_auth_required},
                  {"auth_failed", b.auth_failed},
                  {"auth_timeout", b.auth_timeouts},
                  {"protocol_error", b.protocol_errors},
                  {"overflow_closed", b.overflow_closed},
                  {"replaced", b.replaced},
                  {"revoked", b.revoked},
                  {"refused_connection", r.refused_connections},
                  {"hello_timeout", r.hello_timeouts},
                  {"udp_auth_refused", r.udp_auth_refused}};
      s.relay = std::move(rs);
    }
    return s;
  };
  hooks.status_options.commands["sync"] = [&](std::string_view) {
    server->sync();
    return std::string("ok\n");
  };
  hooks.stopping = [&]() -> Status {
    tunnel_dns.reset();
    for (auto& svc : stun) {
      for (std::size_t i = 0; i < svc->socket_count(); ++i)
        rt.unwatch(svc->poll_fd(i));
    }
    stun.clear();
    if (relay)
      relay->stop();  // kept until the end: a late sync() may still call revalidate()
    metrics.clear();
    if (enroll)
      enroll->stop();
    if (roster)
      roster->stop();  // after the enrollment server (no more events); kept for late syncs
    host_changes.reset();
    return {};
  };
  // Reload (SIGHUP on the main thread, "reload" on the status socket's thread; one at a time):
  // the peers are made the database's again, then the config file is read again and what can
  // change live does (server/reload.h). A file that does not parse changes nothing.
  std::mutex reload_mutex;
  auto reload = [&](const char* via) -> std::pair<bool, std::string> {
    std::lock_guard reload_lock(reload_mutex);
    std::vector<std::string> lines, errors;
    // The tunnel resolver re-reads the host's resolvers on the loop's thread (its next tick):
    // this may run on the status socket's thread.
    dns_reload_requested = true;
    try {
      server->sync();
      platform::log_error("Reloaded (%s): peers re-synced from the database, %zu peer(s)", via,
                          rt.engine().snapshot().peers.size());
    } catch (const std::exception& e) {
      errors.push_back(std::string("peers not re-synced: ") + e.what());
    }
    ServerConfig loaded;
    try {
      loaded = load_config ? load_config() : server->config();
    } catch (const std::exception& e) {
      platform::log_error("Reload (%s) refused, nothing changed: %s", via, e.what());
      return {false, std::string("error: ") + e.what() + "\nnothing changed\n"};
    }
    const ServerConfig running = server->config();
    ReloadPlan plan = plan_reload(running, loaded);
    if (plan.log_changed && !std::getenv("LOG_LEVEL"))
      platform::log_set_level(platform::parse_log_level(plan.next.log_level.value_or("verbose"))
                                  .value_or(platform::LogLevel::kVerbose));
    server->set_config(plan.next);
    if (plan.mtu_changed)
      if (auto st = netcfg->set_mtu(rt.ifindex(), tunnel_mtu(plan.next)); !st.ok())
        errors.push_back("interface.mtu: cannot set " + std::to_string(plan.next.mtu) + " on " +
                         running.interface + ": " + st.message());
    if (plan.isolation_changed)
      rt.engine().device().set_isolate_peers(!plan.next.client_to_client);
    if (plan.host_changed) {
      // One journal per interface: the old steps are undone before the new ones are taken.
      host_changes.reset();
      auto h = HostSetup::start(plan.next);
      if (h) {
        host_changes = std::move(*h);
      } else {
        errors.push_back("nat: " + h.error().text());
        if (auto back = HostSetup::start(running))
          host_changes = std::move(*back);
        else
          errors.push_back("nat: cannot restore the previous NAT either: " + back.error().text());
      }
    }
    if (plan.metrics_changed) {
      metrics.clear();
      try {
        for (const auto& address : plan.next.metrics_listen)
          metrics.push_back(std::make_unique<MetricsServer>(
              address, [&] { return server->metrics(enroll.get(), rt.quic_status()); }));
      } catch (const std::exception& e) {
        errors.push_back(std::string("metrics: ") + e.what());
      }
    }
    if (plan.clients_changed && enroll)
      enroll->settings_changed();
    lines = describe(plan);
    for (const auto& e : errors)
      lines.push_back("failed: " + e);
    std::string text;
    for (const auto& l : lines) {
      platform::log_error("Reload (%s): %s", via, l.c_str());
      text += l + "\n";
    }
    return {errors.empty(), text};
  };
  hooks.reload = [&] { (void)reload("SIGHUP"); };
  hooks.status_options.commands["reload"] = [&](std::string_view) {
    auto [ok, text] = reload("reload command");
    return (ok ? "ok\n" : "failed\n") + text;
  };

  if (auto s = rt.start(std::move(hooks)); !s)
    return fail(s.message());
  platform::log_error("Server %s up: UDP port %u, enrollment on %s (certificate %s), %zu peer(s)",
                      config.interface.c_str(), static_cast<unsigned>(rt.engine().port()),
                      joined(config.control_listen).c_str(),
                      control::fingerprint_to_hex(state.tls.fingerprint()).substr(0, 16).c_str(),
                      rt.engine().snapshot().peers.size());
  rt.report_ready();
  rt.add_timer(kMaintenanceInterval, [&] {
    try {
      server->maintain();
    } catch (const std::exception& e) {
      platform::log_error("Maintenance failed: %s", e.what());
    }
  });
  if (tunnel_dns)  // upstream timeouts (1.5 s each) are noticed within this
    rt.add_timer(std::chrono::milliseconds(250), [&] {
      if (dns_reload_requested.exchange(false))
        tunnel_dns->reload();
      tunnel_dns->tick();
    });
  const int rc = rt.run();
  platform::log_verbose("Shut down");
  return rc;
}

}  // namespace warren::server
