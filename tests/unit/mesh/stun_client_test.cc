#include "mesh/stun_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace warren::mesh {
namespace {

using namespace std::chrono_literals;

// Counts up from a seed: every transaction id differs, and a test can predict none of them
// (it reads them from the requests, as a server would).
class CountingRandom final : public RandomSource {
 public:
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = static_cast<std::uint8_t>(next_++);
  }

 private:
  std::uint32_t next_ = 7;
};

net::Endpoint ep(const char* text) {
  auto e = net::Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(net::Endpoint{});
}

Now at(Duration since_start) {
  return Now{MonoTime(1000s) + since_start, WallTime(1'700'000'000s) + since_start};
}

stun::TransactionId id_of(const StunClient::Request& r) {
  auto id = stun::parse_binding_request(r.datagram);
  EXPECT_TRUE(id.ok()) << id.message();
  return id.ok() ? *id : stun::TransactionId{};
}

const net::Endpoint kA = ep("198.51.100.1:3478");
const net::Endpoint kB = ep("198.51.100.1:3479");
const net::Endpoint kMe = ep("203.0.113.5:40000");

struct StunClientTest : ::testing::Test {
  CountingRandom rng;
  StunClientOptions opts;  // defaults: 250 ms, 6 sends, 60 s refresh, 15 s retry
  std::vector<StunClient::Request> out;
};

TEST_F(StunClientTest, FirstTickAsksEveryServerOnceWithDistinctIds) {
  StunClient c({kA, kB, kA}, rng, opts);  // the duplicate is ignored
  ASSERT_EQ(c.results().size(), 2u);
  c.tick(at(0s), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].to, kA);
  EXPECT_EQ(out[1].to, kB);
  EXPECT_NE(id_of(out[0]), id_of(out[1]));
  EXPECT_EQ(out[0].datagram.size(), 28u);  // with FINGERPRINT
  EXPECT_EQ(c.counters().requests_sent, 2u);
  EXPECT_EQ(c.next_deadline(), at(250ms).mono);
  out.clear();
  c.tick(at(100ms), out);
  EXPECT_TRUE(out.empty()) << "nothing is due before the RTO";
}

TEST_F(StunClientTest, RetransmitsWithDoublingWaitsThenTimesOut) {
  StunClient c({kA}, rng, opts);
  std::vector<Duration> sent_at;
  stun::TransactionId first{};
  for (Duration t = 0ms; t <= 20s; t += 10ms) {
    out.clear();
    c.tick(at(t), out);
    for (const auto& r : out) {
      if (sent_at.empty())
        first = id_of(r);
      EXPECT_EQ(id_of(r), first) << "a retransmission keeps its transaction id";
      sent_at.push_back(t);
    }
    if (c.results()[0].state == StunServerResult::State::kTimedOut)
      break;
  }
  const std::vector<Duration> want = {0ms, 250ms, 750ms, 1750ms, 3750ms, 7750ms};
  EXPECT_EQ(sent_at, want);
  EXPECT_EQ(c.results()[0].state, StunServerResult::State::kTimedOut);
  EXPECT_EQ(c.counters().timeouts, 1u);
  // The timeout comes one doubled wait (8 s) after the last send, and the next round 15 s later
  // with a new id.
  EXPECT_EQ(c.next_deadline(), at(15750ms + 15s).mono);
  out.clear();
  c.tick(at(15750ms + 15s), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(id_of(out[0]), first);
}

TEST_F(StunClientTest, AcceptsTheAnswerAndRefreshesLater) {
  StunClient c({kA}, rng, opts);
  c.tick(at(0s), out);
  ASSERT_EQ(out.size(), 1u);
  const auto answer = stun::build_binding_success(id_of(out[0]), kMe);
  EXPECT_EQ(c.on_datagram(kA, answer, at(30ms)), StunVerdict::kAccepted);
  const StunServerResult& r = c.results()[0];
  EXPECT_EQ(r.state, StunServerResult::State::kOk);
  ASSERT_TRUE(r.reflexive);
  EXPECT_EQ(*r.reflexive, kMe);
  EXPECT_EQ(r.rtt, 30ms);
  EXPECT_EQ(r.learned_at, at(30ms).wall);
  // The same answer again (a duplicate): the transaction is over.
  EXPECT_EQ(c.on_datagram(kA, answer, at(40ms)), StunVerdict::kUnknownTransaction);
  EXPECT_EQ(c.counters().unknown_transaction, 1u);
  EXPECT_EQ(c.next_deadline(), at(30ms + 60s).mono);
  out.clear();
  c.tick(at(1s), out);
  EXPECT_TRUE(out.empty()) << "no retransmission after the answer";
}

TEST_F(StunClientTest, DropsAndCountsWhatIsNotAnAnswerToUs) {
  StunClient c({kA}, rng, opts);
  c.tick(at(0s), out);
  const stun::TransactionId id = id_of(out[0]);
  stun::TransactionId other = id;
  other[0] ^= 1;
  // Another id (stale or forged), from the right server.
  EXPECT_EQ(c.on_datagram(kA, stun::build_binding_success(other, kMe), at(1ms)),
            StunVerdict::kUnknownTransaction);
  // Our id, but from another endpoint than we asked.
  EXPECT_EQ(c.on_datagram(ep("198.51.100.9:3478"), stun::build_binding_success(id, kMe), at(1ms)),
            StunVerdict::kWrongSource);
  EXPECT_EQ(c.on_datagram(kB, stun::build_binding_success(id, kMe), at(1ms)),
            StunVerdict::kWrongSource);
  // A request (someone asking us), and junk.
  EXPECT_EQ(c.on_datagram(kA, stun::build_binding_request(id), at(1ms)), StunVerdict::kMalformed);
  std::vector<std::uint8_t> junk = stun::build_binding_success(id, kMe);
  junk.back() ^= 1;  // FINGERPRINT no longer matches
  EXPECT_EQ(c.on_datagram(kA, junk, at(1ms)), StunVerdict::kMalformed);
  EXPECT_EQ(c.counters().unknown_transaction, 1u);
  EXPECT_EQ(c.counters().wrong_source, 2u);
  EXPECT_EQ(c.counters().malformed, 2u);
  EXPECT_EQ(c.results()[0].state, StunServerResult::State::kPending);
  EXPECT_FALSE(c.results()[0].reflexive);
  // None of that ended the transaction: the real answer is still taken.
  EXPECT_EQ(c.on_datagram(kA, stun::build_binding_success(id, kMe), at(2ms)),
            StunVerdict::kAccepted);
}

TEST_F(StunClientTest, AnIpv4MappedSourceIsTheConfiguredIpv4Server) {
  StunClient c({kA}, rng, opts);
  c.tick(at(0s), out);
  EXPECT_EQ(c.on_datagram(ep("[::ffff:198.51.100.1]:3478"),
                          stun::build_binding_success(id_of(out[0]), kMe), at(1ms)),
            StunVerdict::kAccepted);
}

TEST_F(StunClientTest, AnErrorResponseEndsTheTransaction) {
  StunClient c({kA}, rng, opts);
  c.tick(at(0s), out);
  // An error response: header + ERROR-CODE 400 "Bad" (no FINGERPRINT).
  std::vector<std::uint8_t> err(20 + 4 + 8, 0);
  store_be16(err.data(), stun::kBindingError);
  store_be16(err.data() + 2, 12);
  store_be32(err.data() + 4, stun::kMagicCookie);
  const auto id = id_of(out[0]);
  std::copy(id.begin(), id.end(), err.begin() + 8);
  store_be16(err.data() + 20, stun::kAttrErrorCode);
  store_be16(err.data() + 22, 7);
  err[26] = 4;
  err[27] = 0;
  err[28] = 'B';
  err[29] = 'a';
  err[30] = 'd';
  EXPECT_EQ(c.on_datagram(kA, err, at(5ms)), StunVerdict::kErrorResponse);
  EXPECT_EQ(c.results()[0].state, StunServerResult::State::kError);
  EXPECT_EQ(c.next_deadline(), at(5ms + 15s).mono);
}

TEST_F(StunClientTest, ClassifiesTheMapping) {
  StunClient c({kA, kB}, rng, opts);
  c.tick(at(0s), out);
  EXPECT_EQ(c.mapping(), MappingKind::kUnknown);
  ASSERT_EQ(c.on_datagram(kA, stun::build_binding_success(id_of(out[0]), kMe), at(1ms)),
            StunVerdict::kAccepted);
  EXPECT_EQ(c.mapping(), MappingKind::kUnknown) << "one answer tells nothing about the mapping";
  ASSERT_EQ(c.on_datagram(kB, stun::build_binding_success(id_of(out[1]), kMe), at(1ms)),
            StunVerdict::kAccepted);
  EXPECT_EQ(c.mapping(), MappingKind::kEndpointIndependent);

  StunClient d({kA, kB}, rng, opts);
  out.clear();
  d.tick(at(0s), out);
  ASSERT_EQ(d.on_datagram(kA, stun::build_binding_success(id_of(out[0]), kMe), at(1ms)),
            StunVerdict::kAccepted);
  ASSERT_EQ(d.on_datagram(kB, stun::build_binding_success(id_of(out[1]), ep("203.0.113.5:40001")),
                          at(1ms)),
            StunVerdict::kAccepted);
  EXPECT_EQ(d.mapping(), MappingKind::kEndpointDependent);
  EXPECT_STREQ(mapping_kind_name(d.mapping()), "endpoint-dependent");
}

TEST_F(StunClientTest, RestartForgetsResultsAndAsksAgainAtOnce) {
  StunClient c({kA}, rng, opts);
  c.tick(at(0s), out);
  const auto old_id = id_of(out[0]);
  ASSERT_EQ(c.on_datagram(kA, stun::build_binding_success(old_id, kMe), at(1ms)),
            StunVerdict::kAccepted);
  c.restart();
  EXPECT_FALSE(c.results()[0].reflexive);
  EXPECT_EQ(c.results()[0].state, StunServerResult::State::kPending);
  out.clear();
  c.tick(at(2s), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(id_of(out[0]), old_id);
}

}  // namespace
}  // namespace warren::mesh
