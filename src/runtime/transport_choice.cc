// The client's choice between UDP and QUIC (see transport_choice.h).

#include "runtime/transport_choice.h"

#include <algorithm>

namespace warren::runtime {

TransportChoice::TransportChoice(Mode mode, Options options, MonoTime start)
    : mode_(mode),
      options_(options),
      carrier_(mode == Mode::kQuic ? Carrier::kQuic : Carrier::kUdp),
      since_(start),
      interval_(options.probe_interval) {}

void TransportChoice::to_quic(MonoTime now, bool failed_trial) {
  // A trial that failed: the path answers STUN but not WireGuard (or only for a moment). Wait
  // longer before the next one, so that such a path costs a few seconds per interval, not a
  // 5 s outage every 15 s.
  if (failed_trial)
    interval_ = std::min(interval_ * 2, options_.max_probe_interval);
  carrier_ = Carrier::kQuic;
  since_ = now;
  trial_ = false;
  udp_working_.reset();
  last_probe_.reset();
  first_probe_.reset();
}

void TransportChoice::to_udp(MonoTime now) {
  carrier_ = Carrier::kUdp;
  since_ = now;
  trial_ = true;
  udp_working_.reset();
}

TransportChoice::Decision TransportChoice::tick(const Input& in) {
  const Carrier before = carrier_;
  Decision d;
  if (mode_ == Mode::kAuto && carrier_ == Carrier::kUdp) {
    // Only a handshake completed since we moved here proves this carrier (one from before the
    // switch to QUIC says nothing about the path now).
    if (!udp_working_ && in.last_udp_handshake && *in.last_udp_handshake >= since_)
      udp_working_ = *in.last_udp_handshake;
    if (!udp_working_) {
      if (in.now - since_ >= options_.fallback_after)
        to_quic(in.now, trial_);
    } else if (in.now - std::max(*udp_working_, in.last_udp_handshake.value_or(*udp_working_)) >
               options_.handshake_max_age) {
      to_quic(in.now, false);  // it worked, then stopped: the path died (not a flapping trial)
    } else if (in.now - *udp_working_ >= options_.stable_after) {
      interval_ = options_.probe_interval;
      trial_ = false;
    }
  } else if (mode_ == Mode::kAuto && carrier_ == Carrier::kQuic) {
    if (in.probe_answered && first_probe_ && *in.probe_answered >= *first_probe_) {
      to_udp(in.now);
    } else {
      // With QUIC down nothing works: look for UDP at the base rate, whatever the backoff.
      const Duration every = in.quic_up ? interval_ : options_.probe_interval;
      const MonoTime due = (last_probe_ ? *last_probe_ : since_) + every;
      if (in.now >= due) {
        d.send_probe = true;
        last_probe_ = in.now;
        if (!first_probe_)
          first_probe_ = in.now;
      }
    }
  }
  d.carrier = carrier_;
  d.switched = carrier_ != before;
  return d;
}

const char* mode_name(TransportChoice::Mode m) {
  switch (m) {
    case TransportChoice::Mode::kAuto:
      return "auto";
    case TransportChoice::Mode::kWireguard:
      return "wireguard";
    case TransportChoice::Mode::kQuic:
      return "quic";
  }
  return "?";
}

const char* carrier_name(TransportChoice::Carrier c) {
  return c == TransportChoice::Carrier::kQuic ? "quic" : "udp";
}

}  // namespace warren::runtime
