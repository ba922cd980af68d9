// Two engines joined by the in-memory TUN and UDP fakes: end-to-end packets through the real
// worker code, pumped deterministically (ManualClock) or threaded (SystemClock + epoll).
#include "dataplane/engine.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "crypto/x25519.h"
#include "platform/fake/fake_network.h"
#include "platform/fake/fake_tun.h"
#include "support/engine_harness.h"
#include "unit/platform/test_packets.h"
#include "wg/cookie.h"
#include "wg/messages.h"

namespace warren::dataplane {
namespace {

using net::IpAddress;
using platform::fake::FakeHost;
using platform::fake::FakeNetwork;
using platform::fake::FakeTun;
using platform::fake::Impairments;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

using test::SeededRandom;

struct Side {
  Side(FakeNetwork& net, const char* addr, const char* tun_name, std::size_t queues,
       std::uint64_t seed, platform::Clock& clock, std::uint16_t port, bool spread_flows = false)
      : rng(seed), host(net.add_host({ip(addr)})) {
    auto t = std::make_unique<FakeTun>(tun_name, queues, 1420);
    tun = t.get();
    auto e = Engine::create(std::move(t), host, clock, rng, nullptr,
                            EngineOptions{.listen_port = port, .spread_flows = spread_flows});
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

// a <-> b: a knows b's endpoint; b learns a's from the handshake.
void connect(Side& a, const char* a_tunnel_ip, Side& b, const char* b_tunnel_ip,
             const char* b_addr) {
  wg::ConfigDelta da;
  da.private_key = a.private_key;
  wg::PeerDelta pa;
  pa.public_key = b.public_key;
  pa.endpoint = net::Endpoint{ip(b_addr), b.engine->port()};
  pa.allowed_ips_add.push_back(*net::Prefix::parse(std::string(b_tunnel_ip) + "/32"));
  da.peers.push_back(pa);
  ASSERT_TRUE(a.engine->apply(da));

  wg::ConfigDelta db;
  db.private_key = b.private_key;
  wg::PeerDelta pb;
  pb.public_key = a.public_key;
  pb.allowed_ips_add.push_back(*net::Prefix::parse(std::string(a_tunnel_ip) + "/32"));
  db.peers.push_back(pb);
  ASSERT_TRUE(b.engine->apply(db));
}

void pump_until_idle(std::initializer_list<Engine*> engines, FakeNetwork& net) {
  for (int round = 0; round < 1000; ++round) {
    bool did = false;
    for (Engine* e : engines)
      did |= e->pump();
    if (!did) {
      net.flush();
      for (Engine* e : engines)
        did |= e->pump();
      if (!did)
        return;
    }
  }
  ADD_FAILURE() << "engines never went idle";
}

class PumpedEngines : public ::testing::Test {
 protected:
  platform::ManualClock clock_;
  FakeNetwork net_;
  Side a_{net_, "192.0.2.1", "wpltA", 2, 1, clock_, 51820};
  Side b_{net_, "192.0.2.2", "wpltB", 2, 2, clock_, 51821};
};

// The same with EngineOptions::spread_flows.
class SpreadEngines : public ::testing::Test {
 protected:
  platform::ManualClock clock_;
  FakeNetwork net_;
  Side a_{net_, "192.0.2.1", "wpltS", 2, 1, clock_, 51820, true};
  Side b_{net_, "192.0.2.2", "wpltT", 2, 2, clock_, 51821, true};
};

TEST_F(PumpedEngines, HandshakeThenPacketsBothWays) {
  ASSERT_EQ(a_.engine->worker_count(), 2u);
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  auto ping = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 100, 0x11);
  a_.tun->inject(ping);
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  auto got = b_.tun->take_written();
  ASSERT_EQ(got.size(), 1u) << "the staged packet must arrive after the handshake";
  EXPECT_EQ(got[0], ping);

  auto pong = testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 200, 0x22);
  b_.tun->inject(pong);
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  auto back = a_.tun->take_written();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0], pong);

  auto snap = b_.engine->snapshot();
  EXPECT_EQ(snap.listen_port, 51821);
  ASSERT_EQ(snap.peers.size(), 1u);
  ASSERT_TRUE(snap.peers[0].endpoint.has_value());
  EXPECT_EQ(*snap.peers[0].endpoint, (net::Endpoint{ip("192.0.2.1"), 51820}));
  EngineCounters c = a_.engine->counters();
  EXPECT_EQ(c.tun_read, 1u);
  EXPECT_EQ(c.tun_written, 1u);
}

