// The daemon runtime (see runtime.h for the start-up and shutdown order).

#include "runtime/runtime.h"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "crypto/random.h"
#include "platform/clock.h"
#include "platform/control_socket.h"
#include "platform/event_loop.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/log_output.h"
#include "platform/netlink.h"
#include "platform/notifier.h"
#include "platform/tun_device.h"
#include "platform/udp.h"
#include "uapi/server.h"

namespace warren::runtime {
namespace {

std::string tun_error_message(const std::string& name, const Error& e) {
  std::string m = "cannot create TUN device " + name + ": " + e.text();
  if (e.code == EPERM || e.code == EACCES) {
    m += " (run as root or with CAP_NET_ADMIN)";
  } else if (e.code == ENOENT || e.code == ENODEV || e.code == ENXIO) {
    m += " (is the tun driver available? /dev/net/tun is needed)";
  } else if (e.code == EBUSY) {
    m += " (the interface exists already, or is in use by another program)";
  }
  return m;
}

Error startup_error(const std::string& message, int code = EIO) {
  return Error(code, message);
}

}  // namespace

SignalAction signal_action(platform::Signal s) {
  switch (s) {
    case platform::Signal::kTerminate:
    case platform::Signal::kInterrupt:
      return SignalAction::kStop;
    case platform::Signal::kHangup:
      return SignalAction::kReload;
    case platform::Signal::kOther:
      break;
  }
  return SignalAction::kIgnore;
}

Readiness::Readiness(platform::StartupReport report,
                     std::unique_ptr<platform::ServiceNotifier> notifier)
    : report_(std::move(report)), background_(report_.active()), notifier_(std::move(notifier)) {}

void Readiness::send(const std::string& state) {
  if (!notifier_)
    return;
  if (auto s = notifier_->notify(state); !s)
    platform::log_error("Cannot notify the service manager: %s", s.message().c_str());
}

void Readiness::ready() {
  report_.report_ready();
  send("READY=1");
}

void Readiness::failed(const std::string& message) {
  if (report_.active()) {
    report_.report_error(message);  // the waiting parent prints it
  } else {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
  }
}

void Readiness::reloading() {
  platform::SystemClock clock;
  const auto usec =
      std::chrono::duration_cast<std::chrono::microseconds>(clock.now().mono.time_since_epoch());
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec.count()));
}

void Readiness::reloaded() {
  send("READY=1");
}

void Readiness::stopping() {
  send("STOPPING=1");
}

SignalAction SignalDispatch::dispatch(platform::Signal s) {
  const SignalAction a = signal_action(s);
  switch (a) {
    case SignalAction::kStop:
      platform::log_verbose("Received %s, shutting down", platform::signal_name(s));
      stop_ = true;
      break;
    case SignalAction::kReload:
      if (!reload_) {
        platform::log_verbose("Received SIGHUP: nothing to reload, ignored");
        break;
      }
      platform::log_verbose("Received SIGHUP: reloading");
      readiness_.reloading();
      reload_();
      readiness_.reloaded();
      break;
    case SignalAction::kIgnore:
      break;
  }
  return a;
}

Runtime::Runtime(RuntimeOptions options)
    : options_(std::move(options)), clock_(std::make_unique<platform::SystemClock>()) {}

Runtime::~Runtime() {
  (void)shutdown();
}

