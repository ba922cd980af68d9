#include "client/reconnect.h"

#include <gtest/gtest.h>

#include <deque>

namespace warren::client {
namespace {

// Returns the queued 32-bit values in order (then zeros).
class ScriptedRandom final : public RandomSource {
 public:
  std::deque<std::uint32_t> values;
  void fill(std::span<std::uint8_t> out) override {
    std::uint32_t v = values.empty() ? 0 : values.front();
    if (!values.empty())
      values.pop_front();
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = static_cast<std::uint8_t>(v >> (8 * (i % 4)));
  }
};

using std::chrono::milliseconds;
using namespace std::chrono_literals;

TEST(Backoff, DoublesToTheCapWithJitterInRange) {
  ScriptedRandom rng;
  Backoff b(BackoffOptions{1s, 60s}, rng);
  // Zero jitter: exactly half of each base.
  const std::vector<Duration> low = {500ms, 1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
  for (auto want : low)
    EXPECT_EQ(b.next(), want);
  b.reset();
  EXPECT_EQ(b.attempts(), 0u);
  // Maximum jitter: the whole base (uniform over [base/2, base], in milliseconds).
  for (int i = 0; i < 9; ++i)
    rng.values.push_back(0xffffffffu);
  // uniform(bound) is v % bound; 0xffffffff % (500+1) etc. is not the max, so feed exact values.
  rng.values.clear();
  const std::vector<std::uint32_t> half_ms = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000};
  for (auto h : half_ms)
    rng.values.push_back(h);  // v % (h + 1) == h: the top of the range
  const std::vector<Duration> high = {1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s};
  for (auto want : high)
    EXPECT_EQ(b.next(), want);
}

TEST(Backoff, JitterSpreadsAttempts) {
  ScriptedRandom rng;
  rng.values = {123, 4567};
  Backoff b(BackoffOptions{1s, 60s}, rng);
  EXPECT_EQ(b.next(), 500ms + milliseconds(123));
  EXPECT_EQ(b.next(), 1s + milliseconds(4567 % 1001));
}

wg::PeerSnapshot peer(std::uint64_t rx, std::int64_t handshake_sec, bool session) {
  wg::PeerSnapshot p;
  p.rx_bytes = rx;
  p.last_handshake_sec = handshake_sec;
  p.has_session = session;
  return p;
}

Now at(int s) {
  return Now{MonoTime(std::chrono::seconds(s)), WallTime(std::chrono::seconds(1'000'000 + s))};
}

TEST(PeerWatch, ConnectsThenReconnectsWithBackoffAndRecovers) {
  ScriptedRandom rng;  // zero jitter: delays 0.5, 1, 2, 4 ... s
  PeerWatch w(30s, BackoffOptions{1s, 60s}, rng);
  // Start: no handshake yet -> connecting, attempt at once.
  EXPECT_TRUE(w.observe(at(0), peer(0, 0, false)));
  EXPECT_EQ(w.state(), PeerState::kConnecting);
  EXPECT_TRUE(w.observe(at(1), peer(0, 0, false)));   // 0.5 s later: due again
  EXPECT_FALSE(w.observe(at(1), peer(0, 0, false)));  // next in 1 s
  // Handshake done.
  EXPECT_FALSE(w.observe(at(2), peer(148, 1'000'002, true)));
  EXPECT_EQ(w.state(), PeerState::kConnected);
  // Traffic keeps it alive.
  EXPECT_FALSE(w.observe(at(20), peer(500, 1'000'002, true)));
  EXPECT_FALSE(w.observe(at(49), peer(500, 1'000'002, true)));
  // Nothing heard for dead_after: reconnecting, attempts spaced by the backoff.
  EXPECT_TRUE(w.observe(at(50), peer(500, 1'000'002, true)));
  EXPECT_EQ(w.state(), PeerState::kReconnecting);
  std::vector<int> attempts_at = {50};
  for (int t = 51; t < 120; ++t)
    if (w.observe(at(t), peer(500, 1'000'002, true)))
      attempts_at.push_back(t);
  // Half-base delays 0.5, 1, 2, 4, 8, 16, 30 s (rounded up to the 1 s observation grid).
  EXPECT_EQ(attempts_at, (std::vector<int>{50, 51, 52, 54, 58, 66, 82, 112}));
  // The server answers: connected again, backoff reset.
  EXPECT_FALSE(w.observe(at(121), peer(648, 1'000'121, true)));
  EXPECT_EQ(w.state(), PeerState::kConnected);
  EXPECT_TRUE(w.observe(at(152), peer(648, 1'000'121, true)));
  EXPECT_TRUE(w.observe(at(153), peer(648, 1'000'121, true)));  // 0.5 s: backoff restarted
}

TEST(PeerWatch, ExpiredHandshakeIsNotConnected) {
  ScriptedRandom rng;
  PeerWatch w(1000s, BackoffOptions{1s, 60s}, rng);
  EXPECT_FALSE(w.observe(at(0), peer(100, 1'000'000, true)));
  EXPECT_EQ(w.state(), PeerState::kConnected);
  // rx keeps changing but the last handshake is older than Reject-After-Time (180 s).
  EXPECT_TRUE(w.observe(at(181), peer(200, 1'000'000, true)));
  EXPECT_EQ(w.state(), PeerState::kReconnecting);
  EXPECT_EQ(std::string(peer_state_name(w.state())), "reconnecting");
}

}  // namespace
}  // namespace warren::client