void many_flows_over_both_workers(Side& a, Side& b, FakeNetwork& net, bool spread) {
  connect(a, "10.0.0.1", b, "10.0.0.2", "192.0.2.2");
  // Inner addresses differ per flow so the fake TUN spreads them over both queues; the peer's
  // allowed IPs cover them all.
  wg::ConfigDelta widen;
  wg::PeerDelta p;
  p.public_key = a.public_key;
  p.allowed_ips_add.push_back(*net::Prefix::parse("10.1.0.0/16"));
  widen.peers.push_back(p);
  ASSERT_TRUE(b.engine->apply(widen));

  // Establish the session first (packets sent before it are staged, newest 128 kept).
  a.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
  pump_until_idle({a.engine.get(), b.engine.get()}, net);
  ASSERT_EQ(b.tun->take_written().size(), 1u);

  std::multiset<std::vector<std::uint8_t>> sent;
  for (int i = 0; i < 600; ++i) {
    std::string src = "10.1." + std::to_string(i % 7) + ".1";
    auto pkt = testing::make_ip_packet(ip(src.c_str()), ip("10.0.0.2"), 50 + i % 300,
                                       static_cast<std::uint8_t>(i));
    sent.insert(pkt);
    a.tun->inject(pkt);
  }
  // The fake TUN spreads the 7 flows over both queues, so both workers carry traffic.
  for (std::size_t q = 0; q < 2; ++q) {
    pollfd pfd{a.tun->poll_fd(q), POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 0), 1) << "queue " << q << " has no packets";
  }
  pump_until_idle({a.engine.get(), b.engine.get()}, net);
  auto got = b.tun->take_written();
  ASSERT_EQ(got.size(), 600u);
  EXPECT_EQ(std::multiset<std::vector<std::uint8_t>>(got.begin(), got.end()), sent);
  // Per inner flow, order is kept (one flow = one TUN queue = one worker).
  std::map<std::uint8_t, std::vector<std::uint8_t>> fills_by_flow;  // flow (3rd octet) -> fills
  for (const auto& g : got)
    fills_by_flow[g[14]].push_back(g[20]);
  for (auto& [flow, fills] : fills_by_flow) {
    for (std::size_t k = 1; k < fills.size(); ++k) {
      EXPECT_EQ(static_cast<std::uint8_t>(fills[k] - fills[k - 1]), 7u) << "flow " << int(flow);
    }
  }
  EngineCounters ca = a.engine->counters();
  EXPECT_EQ(ca.tun_read, 601u);
  EngineCounters cb = b.engine->counters();
  EXPECT_EQ(cb.tun_written, 601u);
  EXPECT_EQ(cb.handoff_dropped, 0u);
  if (spread) {
    // b receives the one peer on one bind; the flows hashed to the other queue were handed to
    // that queue's worker (and the order check above covers them too).
    EXPECT_GT(cb.handed_off, 0u);
    EXPECT_LT(cb.handed_off, 601u);
  } else {
    EXPECT_EQ(cb.handed_off, 0u);
  }
}

TEST_F(PumpedEngines, ManyFlowsOverBothWorkersAllArrive) {
  many_flows_over_both_workers(a_, b_, net_, false);
}

TEST_F(SpreadEngines, ManyFlowsOverBothWorkersAllArriveInFlowOrder) {
  many_flows_over_both_workers(a_, b_, net_, true);
}

TEST_F(PumpedEngines, LostHandshakeIsRetransmittedByTick) {
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  net_.set_impairments(Impairments{.loss = 1.0});
  a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  EXPECT_EQ(b_.tun->written_count(), 0u);
  net_.set_impairments(Impairments{});
  // REKEY_TIMEOUT (5 s) + jitter later, worker 0's tick retransmits the initiation.
  clock_.advance(std::chrono::milliseconds(5400));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  EXPECT_EQ(b_.tun->take_written().size(), 1u);
}

// The handshake queue's depth is visible in counters() (the server's
// warren_handshake_queue_depth): after one round that received a batch of initiations and
// handled one budget of them, the rest are reported waiting in their lane; once drained, none.
TEST_F(PumpedEngines, HandshakeQueueDepthIsReportedWhileMessagesWait) {
  b_.engine->device().force_under_load(true);  // cookie replies: cheap, no peer needed
  FakeHost& stranger = net_.add_host({ip("198.51.100.7")});
  auto bind = stranger.open(platform::BindOptions{});
  ASSERT_TRUE(bind.ok()) << bind.message();
  wg::CookieGenerator macs;
  macs.set_peer_public_key(b_.public_key);
  std::vector<std::uint8_t> m(wg::kInitiationSize);
  constexpr std::size_t kSent = 300;  // more than one receive batch (kMaxBatch)
  for (std::size_t i = 0; i < kSent; ++i) {
    std::fill(m.begin(), m.end(), static_cast<std::uint8_t>(i));
    store_le32(m.data(), wg::kMessageInitiation);
    macs.add_macs(m, clock_.now().mono);
    std::array<platform::OutDatagram, 1> d{platform::OutDatagram{
        m, net::Path{{ip("192.0.2.2"), 51821}, ip("198.51.100.7"), 0}, false}};
    ASSERT_EQ((**bind).send(d).count, 1u);
  }
  const auto lane = [](wg::Lane l) { return static_cast<std::size_t>(l); };
  EXPECT_EQ(b_.engine->counters().handshakes_queued[lane(wg::Lane::kOther)], 0u);
  (void)b_.engine->pump();  // one receive batch, one budget of handshake work
  EngineCounters c = b_.engine->counters();
  const std::uint64_t received = c.handshakes_handled +
                                 c.handshakes_dropped[lane(wg::Lane::kOther)] +
                                 c.handshakes_queued[lane(wg::Lane::kOther)];
  EXPECT_GT(c.handshakes_queued[lane(wg::Lane::kOther)], 0u) << "handled " << c.handshakes_handled;
  EXPECT_LE(received, kSent);
  EXPECT_EQ(c.handshakes_queued[lane(wg::Lane::kKnownEndpoint)], 0u);
  pump_until_idle({b_.engine.get()}, net_);
  c = b_.engine->counters();
  EXPECT_EQ(c.handshakes_queued[lane(wg::Lane::kOther)], 0u);
  EXPECT_EQ(c.handshakes_handled + c.handshakes_dropped[lane(wg::Lane::kOther)], kSent);
  b_.engine->device().force_under_load(std::nullopt);
}

