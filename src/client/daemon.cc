#include "client/daemon.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "client/mesh_names.h"
#include "client/mesh_node.h"
#include "client/plan.h"
#include "client/reconnect.h"
#include "client/resolve.h"
#include "client/settings.h"
#include "client/standby.h"
#include "control/session.h"
#include "control/status.h"
#include "crypto/random.h"
#include "dataplane/engine.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/notifier.h"
#include "platform/process.h"
#include "runtime/runtime.h"
#include "wg/constants.h"

namespace warren::client {
namespace {

constexpr auto kWatchInterval = std::chrono::seconds(1);
constexpr auto kDownTimeout = std::chrono::seconds(20);

bool process_is_warren(int pid) {
  auto cmdline = platform::process_command_line(pid);
  if (!cmdline)
    return false;
  const std::string& cmd = *cmdline;
  // argv: .../warren up ... (or join, which becomes the same daemon)
  return cmd.find("warren") != std::string::npos &&
         (cmd.find(std::string("\0up\0", 4)) != std::string::npos ||
          cmd.find(std::string("\0join\0", 6)) != std::string::npos);
}

// One peer the reconnect loop looks after: its index in the config and its watch.
// A name resolution running on its own thread, so that a slow resolver (its DNS server may
// be reachable only through the tunnel that is down) never blocks signals or the other peers.
// Shared with the detached thread; abandoned, not joined, at shutdown.
struct PendingResolve {
  std::mutex mu;
  bool done = false;  // guarded by mu
  std::optional<net::Endpoint> endpoint;
  std::string error;
};

struct WatchedPeer {
  std::size_t index;
  PeerWatch watch;
  std::shared_ptr<PendingResolve> pending;
  bool reload = false;  ///< `pending` is a SIGHUP's re-resolution, not a reconnect's
};

class Daemon {
 public:
  Daemon(const ClientConfig& c, const DaemonOptions& o, std::function<std::uint32_t()> ifindex)
      : config_(c), options_(o), rt_ifindex_(std::move(ifindex)) {}

  /// Mesh mode: the runtime whose STUN results and loop the mesh part uses.
  void set_runtime(runtime::Runtime* rt) { rt_ = rt; }

  // The runtime does the data plane; these are the client's parts of its start-up and
  // shutdown (see the top of daemon.h for the order).
  runtime::Hooks hooks() {
    runtime::Hooks h;
    h.configure = [this](dataplane::Engine& e) { return configure(e); };
    h.started = [this] {
      auto s = set_up_host();
      if (s)
        s = start_names();
      if (s)
        start_session();
      return s;
    };
    h.status = [this] { return status(); };
    h.stopping = [this] {
      if (session_)
        session_->stop();  // no settings arrive while the host steps are undone
      names_.reset();      // its sockets, before its addresses go
      return roll_back();
    };
    h.reload = [this] { reresolve(); };
    standby_.add_commands(h.status_options, options_.control_group);
    h.quic_client = quic_client();
    return h;
  }

  void start_watch(runtime::Runtime& rt) {
    if (auto s = standby_.watch(rt, rt.ifindex()); !s)
      platform::log_error("Pause on link down is off: %s", s.message().c_str());
    rt.add_timer(kWatchInterval, [this] {
      if (names_)
        names_->tick();
      watch_peers();
      apply_pushed_settings();
      report_endpoints();
      cycle_candidates();
    });
    if (mesh_) {
      // Roster deltas are applied as soon as they arrive (the 2 s propagation budget), on
      // the loop's thread; the session's thread only queues them.
      if (auto st = rt.watch_readable(roster_ready_.fd(), [this] { apply_roster(); }); !st)
        platform::log_error("mesh: cannot watch the roster queue: %s", st.message().c_str());
    }
  }

 private:
  // The peers with their endpoints resolved now; names that do not resolve yet are retried
  // by the reconnect watch.
  Status configure(dataplane::Engine& engine) {
    engine_ = &engine;
    for (const auto& p : config_.peers) {
      std::optional<net::Endpoint> ep;
      if (p.endpoint) {
        std::string err;
        ep = resolve_endpoint(*p.endpoint, err);
        if (!ep)
          platform::log_error("Cannot resolve %s now (%s); will keep trying",
                              p.endpoint->to_string().c_str(), err.c_str());
      }
      resolved_.push_back(ep);
    }
    wg::ConfigDelta delta = make_delta(config_, resolved_);
    // Transport = quic: the server peer is on the QUIC path from its first packet, so nothing,
    // not even the first handshake, goes to the server's WireGuard port (a network that
    // fingerprints WireGuard sees none). The runtime added the transport before this hook.
    if (rt_ && rt_->quic() && effective_transport(config_) == Transport::kQuic &&
        !config_.peers.empty()) {
      for (auto& pd : delta.peers) {
        if (!(pd.public_key == config_.peers.front().public_key))
          continue;
        pd.endpoint = rt_->quic()->endpoint_for(pd.public_key);
        pd.transport = rt_->quic_tag();
      }
    }
    if (auto e = engine_->apply(delta); !e)
      return Error(e.code(), "cannot configure the device: " + e.message());
    if (config_.mesh) {
      auto plan = mesh::AddressPlan::create(config_.mesh->prefix_v4, config_.mesh->prefix_v6);
      if (!plan)
        return plan.error().with_context("the config's mesh prefixes");
      // The coordinator is the enrollment's [Peer]; the roster never touches it.
      const crypto::PublicKey coordinator =
          config_.peers.empty() ? crypto::PublicKey{} : config_.peers.front().public_key;
      mesh_ = std::make_unique<MeshNode>(*plan, crypto::derive_public_key(config_.private_key),
                                         coordinator);
    }
    states_.assign(config_.peers.size(), PeerState::kConnecting);
    for (std::size_t i = 0; i < config_.peers.size(); ++i)
      if (config_.peers[i].endpoint)
        watched_.push_back(WatchedPeer{
            i, PeerWatch(options_.dead_after, BackoffOptions{}, crypto::SystemRandom::instance()),
            nullptr, false});
    return {};
  }

