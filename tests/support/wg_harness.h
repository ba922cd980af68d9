#pragma once
// Two or more wg::Devices in one process: a scripted RNG, a fake clock, and an in-memory network
// that can lose, hold back or duplicate datagrams. Nothing here touches the OS.

#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <vector>

#include "base/bytes.h"
#include "base/encoding.h"
#include "crypto/x25519.h"
#include "wg/device.h"

namespace warren::test {

/// Returns scripted bytes first, then a seeded pseudo-random stream (reproducible transcripts).
class ScriptedRandom final : public RandomSource {
 public:
  explicit ScriptedRandom(std::uint64_t seed = 1) : prng_(seed) {}
  void push(std::span<const std::uint8_t> bytes) {
    script_.insert(script_.end(), bytes.begin(), bytes.end());
  }
  void push_u32_le(std::uint32_t v) {
    std::uint8_t b[4];
    store_le32(b, v);
    push(b);
  }
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out) {
      if (!script_.empty()) {
        b = script_.front();
        script_.pop_front();
      } else {
        b = static_cast<std::uint8_t>(prng_());
      }
    }
  }

 private:
  std::deque<std::uint8_t> script_;
  std::mt19937_64 prng_;
};

struct Datagram {
  net::Path to;
  std::vector<std::uint8_t> bytes;
};

/// An Outbox whose datagrams tests read as a list: out() moves what the Device appended since
/// the last look to the end of the list (in order) and returns it; tests may edit the list.
class CollectingSink final : public wg::Outbox {
 public:
  std::vector<Datagram>& out() {
    for (std::size_t i = 0; i < size(); ++i) {
      ConstBytes d = datagram(i);
      out_.push_back({path(i), std::vector<std::uint8_t>(d.begin(), d.end())});
    }
    clear();
    return out_;
  }

 private:
  std::vector<Datagram> out_;
};

/// A minimal IPv4 packet (20-byte header + payload) from src to dst.
inline std::vector<std::uint8_t> ipv4_packet(const std::string& src, const std::string& dst,
                                             std::size_t payload, std::uint8_t fill = 0xab) {
  std::vector<std::uint8_t> p(20 + payload, fill);
  p[0] = 0x45;
  p[1] = 0;
  store_be16(&p[2], static_cast<std::uint16_t>(20 + payload));
  store_be32(&p[4], 0);
  p[8] = 64;
  p[9] = 17;
  store_be16(&p[10], 0);
  auto s = net::IpAddress::parse(src);
  auto d = net::IpAddress::parse(dst);
  std::memcpy(&p[12], s->data(), 4);
  std::memcpy(&p[16], d->data(), 4);
  return p;
}

struct Node {
  Node(std::string name_, std::uint64_t seed, net::Endpoint addr_, std::string tunnel_ip_,
       wg::DeviceOptions options = {})
      : name(std::move(name_)),
        rng(seed),
        device(rng, options),
        addr(addr_),
        tunnel_ip(std::move(tunnel_ip_)) {
    priv = crypto::generate_private_key(rng);
    pub = crypto::derive_public_key(priv);
  }
  std::string name;
  ScriptedRandom rng;
  wg::Device device;
  net::Endpoint addr;
  std::string tunnel_ip;
  crypto::PrivateKey priv;
  crypto::PublicKey pub;
  CollectingSink sink;
  std::vector<std::vector<std::uint8_t>> received;  // IP packets delivered to the "TUN"
};

/// A network of nodes joined by a switch with programmable loss. Time is a fake clock.
class Network {
 public:
  Now now{MonoTime(std::chrono::seconds(1000)), WallTime(std::chrono::seconds(1700000000))};
  std::vector<Node*> nodes;
  /// Return true to drop a datagram (from, to, bytes).
  std::function<bool(const Node&, const Node&, const Datagram&)> lose;
  std::size_t delivered = 0;
  /// One-way latency. Zero: run() delivers a datagram and the answers it causes in one round,
  /// in node order. Non-zero: each round first takes every node's queued datagrams, then
  /// advances the clock by `delay`, then delivers them (one hop per round).
  Duration delay{};

  void advance(Duration d) {
    now.mono += d;
    now.wall += d;
  }

  Node* node_at(const net::Endpoint& e) {
    for (auto* n : nodes) {
      if (n->addr == e)
        return n;
    }
    return nullptr;
  }

  /// Configure `a` with `b` as a peer (allowed IPs = b's tunnel address /32).
  static void connect(Node& a, const Node& b, bool with_endpoint = true,
                      std::uint16_t keepalive = 0) {
    wg::ConfigDelta d;
    d.private_key = a.priv;
    wg::PeerDelta p;
    p.public_key = b.pub;
    if (with_endpoint)
      p.endpoint = b.addr;
    p.allowed_ips_add.push_back(*net::Prefix::parse(b.tunnel_ip + "/32"));
    if (keepalive)
      p.persistent_keepalive = keepalive;
    d.peers.push_back(p);
    CollectingSink s;
    auto err = a.device.apply(d, {}, s);
    if (!err)
      throw std::runtime_error(err.message());
  }

  /// Encapsulates an IP packet on `from` (as if read from its TUN) and queues the result.
  wg::SendResult send_ip(Node& from, const std::vector<std::uint8_t>& packet) {
    std::vector<std::uint8_t> buf(wg::kSendHeadroom + packet.size() + wg::kSendTailroom);
    std::memcpy(buf.data() + wg::kSendHeadroom, packet.data(), packet.size());
    auto r = from.device.encapsulate(buf, packet.size(), now, from.sink);
    if (r.verdict == wg::Verdict::kToNetwork) {
      from.sink.out().push_back(
          {r.to, std::vector<std::uint8_t>(buf.begin(), buf.begin() + r.length)});
    }
    return r;
  }

  /// Delivers queued datagrams until the network is quiet (bounded).
  void run(int max_rounds = 100) {
    for (int round = 0; round < max_rounds; ++round) {
      bool any = false;
      std::vector<std::vector<Datagram>> taken;
      if (delay != Duration{}) {
        for (auto* n : nodes) {
          taken.push_back(std::move(n->sink.out()));
          n->sink.out().clear();
          any = any || !taken.back().empty();
        }
        if (any)
          advance(delay);
      }
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        Node* n = nodes[i];
        std::vector<Datagram> out;
        if (delay != Duration{}) {
          out = std::move(taken[i]);
        } else {
          out = std::move(n->sink.out());
          n->sink.out().clear();
        }
        for (auto& dg : out) {
          any = true;
          Node* dst = node_at(dg.to.remote);
          if (!dst)
            continue;
          if (lose && lose(*n, *dst, dg))
            continue;
          ++delivered;
          net::Path from{n->addr, dst->addr.address, 0};
          auto r = dst->device.decapsulate(from, dg.bytes, now, dst->sink);
          if (r.verdict == wg::Verdict::kToTun) {
            dst->received.emplace_back(dg.bytes.begin() + r.offset,
                                       dg.bytes.begin() + r.offset + r.length);
          }
        }
      }
      if (!any)
        return;
    }
  }

  void tick_all() {
    for (auto* n : nodes)
      n->device.tick(now, n->sink);
  }

  /// Advances time in steps, ticking and delivering, for `total`.
  void elapse(Duration total, Duration step = std::chrono::milliseconds(100)) {
    for (Duration t{0}; t < total; t += step) {
      advance(step);
      tick_all();
      run();
    }
  }
};

}  // namespace warren::test