// b is under load and a flood of 16,000 initiations with valid mac1 from 40 strangers' addresses
// sits in its sockets when a, an established peer, starts a new handshake from its known endpoint.
// Every flood message is answered with a cookie reply or dropped on arrival by a full lane, and
// counted; a's initiation, which arrives behind the whole flood, is in the first lane, so it
// is answered (with a cookie) and a's retransmission 5 s later, carrying mac2, completes the
// handshake. Without the first lane a's message is dropped as the flood's are, and this fails
// (checked by disabling the known-endpoint test in Device::lane_of).
TEST_F(PumpedEngines, HandshakeFloodIsDroppedOnArrivalWhileAKnownPeerGetsThrough) {
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  ASSERT_EQ(b_.tun->take_written().size(), 1u);
  const std::uint64_t handled0 = b_.engine->counters().handshakes_handled;  // a's first one
  b_.engine->device().force_under_load(true);

  std::vector<IpAddress> strangers;
  for (int i = 1; i <= 40; ++i)
    strangers.push_back(ip(("198.51.100." + std::to_string(i)).c_str()));
  FakeHost& attacker = net_.add_host(strangers);
  auto bind = attacker.open(platform::BindOptions{});
  ASSERT_TRUE(bind.ok()) << bind.message();
  wg::CookieGenerator macs;
  macs.set_peer_public_key(b_.public_key);
  constexpr std::size_t kFlood = 16000;
  std::mt19937_64 prng(7);
  std::vector<std::uint8_t> m(wg::kInitiationSize);
  for (std::size_t i = 0; i < kFlood; ++i) {
    for (auto& byte : m)
      byte = static_cast<std::uint8_t>(prng());
    store_le32(m.data(), wg::kMessageInitiation);
    macs.add_macs(m, clock_.now().mono);
    std::array<platform::OutDatagram, 1> d{platform::OutDatagram{
        m, net::Path{{ip("192.0.2.2"), 51821}, strangers[i % strangers.size()], 0}, false}};
    ASSERT_EQ((**bind).send(d).count, 1u);
  }

  // a starts over (peer removed and added again) and sends: a new initiation, behind the flood.
  wg::ConfigDelta remove;
  remove.peers.push_back(wg::PeerDelta{.public_key = b_.public_key, .remove = true});
  ASSERT_TRUE(a_.engine->apply(remove));
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  const auto ping = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 30, 0x5a);
  a_.tun->inject(ping);
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);

  const EngineCounters c = b_.engine->counters();
  const auto lane = [](wg::Lane l) { return static_cast<std::size_t>(l); };
  const std::uint64_t cookies = b_.engine->device().drop_count(wg::Drop::kCookieSent);
  EXPECT_GT(c.handshakes_dropped[lane(wg::Lane::kOther)], 0u) << "the flood outran the queue";
  EXPECT_EQ(c.handshakes_dropped[lane(wg::Lane::kKnownEndpoint)], 0u);
  EXPECT_EQ(cookies + c.handshakes_dropped[lane(wg::Lane::kOther)], kFlood + 1)
      << "every initiation answered or dropped on arrival (a's answered too)";
  EXPECT_EQ(c.handshakes_handled - handled0, cookies);
  // The strangers got exactly the cookie replies b did not send to a.
  std::size_t replies = 0;
  testing::Buffers buf(128);
  for (;;) {
    auto r = (**bind).receive(0, buf.views, buf.sizes, buf.paths);
    if (r.count == 0)
      break;
    for (std::size_t i = 0; i < r.count; ++i) {
      EXPECT_EQ(buf.sizes[i], wg::kCookieReplySize);
      EXPECT_EQ(load_le32(buf.storage[i].data()), wg::kMessageCookieReply);
    }
    replies += r.count;
  }
  EXPECT_EQ(replies, cookies - 1);
  EXPECT_EQ(b_.tun->written_count(), 0u) << "no session without mac2 under load";

  // REKEY_TIMEOUT (+ jitter) later a retransmits with the cookie's mac2: through.
  clock_.advance(std::chrono::milliseconds(5400));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  auto got = b_.tun->take_written();
  ASSERT_EQ(got.size(), 1u) << "a's handshake completes at its first retransmission";
  EXPECT_EQ(got[0], ping);
  b_.engine->device().force_under_load(std::nullopt);
}

