// STUN on the engine's WireGuard socket (docs/MESH.md): the receive batch hands STUN messages to
// the StunSink and everything else to the Device; send_datagram() leaves from the WireGuard port.
// Pumped engines on the in-memory network fakes.
#include <gtest/gtest.h>

#include <mutex>
#include <random>
#include <vector>

#include "crypto/x25519.h"
#include "dataplane/engine.h"
#include "mesh/stun.h"
#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "support/engine_harness.h"
#include "unit/platform/test_packets.h"

namespace warren::dataplane {
namespace {

using net::IpAddress;
using platform::fake::FakeHost;
using platform::fake::FakeNetwork;
using platform::fake::FakeTun;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

using test::SeededRandom;

struct RecordingSink final : StunSink {
  void on_stun(const net::Path& from, ConstBytes message, Now) override {
    std::lock_guard lock(mutex);
    got.push_back({from.remote, std::vector<std::uint8_t>(message.begin(), message.end())});
  }
  std::mutex mutex;
  std::vector<std::pair<net::Endpoint, std::vector<std::uint8_t>>> got;
};

struct Node {
  Node(FakeNetwork& net, const char* addr, const char* tun_name, std::uint64_t seed,
       platform::Clock& clock, std::uint16_t port)
      : rng(seed), host(net.add_host({ip(addr)})) {
    auto t = std::make_unique<FakeTun>(tun_name, 2, 1420);
    tun = t.get();
    auto e =
        Engine::create(std::move(t), host, clock, rng, nullptr, EngineOptions{.listen_port = port});
    EXPECT_TRUE(e.ok()) << e.message();
    engine = std::move(*e);
    private_key = crypto::generate_private_key(rng);
    public_key = crypto::derive_public_key(private_key);
  }
  SeededRandom rng;
  FakeHost& host;
  FakeTun* tun = nullptr;
  std::unique_ptr<Engine> engine;
  crypto::PrivateKey private_key;
  crypto::PublicKey public_key;
};

// A plain UDP socket standing in for the STUN server.
struct Server {
  Server(FakeNetwork& net, const char* addr, std::uint16_t port) : host(net.add_host({ip(addr)})) {
    platform::BindOptions o;
    o.port = port;
    auto b = host.open(o);
    EXPECT_TRUE(b.ok()) << b.message();
    bind = std::move(*b);
    endpoint = net::Endpoint{ip(addr), port};
  }
  // Everything received so far, with the sender.
  std::vector<std::pair<net::Path, std::vector<std::uint8_t>>> receive() {
    std::vector<std::pair<net::Path, std::vector<std::uint8_t>>> out;
    std::vector<std::uint8_t> mem(4 * 2048);
    std::array<Bytes, 4> bufs;
    for (std::size_t i = 0; i < 4; ++i)
      bufs[i] = Bytes(mem.data() + i * 2048, 2048);
    std::array<std::size_t, 4> sizes{};
    std::array<net::Path, 4> paths{};
    for (std::size_t s = 0; s < bind->socket_count(); ++s) {
      for (;;) {
        auto r = bind->receive(s, bufs, sizes, paths);
        if (r.count == 0)
          break;
        for (std::size_t i = 0; i < r.count; ++i)
          out.push_back(
              {paths[i], std::vector<std::uint8_t>(bufs[i].begin(), bufs[i].begin() + sizes[i])});
      }
    }
    return out;
  }
  void send(const net::Endpoint& to, ConstBytes d) {
    std::array<platform::OutDatagram, 1> one{platform::OutDatagram{d, net::Path{to}, false}};
    EXPECT_EQ(bind->send(one).count, 1u);
  }
  FakeHost& host;
  std::unique_ptr<platform::UdpBind> bind;
  net::Endpoint endpoint;
};

void pump(std::initializer_list<Engine*> engines, FakeNetwork& net) {
  test::pump_engines(engines, net);
}

class EngineStun : public ::testing::Test {
 protected:
  platform::ManualClock clock_;
  FakeNetwork net_;
  Node a_{net_, "192.0.2.1", "wstnA", 1, clock_, 51820};
  Node b_{net_, "192.0.2.2", "wstnB", 2, clock_, 51821};
  Server stun_{net_, "198.51.100.1", 3478};
  RecordingSink sink_;
  const mesh::stun::TransactionId id_{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
};

TEST_F(EngineStun, RequestLeavesFromTheWireGuardPortAndTheAnswerReachesTheSink) {
  a_.engine->set_stun_sink(&sink_);
  a_.engine->send_datagram(stun_.endpoint, mesh::stun::build_binding_request(id_));
  pump({a_.engine.get()}, net_);
  auto got = stun_.receive();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first.remote, (net::Endpoint{ip("192.0.2.1"), 51820}))
      << "the request must leave from the WireGuard socket's port";
  auto req_id = mesh::stun::parse_binding_request(got[0].second);
  ASSERT_TRUE(req_id.ok()) << req_id.message();
  EXPECT_EQ(*req_id, id_);

