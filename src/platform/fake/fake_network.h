#pragma once
/// FakeNetwork: an in-memory UDP network joining FakeHosts (wireguard-go's bindtest idea).
///
/// Each FakeHost owns some IP addresses and is a BindFactory: binds opened on it listen on all
/// of its addresses, like a kernel socket bound to the wildcard address. A datagram sent to an
/// endpoint is queued on the bind that holds the destination host's port (within a reuseport
/// group, chosen by a stable hash of the sender's endpoint, as the kernel does), with the Path
/// the real bind would report: the sender's address and port, and the local address it was sent
/// to (ifindex = the host's `ifindex`). Datagrams to nowhere vanish, as UDP does.
///
/// Sticky sources are checked: a Path.local that the sending host does not own is dropped and
/// the datagram marked `source_dropped`, like the kernel's EINVAL on a stale IP_PKTINFO.
///
/// Impairments (loss, duplication, reordering) come from a seeded generator, so a failing test
/// replays exactly. Thread-safety: everything may be called from any thread; the network must
/// outlive its hosts and their binds.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "net/ip_address.h"
#include "platform/udp.h"

namespace warren::platform::fake {

struct Impairments {
  double loss = 0;       ///< probability a datagram is dropped
  double duplicate = 0;  ///< probability a datagram is delivered twice
  double reorder = 0;    ///< probability a datagram is held back and delivered after the next one
  std::uint64_t seed = 1;
};

class FakeNetwork;
class FakeBind;

class FakeHost final : public BindFactory {
 public:
  Result<std::unique_ptr<UdpBind>> open(const BindOptions& options) override;

  const std::vector<net::IpAddress>& addresses() const { return addresses_; }
  /// Adds or removes an address at run time (removing one makes it a stale sticky source).
  void add_address(const net::IpAddress& a);
  void remove_address(const net::IpAddress& a);
  std::uint32_t ifindex() const { return ifindex_; }
  /// The options of every open() so far, in order (tests check what the engine asked for).
  std::vector<BindOptions> opened_options() const;

 private:
  friend class FakeNetwork;
  friend class FakeBind;
  FakeHost(FakeNetwork& net, std::vector<net::IpAddress> addresses, std::uint32_t ifindex)
      : net_(net), addresses_(std::move(addresses)), ifindex_(ifindex) {}

  FakeNetwork& net_;
  std::vector<net::IpAddress> addresses_;  // guarded by the network's mutex
  std::uint32_t ifindex_;
  std::map<std::uint16_t, std::vector<FakeBind*>> ports_;  // guarded by the network's mutex
  std::uint16_t next_port_ = 40000;
  std::vector<BindOptions> opened_options_;  // guarded by the network's mutex
};

class FakeNetwork {
 public:
  explicit FakeNetwork(Impairments impairments = {});
  ~FakeNetwork();
  FakeNetwork(const FakeNetwork&) = delete;
  FakeNetwork& operator=(const FakeNetwork&) = delete;

  /// A host owning `addresses`; the reference lives as long as the network.
  FakeHost& add_host(std::vector<net::IpAddress> addresses);
  void set_impairments(const Impairments& impairments);
  /// Delivers a datagram held back for reordering, if any.
  void flush();

  std::uint64_t delivered() const;
  std::uint64_t dropped() const;

 private:
  friend class FakeHost;
  friend class FakeBind;
  struct InFlight;

  // Called by FakeBind::send with the network lock not held.
  void transmit(FakeHost& from, std::uint16_t from_port, OutDatagram& d, int& error);
  void deliver_locked(const InFlight& f);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<FakeHost>> hosts_;
  Impairments impairments_;
  std::mt19937_64 rng_;
  std::unique_ptr<InFlight> held_;
  std::uint64_t delivered_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace warren::platform::fake