Result<std::unique_ptr<Runtime>> Runtime::create(RuntimeOptions options) {
  const bool background = options.background;
  // No core dumps and no ptrace by other users: keys live in this process's memory.
  if (auto s = platform::disable_core_dumps(); !s)
    return s.error().with_context("cannot make the process non-dumpable");
  std::unique_ptr<Runtime> rt(new Runtime(std::move(options)));
  platform::StartupReport report;
  if (background) {
    auto d = platform::daemonize();  // the parent exits inside, once the child reports
    if (!d.ok())
      return Error(d.code(), "cannot start the daemon: " + d.message());
    report = std::move(*d);
    // In the child (daemonize closed every other descriptor), whose stderr is still the
    // user's terminal until ready.
    if (!rt->options_.log_file.empty())
      rt->open_log_output();
  }
  rt->log_destination_ = rt->describe_log_output(background);
  auto notifier = platform::service_notifier_from_environment();
  if (!notifier) {
    rt->pending_ = notifier.error();
    rt->readiness_ = Readiness(std::move(report), nullptr);
  } else {
    rt->readiness_ = Readiness(std::move(report), std::move(*notifier));
  }
  // Signals arrive through a descriptor; blocked here, before any thread, so that every later
  // thread (workers, UAPI, status, enrollment) inherits the mask.
  try {
    rt->signals_ = std::make_unique<platform::TerminationSignals>();
  } catch (const std::exception& e) {
    if (rt->pending_)
      rt->pending_ = Error(EIO, std::string("cannot set up signal handling: ") + e.what());
  }
  return rt;
}

Status Runtime::start(Hooks hooks) {
  hooks_ = std::move(hooks);
  Status s = start_steps();
  if (!s)
    (void)shutdown();
  return s;
}

Status Runtime::start_steps() {
  if (!pending_)
    return pending_;
  const std::string& name = options_.data_plane.interface;
  if (!platform::has_net_admin())
    return startup_error(
        "creating interface " + name + " requires root or CAP_NET_ADMIN (Operation not permitted)",
        EPERM);
  auto settings = assemble(options_.data_plane, Environment::current());
  if (!settings)
    return settings.error();
  settings_ = std::move(*settings);

  // A live daemon for this name answers on its socket: refuse before attaching to the TUN,
  // which would otherwise hand us queues of the other daemon's multi-queue device. (The UAPI
  // bind below repeats the check authoritatively.)
  const std::string uapi_path = std::string(uapi::kDefaultSocketDir) + "/" + name + ".sock";
  if (auto probe = platform::connect_unix(uapi_path); probe.ok() || probe.would_block())
    return startup_error(
        "interface " + name + " is already in use by another process (" + uapi_path + ")",
        EADDRINUSE);

  auto tun = platform::create_tun(settings_.tun);
  if (!tun.ok())
    return startup_error(tun_error_message(name, tun.error()), tun.code());
  platform::log_verbose("Offloads requested: %s; TUN offloads in use: %s",
                        settings_.offloads.to_string().c_str(),
                        (*tun)->offloads().to_string().c_str());
  ifindex_ = (*tun)->ifindex();
  if (hooks_.tun_created) {
    if (auto h = hooks_.tun_created(ifindex_); !h)
      return h;
  }

  auto monitor = platform::open_link_monitor(ifindex_);
  if (!monitor.ok())
    return startup_error("cannot open link monitor: " + monitor.message(), monitor.code());
  binds_ = platform::make_system_bind_factory();
  auto created =
      dataplane::Engine::create(std::move(*tun), *binds_, *clock_, crypto::SystemRandom::instance(),
                                std::move(*monitor), settings_.engine);
  if (!created.ok()) {
    const std::uint16_t port = settings_.engine.listen_port;
    return startup_error((port ? "cannot bind UDP port " + std::to_string(port)
                               : std::string("cannot bind a UDP socket")) +
                             ": " + created.message(),
                         created.code());
  }
  engine_ = std::move(*created);
  // Mesh endpoint discovery on the WireGuard socket (runtime/stun_discovery.h).
  // WARREN_STUN, when set, replaces the program's servers (a mesh node's enrollment).
  std::vector<net::Endpoint> stun_servers = settings_.stun_servers;
  if (const char* stun = std::getenv("WARREN_STUN"); stun != nullptr && *stun != '\0') {
    auto servers = parse_stun_servers(stun);
    if (!servers.ok())
      return startup_error(servers.message(), servers.code());
    stun_servers = std::move(*servers);
  }
  if (!stun_servers.empty()) {
    stun_ = std::make_unique<StunDiscovery>(std::move(stun_servers),
                                            crypto::SystemRandom::instance(), *clock_);
    stun_->attach(*engine_);
  }
  // The relay path of a mesh node (runtime/relay_transport.h): WARREN_RELAY, WARREN_RELAY_PIN.
  if (Status s = add_relay_transport(); !s)
    return s;
  if (Status s = add_quic_transport(); !s)
    return s;
  if (hooks_.configure) {
    if (auto h = hooks_.configure(*engine_); !h)
      return h;
  }

  // The socket appears after the interface and the UDP port, so whoever sees it (wg, scripts
  // polling for it) finds them in place; it serves nothing before start().
  uapi_ = std::make_unique<uapi::UapiServer>(name, *engine_);
  if (Status s = uapi_->bind(); !s)
    return startup_error("cannot open UAPI socket: " + s.message(), s.code());

  engine_stopped_ = std::make_unique<platform::Notifier>();
  engine_->set_on_stop([n = engine_stopped_.get()](dataplane::StopReason) { n->set(); });
  try {
    engine_->start();
  } catch (const std::exception& e) {
    return startup_error(std::string("cannot start workers: ") + e.what());
  }
  if (Status s = uapi_->start(); !s)
    return startup_error("cannot start UAPI listener: " + s.message(), s.code());

  auto loop = platform::make_event_loop();
  if (!loop.ok())
    return startup_error("cannot create event loop: " + loop.message(), loop.code());
  loop_ = std::move(*loop);

  if (hooks_.started) {
    started_hook_ran_ = true;
    if (auto h = hooks_.started(); !h)
      return h;
  }
  // Last, so that a status socket means "the daemon is fully up" (tests and scripts wait
  // for it; the server's enrollment listener is up by then).
  if (hooks_.status) {
    // The status says where the log is (`warren status`, fixed since create()) and, when the
    // daemon runs STUN discovery, what it learned.
    auto status = [this] {
      control::InterfaceStatus st = hooks_.status();
      st.log = log_destination_;
      if (stun_)
        st.stun = stun_->status();
      if (relay_)
        st.relay_path = relay_path_status();
      // With QUIC, each peer's carrier (a mesh node's relayed peers say it in `path` already).
      if (quic_)
        describe_transports(st);
      st.quic = quic_status();
      return st;
    };
    status_ = std::make_unique<control::StatusServer>(name, status, hooks_.status_options);
    try {
      status_->start();
    } catch (const std::exception& e) {
      return startup_error(std::string("status socket: ") + e.what());
    }
  }

  platform::log_verbose("Device started (%zu worker(s), UDP port %u)", engine_->worker_count(),
                        static_cast<unsigned>(engine_->port()));
  return {};
}