// Issue 12 (8): under load, c — a new client from an address b has never seen — holds a
// cookie from b, and its retransmitted initiation (valid mac2) arrives behind a flood of 16,000
// initiations with valid mac1: half with no mac2, half with a forged (random, non-zero) mac2.
// Only a mac2 valid for b's cookie secret earns the with_mac2 lane, so the forgeries wait in
// (and overflow) the last lane with the mac2-less ones, and c's message is answered in the
// first rounds: c's handshake completes at that retransmission. Before, any non-zero mac2 took
// the lane: the forgeries filled it, c's message was dropped on arrival and this failed.
TEST_F(PumpedEngines, ForgedMac2FloodCannotCrowdOutAClientHoldingACookie) {
  Side c{net_, "203.0.113.5", "wpltC", 1, 3, clock_, 51822};
  connect(c, "10.0.0.3", b_, "10.0.0.2", "192.0.2.2");
  b_.engine->device().force_under_load(true);
  const auto ping = testing::make_ip_packet(ip("10.0.0.3"), ip("10.0.0.2"), 30, 0x5c);
  c.tun->inject(ping);  // c's first initiation (no mac2) gets a cookie reply, no session
  pump_until_idle({c.engine.get(), b_.engine.get()}, net_);
  ASSERT_EQ(b_.engine->device().drop_count(wg::Drop::kCookieSent), 1u);
  ASSERT_EQ(b_.tun->written_count(), 0u);

  std::vector<IpAddress> strangers;
  for (int i = 1; i <= 40; ++i)
    strangers.push_back(ip(("198.51.100." + std::to_string(i)).c_str()));
  FakeHost& attacker = net_.add_host(strangers);
  auto bind = attacker.open(platform::BindOptions{});
  ASSERT_TRUE(bind.ok()) << bind.message();
  wg::CookieGenerator macs;
  macs.set_peer_public_key(b_.public_key);
  constexpr std::size_t kFlood = 16000;
  std::mt19937_64 prng(11);
  std::vector<std::uint8_t> m(wg::kInitiationSize);
  for (std::size_t i = 0; i < kFlood; ++i) {
    for (auto& byte : m)
      byte = static_cast<std::uint8_t>(prng());
    store_le32(m.data(), wg::kMessageInitiation);
    macs.add_macs(m, clock_.now().mono);  // valid mac1, zero mac2
    if (i % 2 == 1) {
      for (std::size_t k = 0; k < 16; ++k)
        m[wg::msg::kInitMac2 + k] = static_cast<std::uint8_t>(prng() | 1);  // forged mac2
    }
    std::array<platform::OutDatagram, 1> d{platform::OutDatagram{
        m, net::Path{{ip("192.0.2.2"), 51821}, strangers[i % strangers.size()], 0}, false}};
    ASSERT_EQ((*bind)->send(d).count, 1u);
  }

  // REKEY_TIMEOUT (+ jitter) later c retransmits, with mac2 under its cookie: behind the flood.
  clock_.advance(std::chrono::milliseconds(5400));
  pump_until_idle({c.engine.get(), b_.engine.get()}, net_);
  auto got = b_.tun->take_written();
  ASSERT_EQ(got.size(), 1u) << "c's handshake did not complete at its first retransmission";
  EXPECT_EQ(got[0], ping);

  const EngineCounters counters = b_.engine->counters();
  const auto lane = [](wg::Lane l) { return static_cast<std::size_t>(l); };
  EXPECT_EQ(counters.handshakes_dropped[lane(wg::Lane::kWithMac2)], 0u);
  EXPECT_GT(counters.handshakes_dropped[lane(wg::Lane::kOther)], 0u)
      << "the flood outran the queue";
  // Every flood message was answered with a cookie reply (mac2 missing or invalid) or dropped
  // on arrival from the last lane; c's two messages: one cookie, one handshake.
  const std::uint64_t cookies = b_.engine->device().drop_count(wg::Drop::kCookieSent);
  EXPECT_EQ(cookies - 1 + counters.handshakes_dropped[lane(wg::Lane::kOther)], kFlood);
  b_.engine->device().force_under_load(std::nullopt);
}

TEST_F(PumpedEngines, ListenPortChangeAndFailureKeepsOldPort) {
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  // Someone else holds 6000 on b's host: the change is refused and nothing changes.
  auto blocker = b_.host.open(platform::BindOptions{.port = 6000});
  ASSERT_TRUE(blocker.ok());
  wg::ConfigDelta bad;
  bad.listen_port = 6000;
  bad.fwmark = 9;
  Status err = b_.engine->apply(bad);
  EXPECT_EQ(err.code(), EADDRINUSE) << err.message();
  EXPECT_EQ(b_.engine->port(), 51821);
  EXPECT_EQ(b_.engine->fwmark(), 0u);

  // Traffic still flows on the old port.
  a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  EXPECT_EQ(b_.tun->take_written().size(), 1u);

  // A free port works; a now points at the new port and traffic resumes.
  wg::ConfigDelta good;
  good.listen_port = 6001;
  good.fwmark = 7;
  ASSERT_TRUE(b_.engine->apply(good));
  EXPECT_EQ(b_.engine->snapshot().listen_port, 6001);
  EXPECT_EQ(b_.engine->snapshot().fwmark, 7u);
  EXPECT_EQ(b_.engine->port(), 6001);
  // The old port is free again.
  EXPECT_TRUE(b_.host.open(platform::BindOptions{.port = 51821}).ok());

  wg::ConfigDelta move;
  wg::PeerDelta p;
  p.public_key = b_.public_key;
  p.endpoint = net::Endpoint{ip("192.0.2.2"), 6001};
  move.peers.push_back(p);
  ASSERT_TRUE(a_.engine->apply(move));
  a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 11));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  EXPECT_EQ(b_.tun->take_written().size(), 1u);

  // listen_port=0 asks for a new random port.
  wg::ConfigDelta random;
  random.listen_port = 0;
  ASSERT_TRUE(b_.engine->apply(random));
  EXPECT_NE(b_.engine->port(), 0);
  EXPECT_NE(b_.engine->port(), 6001);
}

