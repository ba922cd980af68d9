#pragma once
/// Engine: runs one wg::Device between a TUN device and UDP, on share-nothing workers.
///
///   worker i (thread, own epoll):  TUN queue i ──read batch──► encapsulate ──sendmmsg──► bind i
///                                  bind i ──recvmmsg batch──► decapsulate ──write batch──► TUN
///                                  queue i
///   worker 0 also:                 timer ──► Device::tick;  link monitor ──► MTU / deletion
///   any thread:                    apply() / snapshot()  (the UAPI handler)
///   added transports:              worker 0 receives; any worker sends by Path::transport
///                                  (dataplane/transport.h: the path seam; tag 0 = UDP binds)
///   STUN on the UDP sockets:       a received datagram that is not WireGuard-shaped and is
///                                  stun::is_stun goes to the StunSink; send_datagram() sends
///                                  from worker 0's socket (mesh endpoint discovery)
///
/// Every worker owns one TUN queue and one UDP bind; all binds share one port (SO_REUSEPORT),
/// so the kernel keeps each remote 4-tuple on one worker and each inner flow on one TUN queue.
/// See engine.cc for the ordering contract.
///
/// The engine can run threaded (start()/stop(): one thread per worker, driven by an EventLoop,
/// which needs a Clock whose `mono` is CLOCK_MONOTONIC, e.g. SystemClock), or be pumped by the
/// caller on one thread (pump(): deterministic tests with a ManualClock and the fakes).
///
/// Thread-safety: apply(), snapshot(), set()/get() (the uapi::Handler interface), port(),
/// fwmark(), request_stop() and stop_reason() may be called from any thread. start(), stop()
/// and pump() belong to the owner's thread; pump() must not be used while started.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/random.h"
#include "base/result.h"
#include "base/time.h"
#include "dataplane/transport.h"
#include "platform/clock.h"
#include "platform/netlink.h"
#include "platform/offloads.h"
#include "platform/tun_device.h"
#include "platform/udp.h"
#include "uapi/server.h"
#include "wg/config.h"
#include "wg/device.h"

namespace warren::dataplane {

struct EngineOptions {
  std::uint16_t listen_port = 0;  ///< 0 = a random free port
  std::uint32_t fwmark = 0;
  int socket_buffer_bytes = 7 << 20;
  /// Device options; `mtu` is replaced by the TUN's MTU when the TUN reports one.
  wg::DeviceOptions device;
  /// Kernel offloads the UDP binds may use (udp_gso, udp_gro; `tun` is the TUN's business).
  platform::Offloads offloads;
  /// Write each decrypted packet to the TUN queue of its inner flow's hash, handing it to that
  /// queue's worker when it is not the receiving one (see engine.cc), so one peer's flows use
  /// every worker. Off by default: on the 2-vCPU project VM, with both tunnel ends, iperf3 and
  /// softirq sharing the cores, the copy and hand-off cost more than the spread gained
  /// (docs/benchmarks.md); one peer's traffic then stays on the worker that receives it.
  bool spread_flows = false;
};

enum class StopReason : std::uint8_t {
  kNone,           ///< still running
  kRequested,      ///< request_stop() / stop() by the owner
  kInterfaceGone,  ///< the TUN interface was deleted
  kFatalError,     ///< an unrecoverable I/O error (logged)
};

const char* stop_reason_name(StopReason r);

struct EngineCounters {
  std::uint64_t tun_read = 0;            ///< packets read from the TUN
  std::uint64_t udp_sent = 0;            ///< datagrams handed to the kernel (data path + Outbox)
  std::uint64_t udp_received = 0;        ///< datagrams received
  std::uint64_t transport_sent = 0;      ///< datagrams handed to added transports (PathTransport)
  std::uint64_t transport_received = 0;  ///< datagrams received from them
  std::uint64_t tun_written = 0;         ///< packets written to the TUN
  std::uint64_t send_errors = 0;         ///< datagrams the kernel refused or that were dropped
  std::uint64_t stale_sources = 0;       ///< sends retried without their sticky source
  std::uint64_t handed_off = 0;          ///< decrypted packets written by their flow's worker
  std::uint64_t handoff_dropped = 0;     ///< ... dropped because that worker's inbox was full
  std::uint64_t handshakes_handled = 0;  ///< queued handshake messages given to the Device
  std::uint64_t stun_received = 0;       ///< STUN messages handed to the StunSink
  /// Handshake messages dropped on arrival because their lane (wg::Lane order) was full.
  std::array<std::uint64_t, wg::kHandshakeLanes> handshakes_dropped{};
};

class Worker;

/// Receives the STUN messages that arrive on the engine's sockets (mesh endpoint discovery,
/// docs/MESH.md "STUN and WireGuard on one socket"). The engine routes a received datagram here
/// when it is not WireGuard-shaped (type 1..4 and three zero bytes) and mesh::stun::is_stun()
/// holds; everything else goes to the Device as before.
class StunSink {
 public:
  virtual ~StunSink() = default;
  /// Called on the receiving worker's thread (any worker: SO_REUSEPORT spreads remote 4-tuples
  /// over the sockets), possibly concurrently: it must be thread-safe, must not block and must
  /// not call back into the engine except send_datagram(). `message` is valid during the call.
  virtual void on_stun(const net::Path& from, ConstBytes message, Now now) = 0;
};

class Engine final : public uapi::Handler {
 public:
  /// Opens one UDP bind per TUN queue (one worker per queue) on a shared port and creates the
  /// Device. `link_monitor` may be null. Fails like BindFactory::open (EADDRINUSE, ...).
  /// `rng`, `binds` and `clock` must outlive the engine.
  static Result<std::unique_ptr<Engine>> create(std::unique_ptr<platform::TunDevice> tun,
                                                platform::BindFactory& binds,
                                                platform::Clock& clock, RandomSource& rng,
                                                std::unique_ptr<platform::LinkMonitor> link_monitor,
                                                EngineOptions options);

  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Starts one thread per worker. Throws std::system_error if a thread or event loop cannot
  /// be created (start-up only).
  void start();
  /// Asks every worker to stop and joins them. Idempotent; the destructor calls it.
  void stop();
  /// Makes the workers stop soon (any thread, also from inside a worker). The first reason
  /// sticks; the stop callback runs once, on the calling thread.
  void request_stop(StopReason reason);
  StopReason stop_reason() const { return stop_reason_.load(); }
  /// Called once when the engine decides to stop (interface gone, fatal error, request_stop).
  /// Set before start(); it runs on a worker or the requesting thread and must not call stop().
  void set_on_stop(std::function<void(StopReason)> callback) { on_stop_ = std::move(callback); }