void Runtime::open_log_output() {
  // Printed to the terminal `warren up` runs in (the parent is still waiting for us).
  const std::string& path = options_.log_file;
  // LOG_LEVEL given: wireguard-go's rule, the output stays where the caller pointed stderr
  // (scripts and tests redirect it); report_ready() keeps it.
  if (std::getenv("LOG_LEVEL") != nullptr)
    return;
  if (platform::stderr_is_journal()) {
    log_to_journal_ = true;
    std::fprintf(stderr, "warren: %s logs to the journal\n", options_.data_plane.interface.c_str());
    return;
  }
  const auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    (void)platform::make_directory(path.substr(0, slash), 0750);  // open says what went wrong
  auto f = platform::open_log_file(path, 0640, kLogFileMaxBytes);
  if (!f) {
    std::fprintf(stderr, "warren: warning: cannot open the log file %s (%s): %s will not log\n",
                 path.c_str(), f.message().c_str(), options_.data_plane.interface.c_str());
    return;
  }
  log_file_ = std::move(*f);
  std::fprintf(stderr, "warren: %s logs to %s\n", options_.data_plane.interface.c_str(),
               path.c_str());
}

std::string Runtime::describe_log_output(bool background) const {
  if (log_file_)
    return log_file_->path();
  if (!background)
    return platform::stderr_is_journal() ? "journal" : "stderr";
  if (log_to_journal_)
    return "journal";
  // Background without a file: report_ready() keeps stderr only when LOG_LEVEL asks for logs.
  return std::getenv("LOG_LEVEL") && platform::log_level() != platform::LogLevel::kSilent ? "stderr"
                                                                                          : "none";
}

