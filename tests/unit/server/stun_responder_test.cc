// The coordinator's STUN responder: what gets an answer, what does not, and how much.

#include "server/stun_responder.h"

#include <gtest/gtest.h>

#include <chrono>

#include "mesh/stun.h"

namespace warren::server {
namespace {

using namespace std::chrono_literals;
namespace stun = mesh::stun;

net::Endpoint ep(const char* text) {
  auto e = net::Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(net::Endpoint{});
}

const stun::TransactionId kId{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
const MonoTime kT0{1000s};

TEST(StunResponder, AnswersABindingRequestWithTheSourceItCameFrom) {
  StunResponder r;
  const net::Endpoint from = ep("203.0.113.5:40000");
  for (const bool fp : {true, false}) {
    const auto req = stun::build_binding_request(kId, fp);
    auto a = r.answer(from, req, kT0);
    ASSERT_TRUE(a);
    // In kind: FINGERPRINT only when asked with one; nothing else (no amplification beyond the
    // address itself: 28 -> 40, 20 -> 32 bytes).
    EXPECT_EQ(a->size(), fp ? 40u : 32u);
    auto got = stun::parse_binding_success(*a, kId);
    ASSERT_TRUE(got.ok()) << got.message();
    EXPECT_EQ(*got, from);
    auto m = stun::parse(*a);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->fingerprint, fp);
  }
  // A dual-stack socket's IPv4-mapped source is answered as IPv4; IPv6 as IPv6 (52 bytes).
  auto a4 = r.answer(ep("[::ffff:203.0.113.6]:1"), stun::build_binding_request(kId), kT0);
  ASSERT_TRUE(a4);
  EXPECT_EQ(*stun::parse_binding_success(*a4, kId), ep("203.0.113.6:1"));
  auto a6 = r.answer(ep("[2001:db8::5]:40000"), stun::build_binding_request(kId), kT0);
  ASSERT_TRUE(a6);
  EXPECT_EQ(a6->size(), 52u);
  EXPECT_EQ(r.counters().answered, 4u);
}

TEST(StunResponder, NoAnswerToAnythingElse) {
  StunResponder r;
  const net::Endpoint from = ep("203.0.113.5:40000");
  std::vector<std::vector<std::uint8_t>> bad;
  bad.push_back(stun::build_binding_success(kId, from));  // a response, not a request
  auto broken_fp = stun::build_binding_request(kId);
  broken_fp.back() ^= 1;
  bad.push_back(broken_fp);
  std::vector<std::uint8_t> wg(148, 0);
  wg[0] = 1;
  bad.push_back(wg);  // a WireGuard initiation
  bad.push_back({});
  bad.push_back(std::vector<std::uint8_t>(19, 0));
  // A request asking for authentication (USERNAME): unsupported, dropped.
  auto with_user = stun::build_binding_request(kId, false);
  with_user.insert(with_user.end(), {0x00, 0x06, 0x00, 0x04, 'u', 's', 'e', 'r'});
  store_be16(with_user.data() + 2, 8);
  bad.push_back(with_user);
  for (const auto& d : bad)
    EXPECT_FALSE(r.answer(from, d, kT0)) << d.size();
  EXPECT_EQ(r.counters().malformed, bad.size());
  EXPECT_EQ(r.counters().answered, 0u);
  // Port 0 (cannot be answered; also what a spoofer might try).
  EXPECT_FALSE(r.answer(net::Endpoint{*net::IpAddress::parse("203.0.113.5"), 0},
                        stun::build_binding_request(kId), kT0));
}

TEST(StunResponder, RateLimitedPerSourceAddress) {
  StunResponder r;
  const auto req = stun::build_binding_request(kId);
  int answered = 0;
  for (int i = 0; i < 50; ++i) {
    // Other ports of one address count as the same source.
    const net::Endpoint from{*net::IpAddress::parse("203.0.113.5"),
                             static_cast<std::uint16_t>(40000 + i)};
    answered += r.answer(from, req, kT0).has_value();
  }
  EXPECT_EQ(answered, static_cast<int>(wg::RateLimiter::kPacketsBurstable));
  EXPECT_EQ(r.counters().rate_limited, 50u - wg::RateLimiter::kPacketsBurstable);
  // Another source is not affected; the first gets tokens back with time.
  EXPECT_TRUE(r.answer(ep("203.0.113.77:1"), req, kT0));
  EXPECT_FALSE(r.answer(ep("203.0.113.5:1"), req, kT0 + 10ms));
  EXPECT_TRUE(r.answer(ep("203.0.113.5:1"), req, kT0 + 100ms));
}

}  // namespace
}  // namespace warren::server

namespace warren::server {
namespace {

// The QUIC fallback's UDP probe: a Binding request that reached the engine's StunSink on the
// WireGuard port is answered through the engine's send, to where it came from; anything else
// (and the rate limit) gets no answer there either.
TEST(WireGuardPortStun, AnswersTheProbeThroughTheEnginesSocket) {
  std::vector<std::pair<net::Endpoint, std::vector<std::uint8_t>>> sent;
  WireGuardPortStun sink(
      [&](const net::Endpoint& to, ConstBytes d) {
        sent.emplace_back(to, std::vector(d.begin(), d.end()));
      },
      0);
  const mesh::stun::TransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  net::Path from;
  from.remote = *net::Endpoint::parse("198.51.100.7:51820");
  const auto req = mesh::stun::build_binding_request(id);
  sink.on_stun(from, req, Now{MonoTime(std::chrono::seconds(100)), {}});
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, from.remote);
  auto mapped = mesh::stun::parse_binding_success(sent[0].second, id);
  ASSERT_TRUE(mapped.ok()) << mapped.message();
  EXPECT_EQ(*mapped, from.remote);

  const std::vector<std::uint8_t> junk(20, 0);
  sink.on_stun(from, junk, Now{MonoTime(std::chrono::seconds(100)), {}});
  EXPECT_EQ(sent.size(), 1u);
  EXPECT_EQ(sink.counters().answered, 1u);
  EXPECT_EQ(sink.counters().malformed, 1u);
}

}  // namespace
}  // namespace warren::server