  /// Adds a transport for peers' datagrams (see dataplane/transport.h) and returns its tag
  /// (1, 2, ...), the net::Path::transport of paths over it: wg::PeerDelta::transport with an
  /// endpoint sends a peer's datagrams through it, and datagrams it receives roam peers to it.
  /// Before start() only (throws std::logic_error after; at most 255).
  std::uint8_t add_transport(std::unique_ptr<PathTransport> transport);

  /// Routes STUN messages received on the UDP sockets to `sink` (null: none, the default; they
  /// then reach the Device, which drops them as invalid). Before start(); `sink` must outlive
  /// the workers (stop() first).
  void set_stun_sink(StunSink* sink) { stun_sink_ = sink; }

  /// Sends one datagram (not a WireGuard message: a STUN request) to `to` from worker 0's UDP
  /// socket — the socket, hence the source port and NAT mapping, WireGuard uses. Any thread;
  /// queued to worker 0 and sent in its next round (or the next pump()).
  void send_datagram(const net::Endpoint& to, ConstBytes datagram);

  /// Single-threaded mode: processes whatever is ready on every worker (one batch per source),
  /// mailboxes, and Device::tick when due. Returns true if anything was done.
  bool pump();

  /// Applies a configuration delta whole or not at all. listen_port/fwmark changes rebind or
  /// re-mark every worker's sockets first; failure there means EADDRINUSE and nothing changes.
  /// Everything sent while or after the delta is applied leaves from the new sockets.
  [[nodiscard]] Status apply(const wg::ConfigDelta& delta);
  /// The device's state with listen_port/fwmark filled in.
  wg::DeviceSnapshot snapshot() const;

  // uapi::Handler
  Status set(const wg::ConfigDelta& delta) override { return apply(delta); }
  wg::DeviceSnapshot get() override { return snapshot(); }

  std::uint16_t port() const { return port_.load(); }
  std::uint32_t fwmark() const { return fwmark_.load(); }
  std::size_t worker_count() const { return workers_.size(); }
  wg::Device& device() { return *device_; }
  platform::TunDevice& tun() { return *tun_; }
  EngineCounters counters() const;

 private:
  friend class Worker;
  Engine(std::unique_ptr<platform::TunDevice> tun, platform::BindFactory& binds,
         platform::Clock& clock, RandomSource& rng,
         std::unique_ptr<platform::LinkMonitor> link_monitor, EngineOptions options);

  /// Opens one bind per worker on `port` (the first probes that nobody else holds it).
  Result<std::vector<std::unique_ptr<platform::UdpBind>>> open_binds(std::uint16_t port,
                                                                     std::uint32_t fwmark);
  /// Hands every worker its new bind and waits until all have switched (or swaps inline when
  /// not started). Returns the binds they replaced, still open.
  std::vector<std::unique_ptr<platform::UdpBind>> install_binds(
      std::vector<std::unique_ptr<platform::UdpBind>> binds);
  void on_link_event(const platform::LinkEvent& event);
  /// Wakes worker 0 when the device's next deadline is earlier than its armed timer (a packet
  /// or apply() made one). Two atomic loads when not.
  void wake_timers_if_earlier();
  bool has_transport(std::uint8_t tag) const { return tag >= 1 && tag <= transports_.size(); }
  PathTransport& transport(std::uint8_t tag) { return *transports_[tag - 1]; }

  std::unique_ptr<platform::TunDevice> tun_;
  platform::BindFactory& binds_;
  platform::Clock& clock_;
  std::unique_ptr<wg::Device> device_;
  std::unique_ptr<platform::LinkMonitor> link_monitor_;
  EngineOptions options_;
  std::vector<std::unique_ptr<PathTransport>> transports_;  // tag t at t - 1; fixed once started
  StunSink* stun_sink_ = nullptr;                           // fixed once started
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  bool started_ = false;

  std::mutex config_mutex_;  // serialises apply(): binds, port and fwmark change under it
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::uint32_t> fwmark_{0};

  std::atomic<StopReason> stop_reason_{StopReason::kNone};
  std::function<void(StopReason)> on_stop_;
};

}  // namespace warren::dataplane