void Runtime::report_ready() {
  readiness_.ready();
  if (!readiness_.background())
    return;
  const char* level = std::getenv("LOG_LEVEL");
  if (log_file_) {
    // Only without LOG_LEVEL (open_log_output): the file gets the daemon's story (up,
    // reconnects, reloads).
    platform::log_set_level(platform::LogLevel::kVerbose);
    platform::log_set_file(std::move(log_file_));
    (void)platform::redirect_stdio(false);
  } else if (log_to_journal_) {
    (void)platform::redirect_stdio(true);  // stderr is the journal: keep it
  } else {
    // As wireguard-go: stdout/stderr stay only when LOG_LEVEL asks for logs.
    (void)platform::redirect_stdio(level && platform::log_level() != platform::LogLevel::kSilent);
  }
}

void Runtime::report_failure(const std::string& message) {
  readiness_.failed(message);
}

void Runtime::add_timer(Duration interval, std::function<void()> fn) {
  timers_.add(clock_->now().mono + interval, interval, std::move(fn));
}

Status Runtime::watch_readable(int fd, std::function<void()> fn) {
  if (!loop_)
    return Error(EINVAL, "watch_readable before the event loop exists");
  return loop_->add(fd, platform::kReadable, [fn = std::move(fn)](std::uint32_t) { fn(); });
}

void Runtime::unwatch(int fd) {
  if (loop_)
    (void)loop_->remove(fd);
}

int Runtime::run() {
  if (!loop_ || !engine_ || shut_down_)
    return 1;  // start() did not succeed
  int rc = 0;
  bool done = false;  // the engine stopped, or the UAPI socket file is gone
  SignalDispatch signals(readiness_, hooks_.reload);
  platform::EventLoop& loop = *loop_;
  if (!loop.add(signals_->poll_fd(), platform::kReadable,
                [&](std::uint32_t) {
                  if (auto sig = signals_->read())
                    (void)signals.dispatch(*sig);
                })
           .ok() ||
      !loop.add(engine_stopped_->fd(), platform::kReadable,
                [&](std::uint32_t) {
                  engine_stopped_->clear();
                  const dataplane::StopReason why = engine_->stop_reason();
                  if (why == dataplane::StopReason::kFatalError) {
                    platform::log_error("Shutting down: %s", dataplane::stop_reason_name(why));
                    rc = 1;
                  } else {
                    platform::log_verbose("Shutting down: %s", dataplane::stop_reason_name(why));
                  }
                  done = true;
                })
           .ok()) {
    platform::log_error("Cannot watch the signals and the engine");
    (void)shutdown();
    return 1;
  }
  if (options_.stop_when_socket_removed) {
    timers_.add(clock_->now().mono + options_.socket_check_interval, options_.socket_check_interval,
                [&] {
                  if (!uapi_->socket_file_present()) {
                    platform::log_verbose("UAPI socket %s was removed, shutting down",
                                          uapi_->socket_path().c_str());
                    done = true;
                  }
                });
  }
  if (stun_) {
    // STUN retransmissions start at 250 ms; a 100 ms tick keeps them close to schedule and
    // costs a lock and a comparison when nothing is due.
    timers_.add(clock_->now().mono, std::chrono::milliseconds(100), [this] { stun_->tick(); });
  }
  if (relay_) {
    timers_.add(clock_->now().mono + std::chrono::seconds(1), std::chrono::seconds(1),
                [this] { relay_tick(); });
  }
  if (quic_choice_) {
    quic_tick();  // `quic` mode moves the server peer onto QUIC at once
    timers_.add(clock_->now().mono + std::chrono::seconds(1), std::chrono::seconds(1),
                [this] { quic_tick(); });
  }
  std::function<void()> on_timer = [&] {
    (void)timers_.run_due(clock_->now().mono);
    (void)loop.set_timer(timers_.next_deadline(), on_timer);
  };
  (void)loop.set_timer(timers_.next_deadline(), on_timer);

  while (!signals.stop_requested() && !done) {
    auto r = loop.run_once(kNoTimeout);
    if (!r.ok()) {
      platform::log_error("Event loop failed: %s", r.message().c_str());
      rc = 1;
      break;
    }
  }
  if (!shutdown())
    rc = 1;
  return rc;
}