  const auto answer = mesh::stun::build_binding_success(id_, got[0].first.remote);
  stun_.send(got[0].first.remote, answer);
  pump({a_.engine.get()}, net_);
  ASSERT_EQ(sink_.got.size(), 1u);
  EXPECT_EQ(sink_.got[0].first, stun_.endpoint);
  EXPECT_EQ(sink_.got[0].second, answer);
  EXPECT_EQ(a_.engine->counters().stun_received, 1u);
  EXPECT_EQ(a_.tun->take_written().size(), 0u);
}

TEST_F(EngineStun, WireGuardShapedAndJunkDatagramsNeverReachTheSink) {
  a_.engine->set_stun_sink(&sink_);
  const net::Endpoint to{ip("192.0.2.1"), 51820};
  // WireGuard-shaped with the magic cookie at 4..7 and a STUN-consistent length (20 bytes): the
  // engine's first check keeps it from the sink whatever follows.
  std::vector<std::uint8_t> wg_like(20, 0);
  wg_like[0] = 4;
  store_be32(wg_like.data() + 4, mesh::stun::kMagicCookie);
  stun_.send(to, wg_like);
  // Not WireGuard, cookie present, but the length field is wrong: not STUN either.
  auto bad_len = mesh::stun::build_binding_success(id_, to);
  bad_len.push_back(0);
  stun_.send(to, bad_len);
  // Plain junk.
  std::vector<std::uint8_t> junk(40, 0xee);
  stun_.send(to, junk);
  pump({a_.engine.get()}, net_);
  EXPECT_TRUE(sink_.got.empty());
  EXPECT_EQ(a_.engine->counters().stun_received, 0u);
  EXPECT_EQ(a_.engine->counters().udp_received, 3u);
  // All three went to the Device, which dropped them.
  EXPECT_EQ(a_.engine->device().drop_count(wg::Drop::kUnknownType) +
                a_.engine->device().drop_count(wg::Drop::kTooShort) +
                a_.engine->device().drop_count(wg::Drop::kBadSize),
            3u);
}

TEST_F(EngineStun, WithoutASinkStunGoesToTheDeviceAsBefore) {
  stun_.send({ip("192.0.2.1"), 51820}, mesh::stun::build_binding_success(id_, stun_.endpoint));
  pump({a_.engine.get()}, net_);
  EXPECT_EQ(a_.engine->counters().stun_received, 0u);
  EXPECT_EQ(a_.engine->counters().udp_received, 1u);
  EXPECT_EQ(a_.engine->device().drop_count(wg::Drop::kUnknownType), 1u);
}

// The proof that both share the socket: a tunnel's handshake and data work while STUN messages
// come and go on the same port, and neither reaches the other's consumer.
TEST_F(EngineStun, TunnelAndStunShareTheSocket) {
  a_.engine->set_stun_sink(&sink_);
  wg::ConfigDelta da;
  da.private_key = a_.private_key;
  wg::PeerDelta pa;
  pa.public_key = b_.public_key;
  pa.endpoint = net::Endpoint{ip("192.0.2.2"), 51821};
  pa.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.2/32"));
  da.peers.push_back(pa);
  ASSERT_TRUE(a_.engine->apply(da));
  wg::ConfigDelta db;
  db.private_key = b_.private_key;
  wg::PeerDelta pb;
  pb.public_key = a_.public_key;
  pb.allowed_ips_add.push_back(*net::Prefix::parse("10.0.0.1/32"));
  db.peers.push_back(pb);
  ASSERT_TRUE(b_.engine->apply(db));

  auto ping = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 100, 0x11);
  a_.tun->inject(ping);
  a_.engine->send_datagram(stun_.endpoint, mesh::stun::build_binding_request(id_));
  pump({a_.engine.get(), b_.engine.get()}, net_);
  auto req = stun_.receive();
  ASSERT_EQ(req.size(), 1u);
  stun_.send(req[0].first.remote, mesh::stun::build_binding_success(id_, req[0].first.remote));
  auto pong = testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 100, 0x22);
  b_.tun->inject(pong);
  pump({a_.engine.get(), b_.engine.get()}, net_);

  auto at_b = b_.tun->take_written();
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0], ping);
  auto at_a = a_.tun->take_written();
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0], pong);
  ASSERT_EQ(sink_.got.size(), 1u);
  EXPECT_EQ(sink_.got[0].first, stun_.endpoint);
  EXPECT_EQ(a_.engine->device().drop_count(wg::Drop::kUnknownType), 0u)
      << "the STUN answer must not reach the Device";
}

}  // namespace
}  // namespace warren::dataplane
