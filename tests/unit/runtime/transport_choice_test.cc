// The client's choice between UDP and QUIC (runtime/transport_choice.h): one test per rule,
// with made-up times.

#include "runtime/transport_choice.h"

#include <gtest/gtest.h>

namespace warren::runtime {
namespace {

using namespace std::chrono_literals;
using Carrier = TransportChoice::Carrier;
using Mode = TransportChoice::Mode;

const MonoTime t0 = MonoTime{} + 1000s;

/// Drives a choice second by second, with the inputs the test sets.
struct Driver {
  explicit Driver(Mode mode) : choice(mode, t0) {}
  TransportChoice choice;
  TransportChoice::Input in{t0, std::nullopt, true, std::nullopt};
  int probes = 0;
  int switches = 0;
  TransportChoice::Decision last;

  /// Ticks at every second up to `until` (inclusive). A probe sent while `answers` holds is
  /// answered 1 s later; a switch to UDP completes a handshake 1 s later while `handshakes`.
  void run_until(MonoTime until) {
    while (in.now < until) {
      in.now += 1s;
      if (pending_answer && in.now >= *pending_answer) {
        in.probe_answered = *pending_answer;
        pending_answer.reset();
      }
      if (pending_handshake && in.now >= *pending_handshake) {
        in.last_udp_handshake = *pending_handshake;
        pending_handshake.reset();
      }
      last = choice.tick(in);
      if (last.send_probe) {
        ++probes;
        if (answers)
          pending_answer = in.now + 1s;
      }
      if (last.switched)
        ++switches;
      if (last.carrier == Carrier::kUdp && handshakes && !pending_handshake &&
          (last.switched || renew_every_minute_now()))
        pending_handshake = in.now + 1s;
    }
  }
  bool renew_every_minute_now() const {
    return !in.last_udp_handshake || in.now - *in.last_udp_handshake >= 60s;
  }
  bool answers = false, handshakes = false;
  std::optional<MonoTime> pending_answer, pending_handshake;
};

TEST(TransportChoice, FixedModesNeverMoveNorProbe) {
  for (Mode mode : {Mode::kWireguard, Mode::kQuic}) {
    TransportChoice c(mode, t0);
    const Carrier want = mode == Mode::kQuic ? Carrier::kQuic : Carrier::kUdp;
    for (int s = 0; s < 3600; s += 7) {
      // Whatever happens: no handshake, probes answered, QUIC up or down.
      auto d = c.tick({t0 + std::chrono::seconds(s), std::nullopt, s % 2 == 0, t0 + 1s});
      EXPECT_EQ(d.carrier, want);
      EXPECT_FALSE(d.send_probe);
      EXPECT_FALSE(d.switched);
    }
  }
}

TEST(TransportChoice, AutoStartsOnUdpAndStaysWhenAHandshakeCompletes) {
  TransportChoice c(Mode::kAuto, t0);
  EXPECT_EQ(c.tick({t0, std::nullopt, false, std::nullopt}).carrier, Carrier::kUdp);
  EXPECT_EQ(c.tick({t0 + 4s, std::nullopt, false, std::nullopt}).carrier, Carrier::kUdp);
  // The handshake at 4 s: long after fallback_after, still UDP.
  for (auto at : {5s, 10s, 60s, 130s})
    EXPECT_EQ(c.tick({t0 + at, t0 + 4s, false, std::nullopt}).carrier, Carrier::kUdp) << at.count();
}

TEST(TransportChoice, NoHandshakeWithinFallbackAfterMeansQuic) {
  TransportChoice c(Mode::kAuto, t0);
  EXPECT_EQ(c.tick({t0 + 4s, std::nullopt, false, std::nullopt}).carrier, Carrier::kUdp);
  auto d = c.tick({t0 + 5s, std::nullopt, false, std::nullopt});
  EXPECT_EQ(d.carrier, Carrier::kQuic);
  EXPECT_TRUE(d.switched);
  EXPECT_FALSE(d.send_probe);          // the first probe comes one interval later
  EXPECT_EQ(c.probe_interval(), 15s);  // the first fallback does not back off
  // A handshake from before the start does not count either.
  TransportChoice old(Mode::kAuto, t0);
  EXPECT_EQ(old.tick({t0 + 5s, t0 - 1s, false, std::nullopt}).carrier, Carrier::kQuic);
}

TEST(TransportChoice, OnQuicProbesEveryInterval) {
  Driver d(Mode::kAuto);
  d.run_until(t0 + 5s);  // falls back at 5 s
  ASSERT_EQ(d.choice.carrier(), Carrier::kQuic);
  d.run_until(t0 + 19s);
  EXPECT_EQ(d.probes, 0);
  d.run_until(t0 + 20s);  // 5 + 15
  EXPECT_EQ(d.probes, 1);
  d.run_until(t0 + 65s);  // 20, 35, 50, 65
  EXPECT_EQ(d.probes, 4);
  EXPECT_EQ(d.choice.carrier(), Carrier::kQuic);
}

TEST(TransportChoice, AnsweredProbeMovesBackToUdp) {
  Driver d(Mode::kAuto);
  d.run_until(t0 + 5s);
  d.answers = true;
  d.handshakes = true;
  d.run_until(t0 + 20s);  // the probe
  EXPECT_EQ(d.choice.carrier(), Carrier::kQuic);
  d.run_until(t0 + 21s);  // its answer
  EXPECT_EQ(d.choice.carrier(), Carrier::kUdp);
  EXPECT_TRUE(d.last.switched);
  // The trial's handshake completes: UDP stays.
  d.run_until(t0 + 200s);
  EXPECT_EQ(d.choice.carrier(), Carrier::kUdp);
  EXPECT_EQ(d.switches, 2);
}

TEST(TransportChoice, AStaleProbeAnswerDoesNotCount) {
  TransportChoice c(Mode::kAuto, t0);
  (void)c.tick({t0 + 5s, std::nullopt, true, std::nullopt});  // -> QUIC
  // An answer from before any probe of this QUIC period (e.g. from the start): ignored.
  for (auto at : {6s, 10s, 19s})
    EXPECT_EQ(c.tick({t0 + at, std::nullopt, true, t0 + 1s}).carrier, Carrier::kQuic);
  auto probe = c.tick({t0 + 20s, std::nullopt, true, t0 + 1s});
  EXPECT_TRUE(probe.send_probe);
  EXPECT_EQ(probe.carrier, Carrier::kQuic);
  EXPECT_EQ(c.tick({t0 + 21s, std::nullopt, true, t0 + 20s}).carrier, Carrier::kUdp);
}

TEST(TransportChoice, FailedTrialsDoubleTheProbeIntervalUpToTheCap) {
  // STUN answered, WireGuard dropped: every trial fails.
  Driver d(Mode::kAuto);
  d.answers = true;
  d.handshakes = false;
  d.run_until(t0 + 5s);
  EXPECT_EQ(d.choice.probe_interval(), 15s);
  d.run_until(t0 + 21s);  // probe at 20, answer at 21: UDP trial
  EXPECT_EQ(d.choice.carrier(), Carrier::kUdp);
  d.run_until(t0 + 26s);  // no handshake within 5 s: back to QUIC, doubled
  EXPECT_EQ(d.choice.carrier(), Carrier::kQuic);
  EXPECT_EQ(d.choice.probe_interval(), 30s);
  d.run_until(t0 + 55s);
  EXPECT_EQ(d.probes, 1);  // the next one at 26 + 30 = 56
  d.run_until(t0 + 56s);
  EXPECT_EQ(d.probes, 2);
  d.run_until(t0 + 62s);  // 57 trial, 62 fails
  EXPECT_EQ(d.choice.probe_interval(), 60s);
  // After many more: capped at 5 min.
  d.run_until(t0 + 4h);
  EXPECT_EQ(d.choice.probe_interval(), 5min);
  EXPECT_EQ(d.choice.carrier(), Carrier::kQuic);
  // Far fewer switches than a fixed 15 s interval would make (4 h / 15 s = 960 trials).
  EXPECT_LT(d.switches, 120);
}

TEST(TransportChoice, LastingUdpSuccessResetsTheInterval) {
  Driver d(Mode::kAuto);
  d.answers = true;
  d.run_until(t0 + 26s);  // one failed trial
  ASSERT_EQ(d.choice.probe_interval(), 30s);
  d.handshakes = true;    // the path heals
  d.run_until(t0 + 57s);  // probe 56, answer 57: UDP, handshake at 58
  ASSERT_EQ(d.choice.carrier(), Carrier::kUdp);
  d.run_until(t0 + 58s + 119s);
  EXPECT_EQ(d.choice.probe_interval(), 30s);  // not yet stable_after (2 min)
  d.run_until(t0 + 58s + 120s);
  EXPECT_EQ(d.choice.probe_interval(), 15s);
  EXPECT_EQ(d.choice.carrier(), Carrier::kUdp);
}

TEST(TransportChoice, UdpThatStopsWorkingFallsBackWithoutBackoff) {
  Driver d(Mode::kAuto);
  d.handshakes = true;
  d.run_until(t0 + 300s);  // handshakes every minute
  ASSERT_EQ(d.choice.carrier(), Carrier::kUdp);
  d.handshakes = false;  // the network now drops UDP
  const MonoTime last = *d.in.last_udp_handshake;
  d.run_until(last + 135s);
  EXPECT_EQ(d.choice.carrier(), Carrier::kUdp);
  d.run_until(last + 136s);
  EXPECT_EQ(d.choice.carrier(), Carrier::kQuic);
  EXPECT_EQ(d.choice.probe_interval(), 15s);
}

TEST(TransportChoice, QuicDownProbesAtTheBaseRate) {
  Driver d(Mode::kAuto);
  d.answers = true;
  d.run_until(t0 + 62s);  // two failed trials: interval 60 s, on QUIC since 62
  ASSERT_EQ(d.choice.probe_interval(), 60s);
  ASSERT_EQ(d.choice.carrier(), Carrier::kQuic);
  d.answers = false;
  d.in.quic_up = false;
  const int before = d.probes;
  d.run_until(t0 + 62s + 60s);
  EXPECT_EQ(d.probes - before, 4);  // 77, 92, 107, 122: every 15 s, not every 60 s
  d.in.quic_up = true;
  d.run_until(t0 + 62s + 60s + 59s);
  EXPECT_EQ(d.probes - before, 4);  // back on the 60 s interval
}

TEST(TransportChoice, Names) {
  EXPECT_STREQ(mode_name(Mode::kAuto), "auto");
  EXPECT_STREQ(mode_name(Mode::kWireguard), "wireguard");
  EXPECT_STREQ(mode_name(Mode::kQuic), "quic");
  EXPECT_STREQ(carrier_name(Carrier::kUdp), "udp");
  EXPECT_STREQ(carrier_name(Carrier::kQuic), "quic");
}

}  // namespace
}  // namespace warren::runtime
