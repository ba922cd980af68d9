// The QUIC fallback's UDP probe end to end on the in-memory network: a client engine's
// runtime::UdpProbe asks, from its WireGuard port, the server engine's WireGuard port; the
// server's WireGuardPortStun answers through its engine; the probe sees the answer. A server
// without the responder (no [quic]), an answer from elsewhere and a stale transaction do not
// count.
#include <gtest/gtest.h>

#include <mutex>
#include <random>

#include "dataplane/engine.h"
#include "mesh/stun.h"
#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "runtime/udp_probe.h"
#include "server/stun_responder.h"
#include "support/engine_harness.h"

namespace warren::server {
namespace {

using net::IpAddress;
using platform::fake::FakeHost;
using platform::fake::FakeNetwork;
using platform::fake::FakeTun;

using test::SeededRandom;

struct Node {
  Node(FakeNetwork& net, const char* addr, const char* tun, std::uint64_t seed,
       platform::Clock& clock, std::uint16_t port)
      : rng(seed), host(net.add_host({*IpAddress::parse(addr)})) {
    auto e = dataplane::Engine::create(std::make_unique<FakeTun>(tun, 1, 1420), host, clock, rng,
                                       nullptr, dataplane::EngineOptions{.listen_port = port});
    EXPECT_TRUE(e.ok()) << e.message();
    engine = std::move(*e);
    endpoint = net::Endpoint{*IpAddress::parse(addr), port};
  }
  SeededRandom rng;
  FakeHost& host;
  std::unique_ptr<dataplane::Engine> engine;
  net::Endpoint endpoint;
};

void pump(std::initializer_list<dataplane::Engine*> engines, FakeNetwork& net) {
  test::pump_engines(engines, net);
}

class WgPortProbe : public ::testing::Test {
 protected:
  platform::ManualClock clock_;
  FakeNetwork net_;
  Node client_{net_, "192.0.2.10", "wpbC", 1, clock_, 40000};
  Node server_{net_, "198.51.100.1", "wpbS", 2, clock_, 51820};
  SeededRandom probe_rng_{3};
  runtime::UdpProbe probe_{probe_rng_};
  WireGuardPortStun responder_{
      [this](const net::Endpoint& to, ConstBytes d) { server_.engine->send_datagram(to, d); }, 0};
};

TEST_F(WgPortProbe, TheServersWireGuardPortAnswersTheProbe) {
  client_.engine->set_stun_sink(&probe_);
  server_.engine->set_stun_sink(&responder_);
  EXPECT_FALSE(probe_.answered_at().has_value());
  probe_.send(*client_.engine, server_.endpoint);
  pump({client_.engine.get(), server_.engine.get()}, net_);
  EXPECT_TRUE(probe_.answered_at().has_value());
  EXPECT_EQ(probe_.answers(), 1u);
  EXPECT_EQ(responder_.counters().answered, 1u);
}

TEST_F(WgPortProbe, AServerWithoutTheResponderLeavesTheProbeUnanswered) {
  client_.engine->set_stun_sink(&probe_);
  probe_.send(*client_.engine, server_.endpoint);
  pump({client_.engine.get(), server_.engine.get()}, net_);
  EXPECT_FALSE(probe_.answered_at().has_value());
}

TEST_F(WgPortProbe, AnswersFromElsewhereOrToAnOlderRequestDoNotCount) {
  client_.engine->set_stun_sink(&probe_);
  probe_.send(*client_.engine, server_.endpoint);
  // Forged: the right shape from another address, and a success for a transaction never sent.
  net::Path elsewhere;
  elsewhere.remote = net::Endpoint{*IpAddress::parse("203.0.113.9"), 51820};
  const mesh::stun::TransactionId other{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
  probe_.on_stun(elsewhere, mesh::stun::build_binding_success(other, client_.endpoint), Now{});
  net::Path from_server;
  from_server.remote = server_.endpoint;
  probe_.on_stun(from_server, mesh::stun::build_binding_success(other, client_.endpoint), Now{});
  EXPECT_FALSE(probe_.answered_at().has_value());
}

}  // namespace
}  // namespace warren::server