  // Addresses, MTU, link, routes, rules, DNS: journaled, undone by roll_back().
  Status set_up_host() {
    auto sys = host::make_system();
    if (!sys)
      return sys.error();
    system_ = std::move(*sys);
    dns_method_ = options_.dns ? *options_.dns : detect_dns_method(*system_);
    if (mesh_) {
      // The host's resolvers as they are before our DNS step: where the responder forwards.
      auto u = read_mesh_upstreams(config_, dns_method_, PlanOptions{}.resolv_conf,
                                   mesh_->roster().plan());
      if (!u)
        platform::log_error("warning: mesh DNS: %s", u.message().c_str());
      names_upstreams_ = u ? std::move(*u) : std::vector<net::Endpoint>{};
    }
    return bring_up_host(config_, created_mtu());
  }

  // Mesh mode: the DNS responder on the addresses the set-up just added (mesh_names.h).
  Status start_names() {
    if (!mesh_ || !rt_)
      return ok();
    runtime::DnsWatcher watcher{[rt = rt_](int fd, std::function<void()> fn) {
                                  return rt->watch_readable(fd, std::move(fn));
                                },
                                [rt = rt_](int fd) { rt->unwatch(fd); }};
    MeshNames::Options o{mesh_->roster().plan(), config_.mesh->domain, names_upstreams_};
    auto n = MeshNames::start(std::move(watcher), std::move(o), mesh_->roster(),
                              crypto::SystemRandom::instance(), clock_);
    if (!n)
      return n.error().with_context("mesh DNS");
    names_ = std::move(*n);
    platform::log_verbose(
        "mesh DNS on %s and %s port 53: *.%s from the roster, other names to "
        "%zu upstream(s)",
        mesh_->roster().plan().dns_v4().to_string().c_str(),
        mesh_->roster().plan().dns_v6().to_string().c_str(), config_.mesh->domain.c_str(),
        names_upstreams_.size());
    return ok();
  }

  Status bring_up_host(const ClientConfig& config, std::uint32_t current_mtu) {
    PlanOptions po;
    po.state_dir = options_.state_dir;
    po.dns = dns_method_;
    for (const auto& ep : resolved_)
      if (ep)
        po.endpoints.push_back(ep->address);
    auto up = bring_up(*system_, config, rt_ifindex_(), current_mtu, po,
                       journal_path(options_, config.interface));
    if (!up)
      return up.error();
    setup_ = std::move(*up);
    return {};
  }

  // The QUIC transport to the server (runtime/quic_transport.h, issue 15), when the config
  // has a QuicEndpoint and Transport is not wireguard. The server's certificate is pinned with
  // the control channel's pin (the same certificate); the assignment it sends is applied as
  // pushed settings are. Without a ControlPin there is nothing to pin: QUIC stays off.
  std::optional<runtime::Hooks::QuicClient> quic_client() {
    if (!may_use_quic(config_) || config_.peers.empty())
      return std::nullopt;
    auto pin = control::fingerprint_from_hex(config_.control_pin);
    if (!pin) {
      platform::log_error(
          "QUIC transport off: the config has no #@warren ControlPin to pin "
          "the server's certificate with (join writes it)");
      return std::nullopt;
    }
    runtime::Hooks::QuicClient q;
    q.config.endpoint = config_.quic_endpoint->to_string();
    q.config.pin = *pin;
    q.config.server_key = config_.peers.front().public_key;
    q.config.on_assignment = [this](const control::Enrollment& e) {
      std::lock_guard lock(pushed_mutex_);
      pushed_ = e;
    };
    q.mode = effective_transport(config_) == Transport::kQuic
                 ? runtime::TransportChoice::Mode::kQuic
                 : runtime::TransportChoice::Mode::kAuto;
    return q;
  }