Status Runtime::add_relay_transport() {
  if (!settings_.relay)
    return {};
  relay_policy_ = std::make_unique<RelayPolicy>(
      RelayPolicyOptions{.direct_retry = settings_.relay->direct_retry});
  // The narrow key accessor: the link thread reads the device's private key at each connect
  // (warren-wg gets it from `wg set` after start-up) and keeps it only for the proof.
  auto transport = std::make_unique<RelayTransport>(
      *settings_.relay, [e = engine_.get()] { return e->snapshot().private_key; });
  relay_ = transport.get();
  relay_tag_ = engine_->add_transport(std::move(transport));
  return {};
}

control::RelayPathStatus Runtime::relay_path_status() const {
  const RelayStatus r = relay_->status();
  control::RelayPathStatus out;
  out.relay = r.relay;
  out.connected = r.connected;
  out.carrier = r.carrier;
  out.last_error = r.last_error;
  out.connects = r.connects;
  out.sent = r.sent;
  out.received = r.received;
  out.drops = {{"queue_full", r.dropped_full},
               {"not_connected", r.dropped_not_connected},
               {"unknown_path", r.dropped_unknown_path},
               {"receive_queue_full", r.dropped_rx_full}};
  for (const auto& p : engine_->snapshot().peers) {
    if (p.endpoint_transport == relay_tag_)
      out.relayed_peers.push_back(p.public_key.to_base64());
  }
  return out;
}

void Runtime::relay_tick() {
  const wg::DeviceSnapshot snap = engine_->snapshot();
  auto deltas =
      relay_policy_->tick(snap.peers, clock_->now().mono, relay_tag_, relay_->connected(),
                          [this](const crypto::PublicKey& k) { return relay_->endpoint_for(k); });
  if (deltas.empty())
    return;
  for (const auto& d : deltas)
    platform::log_verbose(
        "relay: peer %s now %s", d.public_key.to_base64().substr(0, 8).c_str(),
        d.transport == relay_tag_ ? "through the relay" : "on its direct endpoint");
  wg::ConfigDelta delta;
  delta.peers = std::move(deltas);
  if (Status s = engine_->apply(delta); !s)
    platform::log_error("relay: cannot move peers: %s", s.message().c_str());
}

Status Runtime::add_quic_transport() {
  // The narrow key accessor, as the relay's: read at each proof, held only during it.
  auto keys = [e = engine_.get()] { return e->snapshot().private_key; };
  if (hooks_.quic_server) {
    auto t = QuicTransport::server(*hooks_.quic_server, keys, *binds_);
    if (!t.ok())
      return startup_error(t.message(), t.code());
    quic_ = t->get();
    quic_tag_ = engine_->add_transport(std::move(*t));
    platform::log_verbose("QUIC transport on UDP port %u", static_cast<unsigned>(quic_->port()));
    return {};
  }
  if (!hooks_.quic_client)
    return {};
  const auto& qc = *hooks_.quic_client;
  auto t = QuicTransport::client(qc.config, keys, *binds_);
  if (!t.ok())
    return startup_error(t.message(), t.code());
  quic_ = t->get();
  quic_tag_ = engine_->add_transport(std::move(*t));
  TransportChoice::Options choice = qc.choice;
  // WARREN_QUIC_PROBE=SECONDS: how often `auto` on QUIC probes UDP (tests shorten the 15 s).
  if (const char* v = std::getenv("WARREN_QUIC_PROBE"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const long n = std::strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 3600)
      return startup_error(
          std::string("invalid WARREN_QUIC_PROBE: \"") + v + "\" (seconds, 1 to 3600)", EINVAL);
    choice.probe_interval = std::chrono::seconds(n);
  }
  quic_choice_ = std::make_unique<TransportChoice>(qc.mode, choice, clock_->now().mono);
  if (qc.mode == TransportChoice::Mode::kAuto) {
    if (stun_) {
      // One STUN sink per engine; a mesh node does not use the QUIC fallback.
      platform::log_error("warning: STUN discovery is on: the QUIC fallback will not probe UDP");
    } else {
      quic_probe_ = std::make_unique<UdpProbe>(crypto::SystemRandom::instance());
      engine_->set_stun_sink(quic_probe_.get());
    }
  }
  platform::log_verbose("QUIC transport to %s (transport %s)", qc.config.endpoint.c_str(),
                        mode_name(qc.mode));
  return {};
}