TEST_F(PumpedEngines, InvalidDeltaLeavesSocketsAlone) {
  wg::ConfigDelta d;
  d.listen_port = 7000;
  wg::PeerDelta p;
  p.public_key = b_.public_key;
  p.allowed_ips_add.push_back(net::Prefix{ip("10.0.0.0"), 40});  // invalid length
  d.peers.push_back(p);
  Status err = a_.engine->apply(d);
  EXPECT_FALSE(err);
  EXPECT_EQ(a_.engine->port(), 51820);
  EXPECT_TRUE(a_.host.open(platform::BindOptions{.port = 7000}).ok()) << "new sockets were closed";
}

TEST(EngineCreate, UdpOffloadsReachEveryBind) {
  platform::ManualClock clock;
  FakeNetwork net;
  SeededRandom rng(4);
  FakeHost& on = net.add_host({ip("192.0.2.1")});
  auto e1 = Engine::create(std::make_unique<FakeTun>("wpltO", 2, 1420), on, clock, rng, nullptr,
                           EngineOptions{});
  ASSERT_TRUE(e1.ok()) << e1.message();
  FakeHost& partial = net.add_host({ip("192.0.2.2")});
  auto e2 =
      Engine::create(std::make_unique<FakeTun>("wpltP", 2, 1420), partial, clock, rng, nullptr,
                     EngineOptions{.offloads = platform::Offloads{true, false, true}});
  ASSERT_TRUE(e2.ok()) << e2.message();
  // Rebinding (listen-port change) keeps asking for the same offloads.
  ASSERT_TRUE((*e2)->apply(wg::ConfigDelta{.listen_port = 0}));
  auto all_on = on.opened_options();
  ASSERT_EQ(all_on.size(), 2u);  // one bind per worker
  for (const auto& o : all_on)
    EXPECT_TRUE(o.gso && o.gro);
  auto gro_only = partial.opened_options();
  ASSERT_EQ(gro_only.size(), 4u);
  for (const auto& o : gro_only) {
    EXPECT_FALSE(o.gso);
    EXPECT_TRUE(o.gro);
  }
}

TEST(EngineCreate, PortInUseFails) {
  platform::ManualClock clock;
  FakeNetwork net;
  FakeHost& h = net.add_host({ip("192.0.2.1")});
  auto blocker = h.open(platform::BindOptions{.port = 51820});
  SeededRandom rng(3);
  auto e = Engine::create(std::make_unique<FakeTun>("wpltC"), h, clock, rng, nullptr,
                          EngineOptions{.listen_port = 51820});
  EXPECT_EQ(e.code(), EADDRINUSE);
}

// Worker 0 runs the device's timers and sleeps until its next deadline (no periodic tick). A
// handshake started on worker 1 makes the device's first deadline, so worker 1 must wake
// worker 0: otherwise the lost initiation is never retransmitted and nothing arrives.
TEST(ThreadedEngines, DeadlineMadeOnAnotherWorkerWakesTheTimerWorker) {
  platform::SystemClock clock;
  FakeNetwork net;
  Side a(net, "192.0.2.1", "wpltF", 2, 21, clock, 0);
  Side b(net, "192.0.2.2", "wpltG", 2, 22, clock, 0);
  connect(a, "10.0.0.1", b, "10.0.0.2", "192.0.2.2");
  net.set_impairments(Impairments{.loss = 1.0});
  a.engine->start();
  b.engine->start();
  a.tun->inject(1, testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 20));
  for (int i = 0; i < 500 && a.engine->counters().udp_sent == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(a.engine->counters().udp_sent, 1u);  // the initiation, lost
  net.set_impairments(Impairments{});
  // REKEY_TIMEOUT (5 s) + jitter after the first, the retransmission completes the handshake.
  EXPECT_TRUE(b.tun->wait_written(1, std::chrono::seconds(8)));
  a.engine->stop();
  b.engine->stop();
}