  // The settings session (control/session.h), when join recorded the server's control
  // endpoint and certificate pin. Its thread only hands messages over (pushed_); the watch
  // timer applies them on the loop's thread.
  void start_session() {
    if (config_.server_name.empty() || config_.control_pin.empty()) {
      platform::log_verbose(
          "No settings session: the config names no #@warren Server and "
          "ControlPin (join writes them)");
      return;
    }
    auto pin = control::fingerprint_from_hex(config_.control_pin);
    if (!pin)
      return;
    control::SessionClientOptions so;
    so.control_endpoint = config_.server_name;
    so.fingerprint = *pin;
    session_ = std::make_unique<control::SessionClient>(
        so, config_.private_key,
        [this](const control::Enrollment& e) {
          std::lock_guard lock(pushed_mutex_);
          pushed_ = e;
        },
        [](const std::string& m) { platform::log_verbose("%s", m.c_str()); });
    if (mesh_) {
      session_->set_mesh_callbacks(
          [this] {
            // A new session: ask for what changed since the version we hold, and report our
            // endpoints again (the coordinator may have restarted).
            session_->send(
                control::roster_request_to_json(control::RosterRequest{roster_version_.load()}));
            // The endpoints go out from the loop thread at once, not at the next watch tick.
            report_now_ = true;
            roster_ready_.set();
          },
          [this](Result<mesh::RosterDelta> delta) {
            std::lock_guard lock(roster_mutex_);
            roster_queue_.push_back(std::move(delta));
            roster_ready_.set();
          });
    }
    session_->start();
  }

  // Loop thread: the latest pushed settings, if they change anything. Routes, DNS and MTU
  // redo the journaled host steps as one unit (rollback of the old set, then the new set;
  // the journal always lists exactly what is applied, so a crash in between replays cleanly);
  // if the new set fails, the old one is brought back.
  void apply_pushed_settings() {
    if (standby_.paused())
      return;  // kept in pushed_ until the resume: a paused set-up is not redone
    std::optional<control::Enrollment> e;
    {
      std::lock_guard lock(pushed_mutex_);
      e.swap(pushed_);
    }
    if (!e)
      return;
    auto change = settings_change(config_, *e);
    if (!change)
      return;
    for (const auto& c : change->changes)
      platform::log_error("Settings from the server: %s", c.c_str());
    for (const auto& i : change->ignored)
      platform::log_error("Settings from the server: not applied: %s", i.c_str());
    const PeerConfig* next_peer = nullptr;
    for (const auto& p : change->next.peers)
      if (p.public_key == e->server_public_key)
        next_peer = &p;
    if (change->peer && next_peer) {
      wg::ConfigDelta d;
      wg::PeerDelta pd;
      pd.public_key = next_peer->public_key;
      pd.update_only = true;
      pd.replace_allowed_ips = true;
      pd.allowed_ips_add = next_peer->allowed_ips;
      pd.persistent_keepalive = next_peer->persistent_keepalive;
      d.peers.push_back(std::move(pd));
      if (auto st = engine_->apply(d); !st) {
        platform::log_error("Settings from the server: cannot update the peer: %s",
                            st.message().c_str());
        return;
      }
    }
    if (change->host && setup_) {
      // After the rollback the link has the MTU it was created with again.
      const std::uint32_t old_mtu = created_mtu();
      if (auto st = roll_back(); !st) {
        platform::log_error("Settings from the server: cannot undo the old set-up: %s",
                            st.message().c_str());
        return;
      }
      if (auto st = bring_up_host(change->next, old_mtu); !st) {
        platform::log_error("Settings from the server: %s; keeping the previous settings",
                            st.message().c_str());
        if (auto back = bring_up_host(config_, old_mtu); !back)
          platform::log_error("Settings from the server: cannot restore the previous set-up: %s",
                              back.message().c_str());
        return;
      }
    }
    // Only the fields the status thread does not read change (status() reads the name, the
    // addresses and the peers' keys).
    config_.dns_servers = change->next.dns_servers;
    config_.mtu = change->next.mtu;
    // QUIC (issue 15): recorded here; the transport choice reads them (change->transport).
    config_.quic_endpoint = change->next.quic_endpoint;
    config_.transport = change->next.transport;
    for (std::size_t i = 0; i < config_.peers.size(); ++i) {
      config_.peers[i].allowed_ips = change->next.peers[i].allowed_ips;
      config_.peers[i].persistent_keepalive = change->next.peers[i].persistent_keepalive;
    }
  }