void Runtime::quic_tick() {
  const crypto::PublicKey& server = hooks_.quic_client->config.server_key;
  const wg::DeviceSnapshot snap = engine_->snapshot();
  const wg::PeerSnapshot* peer = nullptr;
  for (const auto& p : snap.peers)
    if (p.public_key == server)
      peer = &p;
  // The QUIC socket carries the engine's mark (full tunnel: it must bypass the tunnel too).
  if (const std::uint32_t mark = engine_->fwmark(); quic_->fwmark() != mark) {
    if (Status s = quic_->set_fwmark(mark); !s)
      platform::log_error("QUIC: cannot set fwmark %u: %s", mark, s.message().c_str());
  }
  if (peer == nullptr)
    return;  // not configured yet
  const MonoTime now = clock_->now().mono;
  const bool on_udp = peer->endpoint_transport == dataplane::kUdpTransport;
  if (on_udp && peer->endpoint)
    quic_udp_endpoint_ = *peer->endpoint;
  // A handshake completed since the last tick while the peer was on UDP: UDP works. (Seen at
  // most a second late; the choice's timeouts are seconds.)
  if (peer->last_handshake_sec != quic_seen_handshake_) {
    quic_seen_handshake_ = peer->last_handshake_sec;
    if (on_udp && peer->last_handshake_sec != 0)
      quic_last_udp_handshake_ = now;
  }
  TransportChoice::Input in;
  in.now = now;
  in.last_udp_handshake = quic_last_udp_handshake_;
  in.quic_up = quic_->connected();
  in.probe_answered = quic_probe_ ? quic_probe_->answered_at() : std::nullopt;
  const TransportChoice::Decision d = quic_choice_->tick(in);
  if (d.send_probe && quic_probe_ && quic_udp_endpoint_)
    quic_probe_->send(*engine_, *quic_udp_endpoint_);
  const bool want_quic = d.carrier == TransportChoice::Carrier::kQuic;
  quic_->set_accepting(want_quic);
  const bool on_quic = peer->endpoint_transport == quic_tag_;
  // A new QUIC connection after one that ended (a restarted server resets the old one): the
  // server has probably lost the WireGuard session too, so renew it now instead of waiting
  // for WireGuard's 15 s of silence.
  const std::uint64_t connects = quic_->status().connects;
  const bool reconnected = connects > quic_connects_seen_ && quic_connects_seen_ != 0;
  quic_connects_seen_ = connects;
  if (reconnected && on_quic && !d.switched) {
    wg::ConfigDelta renew;
    wg::PeerDelta p;
    p.public_key = server;
    p.update_only = true;
    p.initiate_handshake = true;
    renew.peers.push_back(std::move(p));
    platform::log_verbose("transport: new QUIC connection, renewing the WireGuard session");
    if (Status s = engine_->apply(renew); !s)
      platform::log_error("transport: cannot start a handshake: %s", s.message().c_str());
  }
  // The chosen carrier is enforced at every tick, not only when the choice changes: the core
  // roams the peer to wherever the server's last authenticated packet came from (a packet the
  // server sent over UDP before it saw us on QUIC, say), and the choice must win.
  if (want_quic == on_quic)
    return;
  if (!want_quic && !quic_udp_endpoint_)
    return;  // nothing to go back to
  wg::PeerDelta p;
  p.public_key = server;
  p.update_only = true;
  // The new carrier is proven by a handshake over it (TransportChoice's trial waits for one);
  // a session would otherwise just continue there. Only on a change of the choice: a peer
  // pulled back by roaming just moves.
  p.initiate_handshake = d.switched || !quic_applied_;
  quic_applied_ = true;
  if (want_quic) {
    auto ep = quic_->endpoint_for(server);
    if (!ep)
      return;
    p.endpoint = *ep;
    p.transport = quic_tag_;
  } else {
    p.endpoint = *quic_udp_endpoint_;
    p.transport = dataplane::kUdpTransport;
  }
  platform::log_verbose("transport: now %s (%s)", want_quic ? "QUIC" : "WireGuard UDP",
                        mode_name(quic_choice_->mode()));
  wg::ConfigDelta delta;
  delta.peers.push_back(std::move(p));
  if (Status s = engine_->apply(delta); !s)
    platform::log_error("transport: cannot move the server peer: %s", s.message().c_str());
}