TEST(ThreadedEngines, PingPongAndInterfaceRemovalStops) {
  platform::SystemClock clock;
  FakeNetwork net;
  Side a(net, "192.0.2.1", "wpltD", 2, 11, clock, 0);
  Side b(net, "192.0.2.2", "wpltE", 2, 12, clock, 0);
  connect(a, "10.0.0.1", b, "10.0.0.2", "192.0.2.2");
  std::atomic<int> stops{0};
  std::atomic<StopReason> why{StopReason::kNone};
  b.engine->set_on_stop([&](StopReason r) {
    why = r;
    ++stops;
  });
  a.engine->start();
  b.engine->start();

  for (int i = 0; i < 50; ++i) {
    std::string src = "10.0.0.1";
    a.tun->inject(testing::make_ip_packet(ip(src.c_str()), ip("10.0.0.2"), 20 + i));
  }
  ASSERT_TRUE(b.tun->wait_written(50, std::chrono::seconds(5))) << "got " << b.tun->written_count();
  b.tun->inject(testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 30));
  ASSERT_TRUE(a.tun->wait_written(1, std::chrono::seconds(5)));

  // A listen_port change while the workers run is handed over through their mailboxes.
  wg::ConfigDelta d;
  d.listen_port = 0;
  const std::uint16_t before = b.engine->port();
  ASSERT_TRUE(b.engine->apply(d));
  EXPECT_NE(b.engine->port(), before);
  b.tun->take_written();
  b.tun->inject(testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 31));
  ASSERT_TRUE(a.tun->wait_written(2, std::chrono::seconds(5)));  // b roams: a learns its port
  a.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 32));
  ASSERT_TRUE(b.tun->wait_written(1, std::chrono::seconds(5)));

  b.tun->remove();
  for (int i = 0; i < 500 && stops == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(stops, 1);
  EXPECT_EQ(why.load(), StopReason::kInterfaceGone);
  b.engine->stop();
  a.engine->stop();
  EXPECT_EQ(stops, 1);
  EXPECT_EQ(a.engine->stop_reason(), StopReason::kRequested);
}

// Runs `body` on its own thread and fails the whole test binary if it has not returned after
// `limit`: a self-deadlocked worker cannot be joined or unwound, so a hang must not hold up the
// run (or pass as a timeout of the runner).
void within(std::chrono::seconds limit, const char* what, const std::function<void()>& body) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread t([body, done] {
    body();
    done->set_value();
  });
  if (finished.wait_for(limit) != std::future_status::ready) {
    std::fprintf(stderr, "FATAL: %s did not return within %llds (deadlock)\n", what,
                 static_cast<long long>(limit.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  t.join();
}

// b has a second address, 192.0.2.3, which a uses as b's endpoint: b's replies stick to it as
// their source. Then the address disappears (Wi-Fi change, DHCP renewal): the next send from b
// is refused by the "kernel" (the fake's EINVAL on a stale IP_PKTINFO), retried without the
// source and reported `source_dropped`, and the engine makes the Device forget that source.
class StaleSource : public PumpedEngines {
 protected:
  void SetUp() override {
    b_.host.add_address(ip("192.0.2.3"));
    connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.3");
    a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
    ASSERT_EQ(b_.tun->take_written().size(), 1u);
    auto snap = b_.engine->snapshot();
    ASSERT_EQ(snap.peers.size(), 1u);
    b_.host.remove_address(ip("192.0.2.3"));
  }
};

// A timer-driven send: b received data and owes a keepalive 10 s later (worker 0's tick).
// Before the Device's outputs were collected and sent after it returned, the tick held the
// peer's lock while sending, the refused source called Device::forget_source, which takes the
// same lock: the worker hung here.
TEST_F(StaleSource, TimerDrivenSendWithRefusedSourceForgetsIt) {
  const auto before = b_.engine->counters();
  clock_.advance(std::chrono::seconds(11));
  within(std::chrono::seconds(10), "tick with a refused source", [&] {
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  });
  const auto after = b_.engine->counters();
  EXPECT_EQ(after.stale_sources - before.stale_sources, 1u);
  EXPECT_GT(after.udp_sent, before.udp_sent);
  // The source is forgotten: the next send leaves without it (no second refusal) and arrives.
  b_.tun->inject(testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 20));
  within(std::chrono::seconds(10), "data after the refusal", [&] {
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  });
  EXPECT_EQ(a_.tun->take_written().size(), 1u);
  EXPECT_EQ(b_.engine->counters().stale_sources, after.stale_sources);
}

// A send caused by data: b's session is past REJECT_AFTER_TIME, so a packet from b's TUN is
// staged and a handshake initiation is sent from inside encapsulate (under the peer's lock in
// the Device), with the stale source. Hung the same way before the fix.
TEST_F(StaleSource, DataTriggeredSendWithRefusedSourceForgetsIt) {
  const auto before = b_.engine->counters();
  clock_.advance(std::chrono::seconds(181));
  b_.tun->inject(testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 30, 0x33));
  within(std::chrono::seconds(10), "encapsulate with a refused source", [&] {
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  });
  EXPECT_GE(b_.engine->counters().stale_sources - before.stale_sources, 1u);
  // The initiation went out without the source, a answered, and the staged packet arrived.
  auto got = a_.tun->take_written();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 30, 0x33));
}