  // Loop thread: the queued roster deltas, in order, into the engine (mesh_node.h).
  void apply_roster() {
    std::vector<Result<mesh::RosterDelta>> queue;
    {
      std::lock_guard lock(roster_mutex_);
      queue.swap(roster_queue_);
      roster_ready_.clear();
    }
    if (!mesh_)
      return;
    for (const auto& delta : queue) {
      MeshNode::Update u = mesh_->on_delta(delta);
      for (const auto& line : u.log)
        platform::log_verbose("%s", line.c_str());
      if (!u.keepalive_off.peers.empty())
        if (auto st = engine_->apply(u.keepalive_off); !st)
          platform::log_error("mesh: cannot apply the roster to the device: %s",
                              st.message().c_str());
      if (!u.engine.peers.empty())
        if (auto st = engine_->apply(u.engine); !st)
          platform::log_error("mesh: cannot apply the roster to the device: %s",
                              st.message().c_str());
      if (u.request_snapshot && session_)
        session_->send(control::roster_request_to_json(control::RosterRequest{0}));
    }
    if (report_now_)
      report_endpoints();
    if (names_ && mesh_->version() != roster_version_)
      if (auto st = names_->update(mesh_->roster()); !st)
        platform::log_error("mesh DNS: %s", st.message().c_str());
    roster_version_ = mesh_->version();
    std::map<crypto::PublicKey, std::string> names;
    for (const auto& [key, e] : mesh_->roster().nodes())
      names.emplace(key, e.name);
    std::lock_guard lock(states_mutex_);
    mesh_names_ = std::move(names);
  }

  // Loop thread, every second: this node's candidates (local addresses of the other links with
  // the WireGuard port; the reflexive endpoint STUN learned), sent when they changed or a new
  // session began.
  void report_endpoints() {
    if (!mesh_ || !session_ || !system_)
      return;
    auto listed = system_->net().list_link_addresses();
    if (!listed) {
      platform::log_error("mesh: cannot list this host's addresses: %s", listed.message().c_str());
      return;
    }
    MeshEndpoints now;
    now.local = local_candidates(*listed, rt_ifindex_(), engine_->snapshot().listen_port,
                                 mesh_->roster().plan());
    if (rt_ && rt_->stun())
      for (const auto& srv : rt_->stun()->status().servers)
        if (srv.state == "ok" && !srv.reflexive.empty() && !now.reflexive)
          now.reflexive = net::Endpoint::parse(srv.reflexive);
    const bool changed = mesh_->endpoints_changed(now);
    if (!changed && !report_now_.exchange(false))
      return;
    report_now_ = false;
    const std::string reflexive =
        now.reflexive ? ", reflexive " + now.reflexive->to_string() : std::string();
    platform::log_verbose("mesh: reporting %zu local endpoint(s)%s", now.local.size(),
                          reflexive.c_str());
    session_->send(control::endpoints_to_json(now));
  }

  // Loop thread, every second: a mesh peer without a session yet tries its next candidate
  // (mesh_node.h, CandidateCycler).
  void cycle_candidates() {
    if (!mesh_)
      return;
    std::vector<CandidateCycler::Peer> peers;
    for (const auto& p : engine_->snapshot().peers) {
      auto c = mesh_->candidates(p.public_key);
      if (!c.empty())
        peers.push_back({p.public_key, std::move(c), p.endpoint, p.endpoint_transport, p.rx_packets,
                         p.has_session});
    }
    wg::ConfigDelta d;
    d.peers = cycler_.tick(peers, clock_.now().mono);
    if (d.peers.empty())
      return;
    for (const auto& pd : d.peers) {
      const mesh::NodeEntry* e = mesh_->roster().find(pd.public_key);
      platform::log_verbose("mesh: no handshake with %s yet; trying its candidate %s",
                            e ? e->name.c_str() : "?", pd.endpoint->to_string().c_str());
    }
    if (auto st = engine_->apply(d); !st)
      platform::log_error("mesh: cannot move a peer to its next candidate: %s",
                          st.message().c_str());
  }

  // Rules and DNS go while the TUN still exists (the runtime removes the socket and the TUN
  // after this).
  Status roll_back() {
    std::string errors;
    if (setup_) {
      for (const auto& e : setup_->rollback()) {
        std::fprintf(stderr, "warren: %s\n", e.text().c_str());
        errors += (errors.empty() ? "" : "; ") + e.text();
      }
      setup_.reset();
    }
    standby_.forget();  // what a pause took back is undone already
    if (!errors.empty())
      return Error(EIO, errors);
    return {};
  }

  // SIGHUP: every peer endpoint given as a name is resolved again now, and the peer's
  // endpoint follows when the name moved (no handshake is forced; the session carries on).
  void reresolve() {
    std::size_t n = 0;
    for (auto& w : watched_) {
      const PeerConfig& pc = config_.peers[w.index];
      if (net::IpAddress::parse(pc.endpoint->host) || w.pending)
        continue;
      w.pending = resolve_async(*pc.endpoint);
      w.reload = true;
      ++n;
    }
    platform::log_verbose("Reload (SIGHUP): resolving %zu peer name(s) again", n);
  }

