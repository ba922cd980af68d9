#pragma once
// Shared pieces of the libFuzzer targets: a cursor over the fuzzer's bytes, a check that aborts
// (so libFuzzer records the input as a crash), and the two-node WireGuard fixture the protocol
// targets start from.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "support/wg_harness.h"
#include "wg/cookie.h"

namespace warren::fuzz {

/// An invariant of the code under test: failing it is a bug, reported like a crash.
#define WARREN_FUZZ_CHECK(cond)                                                         \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

/// Reads the fuzzer's input front to back; past the end every read yields zeros.
class Cursor {
 public:
  Cursor(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() {
    std::uint16_t hi = u8();
    return static_cast<std::uint16_t>(hi << 8 | u8());
  }
  std::size_t remaining() const { return size_ - pos_; }
  bool empty() const { return pos_ >= size_; }
  /// Up to `n` bytes (fewer at the end).
  std::span<const std::uint8_t> take(std::size_t n) {
    n = n < remaining() ? n : remaining();
    std::span<const std::uint8_t> s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::uint8_t> rest() { return take(remaining()); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// Two configured peers, a (initiator) and b (responder), with fixed keys: every run of a
/// target builds the same pair, so inputs replay deterministically.
struct Pair {
  Pair()
      : a("a", 11, *net::Endpoint::parse("192.0.2.1:51820"), "10.0.0.1"),
        b("b", 12, *net::Endpoint::parse("192.0.2.2:51820"), "10.0.0.2") {
    net.nodes = {&a, &b};
    test::Network::connect(a, b);
    test::Network::connect(b, a);
  }
  /// a's first handshake initiation (a has a packet for b staged).
  std::vector<std::uint8_t> initiation() {
    net.send_ip(a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 32));
    WARREN_FUZZ_CHECK(a.sink.out().size() == 1);
    auto d = a.sink.out().front().bytes;
    a.sink.out().clear();
    return d;
  }
  /// Delivers `d` from `from` to `to`; returns the verdict.
  wg::RecvResult deliver(test::Node& from, test::Node& to, std::vector<std::uint8_t>& d) {
    net::Path path{from.addr, to.addr.address, 0};
    auto r = to.device.decapsulate(path, d, net.now, to.sink);
    if (r.verdict == wg::Verdict::kToTun) {
      WARREN_FUZZ_CHECK(r.offset + r.length <= d.size());
      to.received.emplace_back(d.begin() + static_cast<std::ptrdiff_t>(r.offset),
                               d.begin() + static_cast<std::ptrdiff_t>(r.offset + r.length));
    }
    return r;
  }

  test::Network net;
  test::Node a, b;
};

/// Recomputes mac1 (and mac2, zero without a cookie) of a type-1/2 message as a sender that
/// knows the receiver's public key would, so mutations reach the code behind the mac1 check.
inline void fix_macs(std::vector<std::uint8_t>& message, const crypto::PublicKey& receiver,
                     MonoTime now) {
  if (message.size() != wg::kInitiationSize && message.size() != wg::kResponseSize)
    return;
  wg::CookieGenerator g;
  g.set_peer_public_key(receiver);
  g.add_macs(message, now);
}

}  // namespace warren::fuzz