// Issue 11 §7: a `set` that changes listen_port and enables PersistentKeepalive (wg-quick up of
// a file with ListenPort and PersistentKeepalive) makes the Device send at once (keepalive ⇒ no
// session ⇒ handshake initiation). That datagram, and anything else sent from then on, must
// leave from the new port: a peer answers to the port it came from. Threaded, because the
// workers own the sockets; with the old order (Device first, then the new binds through the
// mailboxes) worker 0 could send it from the old, about-to-close port. Repeated, with a new
// port and a new peer (so the initiation is not rate-limited) each round.
TEST(ThreadedEngines, DatagramsOfASetLeaveFromItsNewListenPort) {
  platform::SystemClock clock;
  FakeNetwork net;
  Side b(net, "192.0.2.2", "wpltF", 2, 21, clock, 0);
  FakeHost& a_host = net.add_host({ip("192.0.2.1")});
  auto a_bind = a_host.open(platform::BindOptions{.port = 51820});
  ASSERT_TRUE(a_bind.ok());
  b.engine->start();
  SeededRandom keys(77);

  std::array<std::uint8_t, 2048> buf{};
  std::array<Bytes, 1> bufs{Bytes(buf.data(), buf.size())};
  std::array<std::size_t, 1> sizes{};
  std::array<net::Path, 1> paths{};
  for (int round = 0; round < 30; ++round) {
    const auto port = static_cast<std::uint16_t>(20000 + round);
    wg::ConfigDelta d;
    d.private_key = b.private_key;
    d.listen_port = port;
    d.replace_peers = true;
    wg::PeerDelta p;
    p.public_key = crypto::derive_public_key(crypto::generate_private_key(keys));
    p.endpoint = net::Endpoint{ip("192.0.2.1"), 51820};
    p.persistent_keepalive = 25;
    d.peers.push_back(p);
    ASSERT_TRUE(b.engine->apply(d));
    ASSERT_EQ(b.engine->port(), port);

    pollfd pfd{(*a_bind)->poll_fd(0), POLLIN, 0};
    ASSERT_EQ(::poll(&pfd, 1, 2000), 1) << "round " << round << ": nothing sent";
    platform::BatchResult r = (*a_bind)->receive(0, bufs, sizes, paths);
    ASSERT_EQ(r.count, 1u) << "round " << round;
    EXPECT_EQ(buf[0], wg::kMessageInitiation) << "round " << round;
    EXPECT_EQ(paths[0].remote.port, port) << "round " << round << ": sent from the old port";
    EXPECT_EQ((*a_bind)->receive(0, bufs, sizes, paths).count, 0u) << "round " << round;
  }
  b.engine->stop();
}

// ---- The path seam (issue 11 §2) ------------------------------------------------------------

// An in-memory transport joining two engines, for tests only: what one end sends, the other
// receives, as from the sender's fixed (synthetic) address. It stands for a relay stream or a
// QUIC connection: the Device sees only paths with the transport's tag.
class MemoryLink {
 public:
  class End final : public PathTransport {
   public:
    End(MemoryLink& link, net::Endpoint self) : link_(link), self_(self) {
      fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }
    ~End() override { ::close(fd_); }
    std::size_t source_count() const override { return 1; }
    int poll_fd(std::size_t) const override { return fd_; }
    platform::BatchResult receive(std::size_t, std::span<const Bytes> bufs,
                                  std::span<std::size_t> sizes,
                                  std::span<net::Path> paths) override {
      std::lock_guard lock(link_.mutex_);
      platform::BatchResult r;
      const std::size_t max = std::min({bufs.size(), sizes.size(), paths.size()});
      while (r.count < max && !inbox_.empty()) {
        const auto& [from, bytes] = inbox_.front();
        sizes[r.count] = bytes.size() <= bufs[r.count].size() ? bytes.size() : 0;
        std::memcpy(bufs[r.count].data(), bytes.data(), sizes[r.count]);
        paths[r.count] = net::Path{from, std::nullopt, 0};
        inbox_.pop_front();
        ++r.count;
      }
      if (inbox_.empty()) {
        std::uint64_t v;
        (void)!::read(fd_, &v, sizeof v);
      }
      if (r.count == 0)
        r.error = EAGAIN;
      return r;
    }
    platform::BatchResult send(std::span<platform::OutDatagram> datagrams) override {
      std::lock_guard lock(link_.mutex_);
      End& to = (this == &link_.a) ? link_.b : link_.a;
      for (const auto& d : datagrams) {
        to.inbox_.emplace_back(self_, std::vector<std::uint8_t>(d.data.begin(), d.data.end()));
        last_sent_to_ = d.path;
      }
      sent_ += datagrams.size();
      const std::uint64_t one = 1;
      (void)!::write(to.fd_, &one, sizeof one);
      return platform::BatchResult{datagrams.size(), 0, false};
    }
    std::size_t sent() const {
      std::lock_guard lock(link_.mutex_);
      return sent_;
    }
    net::Path last_sent_to() const {
      std::lock_guard lock(link_.mutex_);
      return last_sent_to_;
    }

   private:
    MemoryLink& link_;
    net::Endpoint self_;
    int fd_ = -1;
    std::deque<std::pair<net::Endpoint, std::vector<std::uint8_t>>> inbox_;  // guarded
    std::size_t sent_ = 0;                                                   // guarded
    net::Path last_sent_to_;                                                 // guarded
  };

  MemoryLink(net::Endpoint a_addr, net::Endpoint b_addr) : a(*this, a_addr), b(*this, b_addr) {}

 private:
  mutable std::mutex mutex_;

 public:
  End a;
  End b;
};

// Hands the engine an End it does not own (the test reads the End's counters).
class Borrowed final : public PathTransport {
 public:
  explicit Borrowed(PathTransport& t) : t_(t) {}
  std::size_t source_count() const override { return t_.source_count(); }
  int poll_fd(std::size_t s) const override { return t_.poll_fd(s); }
  platform::BatchResult receive(std::size_t s, std::span<const Bytes> bufs,
                                std::span<std::size_t> sizes, std::span<net::Path> paths) override {
    return t_.receive(s, bufs, sizes, paths);
  }
  platform::BatchResult send(std::span<platform::OutDatagram> d) override { return t_.send(d); }