 public:
  // Runs on the status server's thread: the engine snapshot is thread-safe; the watch states
  // are copied under states_mutex_.
  control::InterfaceStatus status() {
    control::InterfaceStatus s;
    s.interface = config_.interface;
    s.role = "client";
    s.state = standby_.state();
    s.paused_by = standby_.paused_by();
    const wg::DeviceSnapshot snap = engine_->snapshot();
    if (snap.private_key)
      s.public_key = crypto::derive_public_key(*snap.private_key);
    s.listen_port = snap.listen_port;
    std::lock_guard lock(states_mutex_);
    for (const auto& p : snap.peers) {
      control::PeerStatus ps = control::peer_status(p, 0);
      if (auto it = mesh_names_.find(p.public_key); it != mesh_names_.end()) {
        // A mesh peer from the roster: its name there; its addresses are its allowed IPs.
        ps.name = it->second;
        ps.addresses = p.allowed_ips;
        ps.path = p.endpoint_transport != 0                 ? "relay"
                  : p.last_handshake_sec != 0 && p.endpoint ? "direct"
                                                            : "none";
        s.peers.push_back(std::move(ps));
        continue;
      }
      ps.name = config_.server_name;
      ps.addresses = config_.addresses;  // ours, inside this tunnel
      ps.state = "connecting";
      for (std::size_t i = 0; i < config_.peers.size() && i < states_.size(); ++i)
        if (config_.peers[i].public_key == p.public_key)
          ps.state = peer_state_name(states_[i]);
      s.peers.push_back(std::move(ps));
    }
    return s;
  }

 private:
  void watch_peers() {
    if (watched_.empty())
      return;
    const wg::DeviceSnapshot snap = engine_->snapshot();
    const Now now = clock_.now();
    for (auto& w : watched_) {
      const PeerConfig& pc = config_.peers[w.index];
      const wg::PeerSnapshot* ps = nullptr;
      for (const auto& p : snap.peers)
        if (p.public_key == pc.public_key)
          ps = &p;
      if (!ps)
        continue;  // removed over UAPI by the operator: leave it alone
      if (ps->endpoint_transport != dataplane::kUdpTransport)
        continue;  // QUIC or the relay carries it now: that transport reconnects, not we
      if (w.pending) {
        std::unique_lock lock(w.pending->mu);
        if (!w.pending->done)
          continue;  // still resolving; the attempt happens when it is done
        auto ep = w.pending->endpoint;
        auto err = w.pending->error;
        lock.unlock();
        w.pending.reset();
        if (w.reload) {
          w.reload = false;
          follow_name(pc, *ps, ep, err);
          continue;
        }
        if (!ep) {
          platform::log_error("Reconnect: cannot resolve %s (%s); trying its last address",
                              pc.endpoint->to_string().c_str(), err.c_str());
          ep = ps->endpoint;
        }
        if (ep)
          attempt(pc, *ps, *ep, w.watch);
        continue;
      }
      const PeerState before = w.watch.state();
      const bool due = w.watch.observe(now, *ps);
      {
        std::lock_guard lock(states_mutex_);
        states_[w.index] = w.watch.state();
      }
      if (!due) {
        if (before != w.watch.state())
          platform::log_verbose("Peer %s: %s", pc.endpoint->to_string().c_str(),
                                peer_state_name(w.watch.state()));
        continue;
      }
      if (auto literal = net::IpAddress::parse(pc.endpoint->host)) {
        attempt(pc, *ps, net::Endpoint{*literal, pc.endpoint->port}, w.watch);
        continue;
      }
      // Re-resolve first (the server may have moved); the attempt follows when it is done.
      w.pending = resolve_async(*pc.endpoint);
    }
  }

  static std::shared_ptr<PendingResolve> resolve_async(const net::HostPort& hp) {
    auto pending = std::make_shared<PendingResolve>();
    std::thread([pending, hp] {
      std::string err;
      auto ep = resolve_endpoint(hp, err);
      std::lock_guard lock(pending->mu);
      pending->endpoint = ep;
      pending->error = err;
      pending->done = true;
    }).detach();
    return pending;
  }

  // The result of a reload's resolution: the endpoint follows the name.
  void follow_name(const PeerConfig& pc, const wg::PeerSnapshot& ps,
                   const std::optional<net::Endpoint>& ep, const std::string& err) {
    if (!ep) {
      platform::log_error("Reload: cannot resolve %s (%s); keeping its endpoint",
                          pc.endpoint->to_string().c_str(), err.c_str());
      return;
    }
    if (ps.endpoint == ep) {
      platform::log_verbose("Reload: %s still is %s", pc.endpoint->to_string().c_str(),
                            ep->to_string().c_str());
      return;
    }
    wg::ConfigDelta d;
    wg::PeerDelta upd;
    upd.public_key = pc.public_key;
    upd.update_only = true;
    upd.endpoint = *ep;
    d.peers.push_back(upd);
    if (auto e = engine_->apply(d); !e) {
      platform::log_error("Reload: %s", e.message().c_str());
      return;
    }
    platform::log_error("Reload: %s is now %s", pc.endpoint->to_string().c_str(),
                        ep->to_string().c_str());
  }

