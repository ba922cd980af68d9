// Arbitrary datagrams into wg::Device::decapsulate of a device with a configured peer and a live
// session, from the peer's address. The first byte picks how much of the input is taken as is:
//   0: raw datagram;
//   1: a type-4 header with the live session's receiver index, then the input (counter and
//      ciphertext): the replay window and AEAD open on attacker bytes;
//   2: a type-1 or type-2 message (by size) with valid mac1: reaches the Noise decryption;
//   3: as 2 with the device under load: the cookie-reply / mac2 path.
// Device::lane_of must sort each input as its shape says (a handshake message from b's peer's
// endpoint, or not a handshake message). Then, whatever happened, the session must still carry
// data both ways.

#include "fuzz_support.h"
#include "wg/messages.h"

using namespace warren;

namespace {

struct Fixture {
  Fixture() {
    net.send_ip(p.a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 32));
    p.net.run();
    WARREN_FUZZ_CHECK(p.b.received.size() == 1);
    // b's receiver index for a: the first four bytes after the type of a's data packets.
    p.net.lose = [this](const test::Node&, const test::Node&, const test::Datagram& d) {
      if (d.bytes.size() >= 16 && load_le32(d.bytes.data()) == wg::kMessageTransport)
        index_b = load_le32(d.bytes.data() + 4);
      return false;
    };
    p.net.send_ip(p.a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 32));
    p.net.run();
    p.net.lose = nullptr;
  }
  fuzz::Pair p;
  test::Network& net = p.net;
  std::uint32_t index_b = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture f;
  fuzz::Cursor in(data, size);
  const int mode = in.u8() % 4;
  std::vector<std::uint8_t> d;
  auto rest = in.rest();
  if (mode == 1) {
    d.resize(8);
    store_le32(d.data(), wg::kMessageTransport);
    store_le32(d.data() + 4, f.index_b);
  }
  d.insert(d.end(), rest.begin(), rest.end());
  if (mode >= 2 && !d.empty()) {
    d.resize(d.size() <= wg::kResponseSize ? wg::kResponseSize : wg::kInitiationSize);
    store_le32(d.data(),
               d.size() == wg::kResponseSize ? wg::kMessageResponse : wg::kMessageInitiation);
    fuzz::fix_macs(d, f.p.b.pub, f.net.now.mono);
  }
  // Triage (what the engine queues) agrees with the message's shape: only a well-sized type-1
  // or type-2 message is a handshake; the datagram comes from a's address, b's peer's endpoint.
  const wg::Lane lane =
      f.p.b.device.lane_of(net::Path{f.p.a.addr, std::nullopt, 0}, d, f.net.now.mono);
  const bool handshake =
      d.size() >= 4 &&
      ((load_le32(d.data()) == wg::kMessageInitiation && d.size() == wg::kInitiationSize) ||
       (load_le32(d.data()) == wg::kMessageResponse && d.size() == wg::kResponseSize));
  WARREN_FUZZ_CHECK(lane == (handshake ? wg::Lane::kKnownEndpoint : wg::Lane::kDirect));
  f.p.b.device.force_under_load(mode == 3 ? std::optional<bool>(true) : std::nullopt);
  const auto before = f.p.b.received.size();
  auto r = f.p.deliver(f.p.a, f.p.b, d);
  // Nothing an attacker can make without the keys reaches the TUN.
  WARREN_FUZZ_CHECK(r.verdict != wg::Verdict::kToTun);
  WARREN_FUZZ_CHECK(f.p.b.received.size() == before);
  if (r.verdict == wg::Verdict::kDrop && r.drop == wg::Drop::kNone) {
    // Only a cookie reply (under load) or nothing may answer garbage.
    for (const auto& out : f.p.b.sink.out())
      WARREN_FUZZ_CHECK(out.bytes.size() == wg::kCookieReplySize);
  }
  f.p.b.sink.out().clear();
  f.p.b.device.force_under_load(std::nullopt);
  // The established session is unharmed (one packet per 256 inputs keeps the cost low).
  static unsigned n = 0;
  if (++n % 256 == 0) {
    const auto got = f.p.b.received.size();
    f.net.send_ip(f.p.a, test::ipv4_packet("10.0.0.1", "10.0.0.2", 16));
    f.net.run();
    WARREN_FUZZ_CHECK(f.p.b.received.size() == got + 1);
  }
  return 0;
}