std::optional<control::QuicTransportStatus> Runtime::quic_status() const {
  if (!quic_)
    return std::nullopt;
  const QuicStatus q = quic_->status();
  control::QuicTransportStatus out;
  out.role = q.server ? "server" : "client";
  out.endpoint = q.endpoint;
  out.connected = q.connected;
  out.clients = q.clients;
  out.connects = q.connects;
  out.sent = q.sent;
  out.received = q.received;
  out.last_error = q.last_error;
  out.drops = {{"queue_full", q.dropped_queue_full},
               {"not_connected", q.dropped_not_connected},
               {"too_big", q.dropped_too_big},
               {"unknown_path", q.dropped_unknown_path},
               {"unauthenticated", q.dropped_unauthenticated}};
  if (q.server) {
    out.drops["refused"] = q.refused;
    for (std::size_t r = 0; r < static_cast<std::size_t>(quic::DropReason::kCount); ++r)
      out.drops[quic::to_string(static_cast<quic::DropReason>(r))] = q.endpoint_stats.dropped[r];
    out.drops["stateless_resets_sent"] = q.endpoint_stats.stateless_resets;
  } else {
    out.drops["not_chosen"] = q.dropped_not_chosen;
  }
  return out;
}

void Runtime::describe_transports(control::InterfaceStatus& st) const {
  const wg::DeviceSnapshot snap = engine_->snapshot();
  for (auto& ps : st.peers) {
    for (const auto& p : snap.peers) {
      if (!(p.public_key == ps.public_key))
        continue;
      if (quic_ && p.endpoint_transport == quic_tag_)
        ps.transport = "quic";
      else if (relay_ && p.endpoint_transport == relay_tag_)
        ps.transport = "relay";
      else if (p.endpoint)
        ps.transport = "wireguard";
    }
  }
}

bool Runtime::shutdown() {
  if (shut_down_)
    return true;
  shut_down_ = true;
  readiness_.stopping();
  bool clean = true;
  if (status_)
    status_->stop();
  if (started_hook_ran_ && hooks_.stopping) {
    if (auto s = hooks_.stopping(); !s) {
      platform::log_error("%s", s.message().c_str());
      clean = false;
    }
  }
  if (uapi_)
    uapi_->stop();  // removes the socket first, so `wg` stops seeing us before the TUN goes
  if (engine_)
    engine_->stop();
  if (relay_)
    relay_->stop();  // its key source refers to the engine
  if (quic_)
    quic_->stop();  // likewise
  if (engine_ && hooks_.stopped)
    hooks_.stopped();
  if (engine_ && engine_->tun().vnet_hdr()) {
    const platform::TunOffloadStats st = engine_->tun().offload_stats();
    platform::log_verbose(
        "TUN offloads: read %llu super-packets (%llu packets), wrote %llu (%llu packets), "
        "dropped %llu malformed",
        static_cast<unsigned long long>(st.super_packets_read),
        static_cast<unsigned long long>(st.segments_read),
        static_cast<unsigned long long>(st.super_packets_written),
        static_cast<unsigned long long>(st.segments_written),
        static_cast<unsigned long long>(st.malformed_dropped));
  }
  uapi_.reset();
  engine_.reset();  // closes the TUN's queues: the interface goes with the last one
  return clean;
}

}  // namespace warren::runtime