  // One reconnect attempt: set the endpoint, then make the device start a handshake now.
  void attempt(const PeerConfig& pc, const wg::PeerSnapshot& ps, const net::Endpoint& endpoint,
               const PeerWatch& watch) {
    const std::optional<net::Endpoint> ep = endpoint;
    if (ps.endpoint != ep)
      platform::log_verbose("Reconnect: %s is now %s", pc.endpoint->to_string().c_str(),
                            ep->to_string().c_str());
    platform::log_verbose("Reconnect attempt %u to %s (%s)", watch.attempts(),
                          ep->to_string().c_str(), peer_state_name(watch.state()));
    // A delta names each peer once, so the attempt is a short sequence of deltas.
    std::vector<wg::PeerDelta> sequence;
    if (ps.has_session) {
      // We still hold a session the server may have lost (it restarted): only a new
      // handshake helps, and Device starts one for a peer without a session. Re-adding the
      // peer drops the stale session (its counters restart).
      wg::PeerDelta rm;
      rm.public_key = pc.public_key;
      rm.remove = true;
      sequence.push_back(rm);
      sequence.push_back(peer_delta(pc, ep));
      sequence.back().persistent_keepalive = 0;
    } else {
      wg::PeerDelta upd;
      upd.public_key = pc.public_key;
      upd.update_only = true;
      upd.endpoint = *ep;
      upd.persistent_keepalive = 0;
      sequence.push_back(upd);
    }
    // Switching persistent keepalive on sends a keepalive at once, which, without a session,
    // is a handshake initiation; then the configured value is put back.
    wg::PeerDelta on;
    on.public_key = pc.public_key;
    on.update_only = true;
    on.persistent_keepalive = 1;
    sequence.push_back(on);
    on.persistent_keepalive = pc.persistent_keepalive;
    sequence.push_back(on);
    for (auto& pd : sequence) {
      wg::ConfigDelta d;
      d.peers.push_back(std::move(pd));
      if (auto e = engine_->apply(d); !e) {
        platform::log_error("Reconnect: %s", e.message().c_str());
        return;
      }
    }
  }

 public:
  static wg::PeerDelta peer_delta(const PeerConfig& p, const std::optional<net::Endpoint>& ep) {
    wg::PeerDelta pd;
    pd.public_key = p.public_key;
    pd.preshared_key = p.preshared_key;
    pd.endpoint = ep;
    pd.persistent_keepalive = p.persistent_keepalive;
    pd.replace_allowed_ips = true;
    pd.allowed_ips_add = p.allowed_ips;
    return pd;
  }

 private:
  /// The MTU the runtime created the TUN with (the file's; a push does not change it).
  std::uint32_t created_mtu() const { return file_mtu_.value_or(wg::kDefaultMtu); }

