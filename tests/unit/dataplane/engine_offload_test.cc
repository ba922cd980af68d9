// The engine over vnet-header TUNs (FakeTun in offload mode): a TSO super-packet entering one
// end leaves the other end as coalesced super-packets carrying exactly the same segments.
#include <gtest/gtest.h>

#include <random>

#include "crypto/x25519.h"
#include "dataplane/engine.h"
#include "net/gso.h"
#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "unit/net/gso_packets.h"

namespace warren::dataplane {
namespace {

using net::IpAddress;
using platform::fake::FakeHost;
using platform::fake::FakeNetwork;
using platform::fake::FakeTun;
using Packet = std::vector<std::uint8_t>;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

class Rng final : public RandomSource {
 public:
  explicit Rng(std::uint64_t seed) : rng_(seed) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>(rng_());
  }

 private:
  std::mt19937_64 rng_;
};

struct End {
  End(FakeNetwork& net, const char* addr, std::uint64_t seed, platform::Clock& clock,
      std::uint16_t port)
      : rng(seed), host(net.add_host({ip(addr)})) {
    auto t = std::make_unique<FakeTun>("wofl", 1, 1420);
    t->set_offloads({true, true, true});
    tun = t.get();
    auto e =
        Engine::create(std::move(t), host, clock, rng, nullptr, EngineOptions{.listen_port = port});
    EXPECT_TRUE(e.ok()) << e.message();
    engine = std::move(*e);
    key = crypto::generate_private_key(rng);
  }
  Rng rng;
  FakeHost& host;
  FakeTun* tun;
  std::unique_ptr<Engine> engine;
  crypto::PrivateKey key;
};

void peer_with(End& a, End& b, const char* b_tunnel, const char* b_addr, bool endpoint) {
  wg::ConfigDelta d;
  d.private_key = a.key;
  wg::PeerDelta p;
  p.public_key = crypto::derive_public_key(b.key);
  if (endpoint)
    p.endpoint = net::Endpoint{ip(b_addr), b.engine->port()};
  p.allowed_ips_add.push_back(*net::Prefix::parse(std::string(b_tunnel) + "/32"));
  d.peers.push_back(p);
  ASSERT_TRUE(a.engine->apply(d));
}

void pump(End& a, End& b, FakeNetwork& net) {
  for (int round = 0; round < 1000; ++round) {
    bool did = a.engine->pump() | b.engine->pump();
    if (!did) {
      net.flush();
      if (!(a.engine->pump() | b.engine->pump()))
        return;
    }
  }
  ADD_FAILURE() << "engines never went idle";
}

TEST(EngineOffload, TsoSuperPacketCrossesTheTunnelAndIsCoalescedAgain) {
  platform::ManualClock clock;
  FakeNetwork net;
  End a(net, "192.0.2.1", 1, clock, 51820);
  End b(net, "192.0.2.2", 2, clock, 51821);
  peer_with(a, b, "10.0.0.2", "192.0.2.2", true);
  peer_with(b, a, "10.0.0.1", "192.0.2.1", false);

  // Handshake with one plain packet first.
  testing::PacketSpec hello{.proto = 17, .payload = 10};
  a.tun->inject(testing::build_packet(hello));
  pump(a, b, net);
  ASSERT_EQ(b.tun->take_written().size(), 1u);
  b.tun->take_written_frames();

  // 10.0.0.1 -> 10.0.0.2: one 20 KB TSO frame with gso_size 1368 (15 segments).
  testing::PacketSpec s{.tcp_options = testing::timestamp_option(3, 4), .payload = 20000};
  Packet whole = testing::build_packet(s);
  Packet frame(net::kVirtioNetHdrSize);
  net::encode_virtio_net_hdr({net::kVirtioNeedsCsum, net::kGsoTcpV4, 52, 1368, 20, 16},
                             frame.data());
  frame.insert(frame.end(), whole.begin(), whole.end());
  net::GsoParse parse = net::parse_gso_frame(frame);
  ASSERT_TRUE(parse.ok());
  std::vector<Packet> segments;
  for (std::size_t i = 0; i < parse.frame.segments; ++i) {
    Packet seg(net::segment_size(parse.frame, i));
    ASSERT_EQ(net::split_segment(parse.frame, i, seg), seg.size());
    segments.push_back(seg);
  }
  ASSERT_EQ(segments.size(), 15u);
  a.tun->inject_frame(0, frame);
  pump(a, b, net);

  EXPECT_EQ(a.tun->offload_stats().super_packets_read, 1u);
  EXPECT_EQ(b.tun->take_written(), segments) << "the segments arrive intact and in order";
  const auto frames = b.tun->take_written_frames();
  ASSERT_FALSE(frames.empty());
  EXPECT_LT(frames.size(), segments.size()) << "the receiving end coalesced nothing";
  EXPECT_EQ(net::decode_virtio_net_hdr(frames[0].data()).gso_type, net::kGsoTcpV4);
  EXPECT_EQ(b.tun->offload_stats().segments_written, 15u);
}

}  // namespace
}  // namespace warren::dataplane
