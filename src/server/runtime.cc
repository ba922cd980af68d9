// The running server (see runtime.h).

#include "server/runtime.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "control/enroll.h"
#include "control/status.h"
#include "crypto/random.h"
#include "dataplane/engine.h"
#include "platform/clock.h"
#include "platform/event_loop.h"
#include "platform/log.h"
#include "platform/netlink.h"
#include "platform/notifier.h"
#include "platform/offloads.h"
#include "platform/process.h"
#include "platform/tcp.h"
#include "platform/tun_device.h"
#include "platform/udp.h"
#include "server/state.h"
#include "uapi/server.h"

namespace warren::server {
namespace {

constexpr auto kMaintenanceInterval = std::chrono::seconds(5);
constexpr std::int64_t kIdleCheckSeconds = 60;

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

/// Runs a program (no shell); returns its exit status, or -1 if it could not run.
int run_program(const std::vector<std::string>& argv, bool quiet) {
  pid_t pid = ::fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (quiet) {
      int null = ::open("/dev/null", O_WRONLY);
      if (null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A sysctl file set to a value, restored on destruction.
class SysctlGuard {
 public:
  SysctlGuard(std::string path, const std::string& value) : path_(std::move(path)) {
    std::ifstream in(path_);
    if (!(in >> old_))
      throw std::runtime_error("cannot read " + path_);
    if (old_ == value)
      return;
    std::ofstream out(path_);
    if (!(out << value << "\n") || !out.flush())
      throw std::runtime_error("cannot write " + path_);
    changed_ = true;
  }
  ~SysctlGuard() {
    if (changed_) {
      std::ofstream out(path_);
      out << old_ << "\n";
    }
  }
  SysctlGuard(const SysctlGuard&) = delete;
  SysctlGuard& operator=(const SysctlGuard&) = delete;

 private:
  std::string path_;
  std::string old_;
  bool changed_ = false;
};

/// The iptables MASQUERADE rule, added unless already present (e.g. left by a kill -9),
/// removed on destruction.
class NatGuard {
 public:
  explicit NatGuard(std::vector<std::string> rule) : rule_(std::move(rule)) {
    if (run(rule_, "-C", true) == 0) {  // a previous run died with the rule in place: adopt it
      added_ = true;
      return;
    }
    int rc = run(rule_, "-A", false);
    if (rc != 0)
      throw std::runtime_error(rc == 127 || rc == -1
                                   ? "cannot run iptables (install the iptables package)"
                                   : "iptables refused the NAT rule (exit " + std::to_string(rc) +
                                         ")");
    added_ = true;
  }
  ~NatGuard() {
    if (added_)
      (void)run(rule_, "-D", true);
  }
  NatGuard(const NatGuard&) = delete;
  NatGuard& operator=(const NatGuard&) = delete;

 private:
  static int run(const std::vector<std::string>& rule, const char* op, bool quiet) {
    std::vector<std::string> argv{"iptables", "-w", "5", "-t", "nat", op};
    argv.insert(argv.end(), rule.begin(), rule.end());
    return run_program(argv, quiet);
  }
  std::vector<std::string> rule_;
  bool added_ = false;
};

/// The running server's moving parts. Threads: enrollment connections call enroll(); the
/// status thread calls status() and sync(); the main thread runs maintenance. Engine and
/// store are thread-safe; `mutex_` orders "store, then engine" updates so that an enrollment
/// and a revoke of the same client cannot apply to the engine in the opposite order.
class Server {
 public:
  Server(const ServerConfig& config, ServerState& state, dataplane::Engine& engine)
      : config_(config), state_(state), engine_(engine) {}

  /// Makes the engine's peers exactly the enrolled, non-revoked clients with addresses.
  void sync() {
    std::lock_guard lock(mutex_);
    sync_locked();
  }

  control::EnrollReply enroll(const control::EnrollRequest& req) {
    std::lock_guard lock(mutex_);
    control::EnrollReply reply = state_.registry->enroll(req, unix_now());
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
    if (auto e = engine_.apply(d)) {
      platform::log_error("Cannot add peer %s to the interface: %s", reply.enrollment->name.c_str(),
                          e.message.c_str());
      return control::EnrollReply::failure("internal", "the server could not add the peer");
    }
    std::string addrs;
    for (const auto& a : reply.enrollment->addresses)
      addrs += " " + a.to_string();
    platform::log_verbose("Enrolled %s:%s", reply.enrollment->name.c_str(), addrs.c_str());
    return reply;
  }

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
    s.interface = config_.interface;
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
    s.pool_v4 = state_.registry->usage(net::Family::kV4, leased);
    s.pool_v6 = state_.registry->usage(net::Family::kV6, leased);
    return s;
  }

  std::string metrics() {
    control::InterfaceStatus s = status();
    std::string out;
    auto label = [&](const control::PeerStatus& p) {
      return "{interface=\"" + s.interface + "\",name=\"" + p.name + "\",public_key=\"" +
             p.public_key.to_base64() + "\"}";
    };
    auto family = [&](const char* metric, const char* help, const char* type, auto value) {
      out +=
          std::string("# HELP ") + metric + " " + help + "\n# TYPE " + metric + " " + type + "\n";
      for (const auto& p : s.peers)
        out += metric + label(p) + " " + std::to_string(value(p)) + "\n";
    };
    family("warren_peer_rx_bytes_total", "Bytes received from the peer.", "counter",
           [](const auto& p) { return p.rx_bytes; });
    family("warren_peer_tx_bytes_total", "Bytes sent to the peer.", "counter",
           [](const auto& p) { return p.tx_bytes; });
    family("warren_peer_rx_packets_total", "Packets received from the peer.", "counter",
           [](const auto& p) { return p.rx_packets; });
    family("warren_peer_tx_packets_total", "Packets sent to the peer.", "counter",
           [](const auto& p) { return p.tx_packets; });
    family("warren_peer_last_handshake_seconds", "Unix time of the last handshake (0 = never).",
           "gauge", [](const auto& p) { return p.last_handshake; });
    out +=
        "# HELP warren_pool_addresses Assignable addresses in the pool.\n"
        "# TYPE warren_pool_addresses gauge\n";
    std::string used =
        "# HELP warren_pool_addresses_used Addresses leased to clients.\n"
        "# TYPE warren_pool_addresses_used gauge\n";
    for (auto [fam, pool] : {std::pair{"v4", s.pool_v4}, std::pair{"v6", s.pool_v6}}) {
      if (!pool)
        continue;
      std::string l = "{interface=\"" + s.interface + "\",family=\"" + fam + "\"}";
      out += "warren_pool_addresses" + l + " " + std::to_string(pool->total) + "\n";
      used += "warren_pool_addresses_used" + l + " " + std::to_string(pool->used) + "\n";
    }
    return out + used;
  }

  /// Handshake times to the store; idle dynamic leases released (and their peers removed).
  void maintain() {
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
      auto released = state_.registry->release_idle(now);
      for (const auto& n : released)
        platform::log_verbose("Released the idle dynamic lease of %s", n.c_str());
      if (!released.empty())
        sync_locked();
    }
  }

 private:
  void sync_locked() {
    std::map<crypto::PublicKey, std::vector<net::Prefix>> want;
    for (const auto& c : state_.store->clients()) {
      if (c.revoked() || c.leases.empty())
        continue;
      auto& v = want[c.public_key];
      for (const auto& l : c.leases)
        v.push_back(
            net::Prefix{l.address, static_cast<std::uint8_t>(l.address.is_v4() ? 32 : 128)});
    }
    wg::ConfigDelta d;
    for (const auto& p : engine_.snapshot().peers) {
      if (!want.count(p.public_key)) {
        wg::PeerDelta rm;
        rm.public_key = p.public_key;
        rm.remove = true;
        d.peers.push_back(rm);
      }
    }
    for (const auto& [key, prefixes] : want) {
      wg::PeerDelta p;
      p.public_key = key;
      p.replace_allowed_ips = true;
      p.allowed_ips_add = prefixes;
      d.peers.push_back(p);
    }
    if (auto e = engine_.apply(d))
      throw std::runtime_error("cannot update the interface's peers: " + e.message);
  }

  const ServerConfig& config_;
  ServerState& state_;
  dataplane::Engine& engine_;
  std::mutex mutex_;
  std::int64_t last_idle_check_ = 0;
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

std::size_t worker_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : std::min(n, 8u);
}

}  // namespace

std::vector<std::string> nat_rule(const ServerConfig& c) {
  return {"POSTROUTING",
          "-s",
          c.ipv4->prefix.to_string(),
          "-o",
          *c.nat_interface,
          "-j",
          "MASQUERADE",
          "-m",
          "comment",
          "--comment",
          "warren:" + c.interface};
}

int run_server(const ServerConfig& config) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "warren server: %s\n", m.c_str());
    return 1;
  };
  std::unique_ptr<platform::TerminationSignals> signals;
  try {
    signals = std::make_unique<platform::TerminationSignals>();
  } catch (const std::exception& e) {
    return fail(std::string("cannot set up signal handling: ") + e.what());
  }
  if (!platform::has_net_admin())
    return fail("creating interface " + config.interface +
                " requires root or CAP_NET_ADMIN (Operation not permitted)");

  ServerState state;
  try {
    state = open_state(config);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  for (const auto& w : state.warnings)
    platform::log_error("warning: %s", w.c_str());

  // The UAPI socket is probed first, so a second server for the same interface fails before
  // it touches the first one's TUN.
  {
    const std::string probe_path =
        std::string(uapi::kDefaultSocketDir) + "/" + config.interface + ".sock";
    if (auto probe = platform::connect_unix(probe_path); probe.ok() || probe.would_block())
      return fail("interface " + config.interface + " is already in use by another process (" +
                  probe_path + ")");
  }

  // Kernel offloads as warren-wg chooses them (WARREN_OFFLOADS, all on when unset).
  const platform::OffloadsParse offloads = platform::offloads_from_environment();
  if (!offloads.ok)
    return fail("invalid WARREN_OFFLOADS: unknown offload \"" + offloads.bad_word +
                "\" (use all, off, or a comma-separated list of tun, gso, gro)");
  auto tun = platform::create_tun(platform::TunOptions{.name = config.interface,
                                                       .queues = worker_count(),
                                                       .vnet_hdr = offloads.offloads.tun,
                                                       .mtu = config.mtu});
  if (!tun.ok())
    return fail("cannot create TUN device " + config.interface + ": " + tun.message());
  platform::log_verbose("Offloads requested: %s; TUN offloads in use: %s",
                        offloads.offloads.to_string().c_str(),
                        tun.value->offloads().to_string().c_str());
  const std::uint32_t ifindex = tun.value->ifindex();

  auto netcfg = platform::open_net_config();
  if (!netcfg.ok())
    return fail("cannot open rtnetlink: " + netcfg.message());
  for (const auto& tn : {config.ipv4, config.ipv6}) {
    if (!tn)
      continue;
    if (auto s = netcfg.value->add_address(ifindex, tn->interface_address());
        !s.ok() && s.error != EEXIST)
      return fail("cannot add address " + tn->interface_address().to_string() + " to " +
                  config.interface + ": " + s.message());
  }

  auto monitor = platform::open_link_monitor(ifindex);
  if (!monitor.ok())
    return fail("cannot open link monitor: " + monitor.message());
  platform::SystemClock clock;
  auto binds = platform::make_system_bind_factory();
  dataplane::EngineOptions eopt;
  eopt.listen_port = config.listen_port;
  eopt.offloads = offloads.offloads;
  eopt.device.isolate_peers = !config.client_to_client;
  auto created =
      dataplane::Engine::create(std::move(tun.value), *binds, clock,
                                crypto::SystemRandom::instance(), std::move(monitor.value), eopt);
  if (!created.ok())
    return fail("cannot bind UDP port " + std::to_string(config.listen_port) + ": " +
                created.message());
  dataplane::Engine& engine = *created.value;
  {
    wg::ConfigDelta d;
    d.private_key = state.private_key;
    if (auto e = engine.apply(d))
      return fail("cannot set the private key: " + e.message);
  }
  Server server(config, state, engine);
  std::unique_ptr<uapi::UapiServer> uapi_server;  // after the engine: destroyed before it
  try {
    server.sync();  // every enrolled peer, as stored
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  if (auto s = netcfg.value->set_up(ifindex, true); !s.ok())
    return fail("cannot bring " + config.interface + " up: " + s.message());

  uapi_server = std::make_unique<uapi::UapiServer>(config.interface, engine);
  if (uapi::ServerError e = uapi_server->bind())
    return fail("cannot open UAPI socket: " + e.message);

  platform::Notifier engine_stopped;
  engine.set_on_stop([&](dataplane::StopReason) { engine_stopped.set(); });
  try {
    engine.start();
  } catch (const std::exception& e) {
    return fail(std::string("cannot start workers: ") + e.what());
  }
  if (uapi::ServerError e = uapi_server->start())
    return fail("cannot start UAPI listener: " + e.message);

  // Forwarding and NAT: needed for client-to-client traffic (the kernel routes it back into
  // the TUN) and for full-tunnel clients.
  std::unique_ptr<SysctlGuard> fwd4, fwd6;
  std::unique_ptr<NatGuard> nat;
  try {
    if (config.client_to_client || config.nat_interface) {
      if (config.ipv4)
        fwd4 = std::make_unique<SysctlGuard>("/proc/sys/net/ipv4/ip_forward", "1");
      if (config.ipv6 && config.client_to_client)
        fwd6 = std::make_unique<SysctlGuard>("/proc/sys/net/ipv6/conf/all/forwarding", "1");
    }
    if (config.nat_interface)
      nat = std::make_unique<NatGuard>(nat_rule(config));
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  std::unique_ptr<control::StatusServer> status;
  std::unique_ptr<control::EnrollServer> enroll;
  std::unique_ptr<MetricsServer> metrics;
  try {
    control::StatusServerOptions sopt;
    sopt.commands["sync"] = [&](std::string_view) {
      server.sync();
      return std::string("ok\n");
    };
    status = std::make_unique<control::StatusServer>(
        config.interface, [&] { return server.status(); }, sopt);
    status->start();
    enroll = std::make_unique<control::EnrollServer>(
        state.tls, config.control_listen,
        [&](const control::EnrollRequest& r) { return server.enroll(r); });
    enroll->start();
    if (config.metrics_listen)
      metrics =
          std::make_unique<MetricsServer>(*config.metrics_listen, [&] { return server.metrics(); });
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  platform::log_error("Server %s up: UDP port %u, enrollment on %s (certificate %s), %zu peer(s)",
                      config.interface.c_str(), static_cast<unsigned>(engine.port()),
                      config.control_listen.c_str(),
                      control::fingerprint_to_hex(state.tls.fingerprint()).substr(0, 16).c_str(),
                      engine.snapshot().peers.size());

  auto loop_result = platform::make_event_loop();
  if (!loop_result.ok())
    return fail("cannot create event loop: " + loop_result.message());
  platform::EventLoop& loop = *loop_result.value;
  bool done = false;
  int rc = 0;
  if (!loop.add(signals->poll_fd(), platform::kReadable,
                [&](std::uint32_t) {
                  if (auto sig = signals->read()) {
                    platform::log_verbose("Received signal %d, shutting down", *sig);
                    done = true;
                  }
                })
           .ok() ||
      !loop.add(engine_stopped.fd(), platform::kReadable,
                [&](std::uint32_t) {
                  engine_stopped.clear();
                  platform::log_error("Shutting down: %s",
                                      dataplane::stop_reason_name(engine.stop_reason()));
                  if (engine.stop_reason() == dataplane::StopReason::kFatalError)
                    rc = 1;
                  done = true;
                })
           .ok())
    return fail("cannot watch signals");
  std::function<void()> tick = [&] {
    try {
      server.maintain();
    } catch (const std::exception& e) {
      platform::log_error("Maintenance failed: %s", e.what());
    }
    (void)loop.set_timer(clock.now().mono + kMaintenanceInterval, tick);
  };
  (void)loop.set_timer(clock.now().mono + kMaintenanceInterval, tick);
  while (!done) {
    auto r = loop.run_once(Duration(-1));
    if (!r.ok()) {
      platform::log_error("Event loop failed: %s", r.message().c_str());
      rc = 1;
      break;
    }
  }
  metrics.reset();
  enroll->stop();
  status->stop();
  uapi_server->stop();
  engine.stop();
  nat.reset();
  fwd6.reset();
  fwd4.reset();
  // Deleting the link removes its addresses and routes with it.
  (void)netcfg.value->delete_link(ifindex);
  platform::log_verbose("Shut down");
  return rc;
}

}  // namespace warren::server