 private:
  PathTransport& t_;
};

// a and b have the fake UDP network and a memory link. a's peer b is first reached over the
// link (handshake and data both ways on it, nothing on UDP), then a points b's endpoint at
// b's UDP address (b roams a to UDP with the first authenticated packet), then back to the
// link. The core sees only the opaque tag; UAPI shows no endpoint for the link's path.
TEST_F(PumpedEngines, PeerDatagramsOverAnAddedTransportRoamToUdpAndBack) {
  const net::Endpoint a_link{ip("100.64.0.1"), 1};
  const net::Endpoint b_link{ip("100.64.0.2"), 1};
  MemoryLink link(a_link, b_link);
  const std::uint8_t ta = a_.engine->add_transport(std::make_unique<Borrowed>(link.a));
  const std::uint8_t tb = b_.engine->add_transport(std::make_unique<Borrowed>(link.b));
  EXPECT_EQ(ta, 1u);
  EXPECT_EQ(tb, 1u);

  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  auto point_a_at = [&](net::Endpoint e, std::uint8_t transport) {
    wg::ConfigDelta d;
    wg::PeerDelta p;
    p.public_key = b_.public_key;
    p.endpoint = e;
    p.transport = transport;
    d.peers.push_back(p);
    ASSERT_TRUE(a_.engine->apply(d));
  };
  auto ping_pong = [&](std::uint8_t fill) {
    auto ping = testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 100, fill);
    a_.tun->inject(ping);
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
    auto got = b_.tun->take_written();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], ping);
    auto pong = testing::make_ip_packet(ip("10.0.0.2"), ip("10.0.0.1"), 200, fill + 1);
    b_.tun->inject(pong);
    pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
    auto back = a_.tun->take_written();
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0], pong);
  };

  // 1. Over the link: handshake and data both ways; UDP carries nothing.
  point_a_at(b_link, ta);
  const std::uint64_t udp_before = net_.delivered();
  ping_pong(0x10);
  EXPECT_EQ(net_.delivered(), udp_before) << "nothing may go over UDP";
  EXPECT_GE(link.a.sent(), 2u);  // initiation, data (staged)
  EXPECT_GE(link.b.sent(), 2u);  // response, data
  EXPECT_EQ(link.b.last_sent_to().remote, a_link);
  EXPECT_GE(a_.engine->counters().transport_received, 2u);
  EXPECT_EQ(a_.engine->counters().udp_sent, 0u);
  auto snap = b_.engine->snapshot();
  ASSERT_EQ(snap.peers.size(), 1u);
  EXPECT_FALSE(snap.peers[0].endpoint.has_value()) << "a non-UDP path shows no UDP endpoint";
  EXPECT_GT(snap.peers[0].rx_bytes, 0u);

  // 2. Roam to UDP: a's next packet goes over UDP, and b answers there.
  point_a_at(net::Endpoint{ip("192.0.2.2"), 51821}, kUdpTransport);
  const std::size_t a_link_sent = link.a.sent(), b_link_sent = link.b.sent();
  ping_pong(0x20);
  EXPECT_EQ(link.a.sent(), a_link_sent);
  EXPECT_EQ(link.b.sent(), b_link_sent) << "b must have roamed a to UDP";
  EXPECT_GE(net_.delivered(), udp_before + 2);
  snap = b_.engine->snapshot();
  ASSERT_TRUE(snap.peers[0].endpoint.has_value());
  EXPECT_EQ(*snap.peers[0].endpoint, (net::Endpoint{ip("192.0.2.1"), 51820}));

  // 3. And back to the link.
  point_a_at(b_link, ta);
  const std::uint64_t udp_mid = net_.delivered();
  ping_pong(0x30);
  EXPECT_EQ(net_.delivered(), udp_mid) << "b must have roamed a back to the link";
  EXPECT_EQ(link.a.sent(), a_link_sent + 1);
  EXPECT_EQ(link.b.sent(), b_link_sent + 1);
  EXPECT_FALSE(b_.engine->snapshot().peers[0].endpoint.has_value());
  EXPECT_EQ(a_.engine->counters().send_errors + b_.engine->counters().send_errors, 0u);
}

// A path on a transport the engine does not have is a send error, not a crash.
TEST_F(PumpedEngines, PathOnAnUnknownTransportIsASendError) {
  connect(a_, "10.0.0.1", b_, "10.0.0.2", "192.0.2.2");
  wg::ConfigDelta d;
  wg::PeerDelta p;
  p.public_key = b_.public_key;
  p.endpoint = net::Endpoint{ip("100.64.0.2"), 1};
  p.transport = 7;
  d.peers.push_back(p);
  ASSERT_TRUE(a_.engine->apply(d));
  a_.tun->inject(testing::make_ip_packet(ip("10.0.0.1"), ip("10.0.0.2"), 10));
  pump_until_idle({a_.engine.get(), b_.engine.get()}, net_);
  EXPECT_EQ(a_.engine->counters().send_errors, 1u);  // the initiation
  EXPECT_EQ(b_.tun->written_count(), 0u);
}

}  // namespace
}  // namespace warren::dataplane