  ClientConfig config_;  // a copy: pushed settings change it (loop thread)
  std::optional<std::uint32_t> file_mtu_ = config_.mtu;
  const DaemonOptions& options_;
  DnsMethod dns_method_ = DnsMethod::kFile;
  std::unique_ptr<control::SessionClient> session_;
  std::mutex pushed_mutex_;
  std::optional<control::Enrollment> pushed_;  // guarded by pushed_mutex_
  std::function<std::uint32_t()> rt_ifindex_;
  platform::SystemClock clock_;
  dataplane::Engine* engine_ = nullptr;  // the runtime's, set by configure()
  std::unique_ptr<System> system_;
  std::unique_ptr<ActiveSetup> setup_;
  std::vector<std::optional<net::Endpoint>> resolved_;  // at start-up, per config peer
  std::vector<WatchedPeer> watched_;
  std::mutex states_mutex_;
  std::vector<PeerState> states_;  // per config peer; guarded by states_mutex_
  // Mesh mode (mesh_node.h): the roster copy and its peers (loop thread), the deltas the
  // session's thread queued, the names `warren status` shows.
  runtime::Runtime* rt_ = nullptr;
  std::unique_ptr<MeshNode> mesh_;
  CandidateCycler cycler_;  // loop thread
  std::atomic<std::uint64_t> roster_version_{0};
  std::atomic<bool> report_now_{false};
  std::mutex roster_mutex_;
  std::vector<Result<mesh::RosterDelta>> roster_queue_;  // guarded by roster_mutex_
  platform::Notifier roster_ready_;
  std::map<crypto::PublicKey, std::string> mesh_names_;  // guarded by states_mutex_
  std::vector<net::Endpoint> names_upstreams_;           // the host's resolvers before `up`
  std::unique_ptr<MeshNames> names_;                     // the DNS responder (loop thread)
  // `warren pause` / `resume` and link down/up from outside (standby.h); last, as it refers
  // to config_ and setup_.
  StandbyControl standby_{config_.interface, [this] { return setup_.get(); }};
};

// The first line of a small file; "" when it cannot be read.
std::string read_first_line(const std::string& path) {
  auto text = platform::read_file(path, 4096);
  if (!text)
    return {};
  return text->substr(0, text->find('\n'));
}

// Through a trusted directory (root's, nobody else can write it), by rename: a link planted at
// the path is replaced, never followed.
Status write_pid_file(const std::string& path) {
  return platform::replace_trusted_file(path, std::to_string(platform::current_process_id()) + "\n",
                                        0644);
}

}  // namespace

std::string pid_path(const DaemonOptions& o, const std::string& ifname) {
  return o.run_dir + "/" + ifname + ".pid";
}
std::string journal_path(const DaemonOptions& o, const std::string& ifname) {
  return o.state_dir + "/" + ifname + ".state";
}

std::string log_path(const DaemonOptions& o, const std::string& ifname) {
  return o.log_dir + "/" + ifname + ".log";
}

int running_daemon(const DaemonOptions& o, const std::string& ifname) {
  const std::string s = read_first_line(pid_path(o, ifname));
  int pid = 0;
  try {
    pid = s.empty() ? 0 : std::stoi(s);
  } catch (const std::exception&) {
    return 0;
  }
  if (pid <= 0 || pid == platform::current_process_id() || !platform::process_exists(pid) ||
      !process_is_warren(pid))
    return 0;
  return pid;
}

wg::ConfigDelta make_delta(const ClientConfig& c,
                           const std::vector<std::optional<net::Endpoint>>& resolved) {
  wg::ConfigDelta d;
  d.private_key = c.private_key;
  d.listen_port = c.listen_port;
  d.replace_peers = true;
  for (std::size_t i = 0; i < c.peers.size(); ++i)
    d.peers.push_back(
        Daemon::peer_delta(c.peers[i], i < resolved.size() ? resolved[i] : std::nullopt));
  return d;
}

// Recovers from a previous run that died without restoring (kill -9, power loss).
bool recover(const DaemonOptions& o, const std::string& ifname) {
  const std::string journal = journal_path(o, ifname);
  auto sys = host::make_system();
  if (!sys) {
    std::fprintf(stderr, "warren: %s\n", sys.error().text().c_str());
    return false;
  }
  PlanOptions po;  // the resolv.conf and sysctl paths `up` uses
  po.state_dir = o.state_dir;
  ReplayResult r = replay_journal(**sys, journal, journal_scope(po, ifname));
  for (const auto& e : r.errors)
    std::fprintf(stderr, "warren: recovering %s: %s\n", ifname.c_str(), e.text().c_str());
  if (!r.errors.empty())
    return false;
  if (r.stale)
    std::fprintf(stderr,
                 "warren: %s was up when the machine went down; restored %zu change(s) that "
                 "outlive a reboot (resolv.conf) from %s\n",
                 ifname.c_str(), r.undone, journal.c_str());
  else if (r.found)
    std::fprintf(stderr, "warren: %s was not shut down cleanly; restored %zu step(s) from %s\n",
                 ifname.c_str(), r.undone, journal.c_str());
  return true;
}

namespace {

// The state and run directories, made 0700 if missing, and refused unless only root can
// write them.
bool make_dirs(const DaemonOptions& o) {
  for (const std::string* d : {&o.state_dir, &o.run_dir}) {
    if (auto s = platform::make_directory(*d, 0700); !s) {
      std::fprintf(stderr, "warren: cannot create %s: %s\n", d->c_str(), s.message().c_str());
      return false;
    }
    // Root writes its journal, backup and PID file there: nobody else may be able to.
    if (auto s = platform::check_trusted_directory(*d); !s) {
      std::fprintf(stderr, "warren: %s\n", s.message().c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int run_up(const ClientConfig& config, const DaemonOptions& options) {
  const std::string& name = config.interface;
  if (!platform::has_net_admin()) {
    std::fprintf(stderr, "warren: bringing up %s needs root or CAP_NET_ADMIN\n", name.c_str());
    return 1;
  }
  if (!make_dirs(options))
    return 1;
  if (int pid = running_daemon(options, name)) {
    std::fprintf(stderr, "warren: %s is already up (pid %d); `warren down %s` first\n",
                 name.c_str(), pid, name.c_str());
    return 1;
  }
  if (!recover(options, name))
    return 1;

  // Signals, TUN (with the offloads WARREN_OFFLOADS allows), workers, engine, UAPI and status
  // sockets, fork-and-wait, sd_notify and the shutdown order are the shared runtime's.
  runtime::RuntimeOptions ro;
  ro.data_plane.interface = name;
  ro.data_plane.mtu = config.mtu.value_or(wg::kDefaultMtu);
  ro.data_plane.engine.listen_port = config.listen_port.value_or(0);
  ro.data_plane.engine.fwmark = effective_fwmark(config);
  ro.background = !options.foreground;
  ro.log_file = log_path(options, name);
  if (config.mesh) {
    // A mesh node: STUN and the relay from its enrollment (WARREN_STUN / WARREN_RELAY, when
    // set, replace them: runtime/settings.h).
    ro.data_plane.stun_servers = config.mesh->stun;
    auto pin = control::fingerprint_from_hex(config.control_pin);
    if (config.mesh->relay && pin) {
      runtime::RelaySettings relay;
      relay.host = config.mesh->relay->host;
      relay.port = config.mesh->relay->port;
      relay.pin = *pin;  // the coordinator's certificate, as the invite pinned it
      ro.data_plane.relay = relay;
    }
  }
  auto created = runtime::Runtime::create(std::move(ro));  // the parent waits inside
  if (!created) {
    std::fprintf(stderr, "warren: %s\n", created.message().c_str());
    return 1;
  }
  runtime::Runtime& rt = **created;
  if (auto s = write_pid_file(pid_path(options, name)); !s) {
    rt.report_failure("warren: cannot write " + pid_path(options, name) + ": " + s.message());
    return 1;
  }
  DaemonOptions with_group = options;
  if (!config.control_group.empty()) {
    // After the fork: the parent reports it, and nothing has been set up yet.
    auto gid = platform::group_id(config.control_group);
    if (!gid) {
      (void)platform::remove_trusted_file(pid_path(options, name));
      rt.report_failure("warren: " + config.path + ": #@warren ControlGroup = " +
                        config.control_group + ": " + gid.error().text());
      return 1;
    }
    with_group.control_group = *gid;
  }
  Daemon daemon(config, with_group, [&rt] { return rt.ifindex(); });
  daemon.set_runtime(&rt);
  if (auto s = rt.start(daemon.hooks()); !s) {
    (void)platform::remove_trusted_file(pid_path(options, name));
    rt.report_failure("warren: " + name + ": " + s.message());
    return 1;
  }
  rt.report_ready();
  // After ready: in the background this is the first line of the daemon's own log.
  platform::log_verbose("Interface %s is up", name.c_str());
  daemon.start_watch(rt);
  const int rc = rt.run();
  (void)platform::remove_trusted_file(pid_path(options, name));
  platform::log_verbose("Interface %s is down, everything restored", name.c_str());
  return rc;
}

int run_down(const std::string& ifname, const DaemonOptions& options) {
  if (!valid_interface_name(ifname)) {
    std::fprintf(stderr, "warren: '%s' is not a valid interface name\n", ifname.c_str());
    return 2;
  }
  const int pid = running_daemon(options, ifname);
  if (pid) {
    if (auto s = platform::terminate_process(pid); !s) {
      std::fprintf(stderr, "warren: cannot signal pid %d: %s\n", pid, s.message().c_str());
      return 1;
    }
    const auto deadline = std::chrono::steady_clock::now() + kDownTimeout;
    while (platform::process_exists(pid) && process_is_warren(pid)) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr, "warren: %s (pid %d) did not stop within %lld s\n", ifname.c_str(),
                     pid, static_cast<long long>(kDownTimeout.count()));
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const bool journal = platform::file_info(journal_path(options, ifname)).ok();
  // (A journal that is a link or sits in a directory others can write is refused by recover.)
  if (!pid && !journal) {
    std::fprintf(stderr, "warren: %s is not up (no daemon, nothing to restore)\n", ifname.c_str());
    return 1;
  }
  if (journal && !recover(options, ifname))
    return 1;
  (void)platform::remove_trusted_file(pid_path(options, ifname));
  return 0;
}

int run_cleanup(const std::vector<std::string>& ifnames, bool all, const DaemonOptions& options) {
  std::vector<std::string> names = ifnames;
  if (all) {
    auto listed = platform::list_directory(options.state_dir);
    if (!listed && listed.code() != ENOENT) {
      std::fprintf(stderr, "warren: cannot list %s: %s\n", options.state_dir.c_str(),
                   listed.message().c_str());
      return 1;
    }
    constexpr std::string_view kSuffix = ".state";
    if (listed)
      for (const auto& f : *listed)
        if (f.size() > kSuffix.size() && f.ends_with(kSuffix))
          names.push_back(f.substr(0, f.size() - kSuffix.size()));
  }
  int rc = 0;
  std::size_t restored = 0;
  for (const auto& name : names) {
    if (!valid_interface_name(name)) {
      std::fprintf(stderr, "warren: '%s' is not a valid interface name\n", name.c_str());
      rc = 1;
      continue;
    }
    if (int pid = running_daemon(options, name)) {
      std::fprintf(stderr, "warren: %s is up (pid %d): left alone\n", name.c_str(), pid);
      continue;
    }
    if (!platform::file_info(journal_path(options, name)).ok())
      continue;  // nothing to restore
    if (!recover(options, name))
      rc = 1;
    else
      ++restored;
  }
  if (rc == 0 && restored == 0)
    std::fprintf(stderr, "warren: nothing to clean up\n");
  return rc;
}

}  // namespace warren::client
