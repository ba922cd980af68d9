// Starts from a genuine message of each WireGuard type (initiation, response, cookie reply,
// transport data), applies the input's edits to it and delivers it to the peer in exactly the
// state that expects it. Beyond "no crash, no sanitizer report" it checks what the protocol
// promises: a message whose authenticated bytes were changed is dropped, an unchanged one (or
// one changed only where no MAC/AEAD covers it) is accepted, and a replay of an accepted
// initiation or data packet is dropped.
//
// Input: kind (0 initiation -> b, 1 response -> a, 2 cookie reply -> a, 3 transport -> b),
// flags (bit 0: recompute mac1/mac2 after editing, bit 1: receiver under load), length (0 =
// unchanged, else truncate/extend to length-1 bytes), then (offset_hi, offset_lo, xor) edits.

#include <algorithm>

#include "fuzz_support.h"
#include "wg/messages.h"

using namespace warren;
using fuzz::Cursor;

namespace {

struct Sample {
  std::vector<std::uint8_t> bytes;
  test::Node* from;
  test::Node* to;
};

// Brings the pair to the point where `kind`'s genuine message is the next thing the receiver
// expects, and returns that message.
Sample make_sample(fuzz::Pair& p, int kind, bool under_load) {
  auto init = p.initiation();
  if (kind == 0)
    return {init, &p.a, &p.b};
  if (kind == 2) {
    p.b.device.force_under_load(true);
    (void)p.deliver(p.a, p.b, init);
    WARREN_FUZZ_CHECK(p.b.sink.out().size() == 1);
    auto reply = p.b.sink.out().front().bytes;
    p.b.sink.out().clear();
    WARREN_FUZZ_CHECK(reply.size() == wg::kCookieReplySize);
    p.b.device.force_under_load(std::nullopt);
    return {reply, &p.b, &p.a};
  }
  (void)p.deliver(p.a, p.b, init);
  WARREN_FUZZ_CHECK(p.b.sink.out().size() == 1);
  auto response = p.b.sink.out().front().bytes;
  p.b.sink.out().clear();
  if (kind == 1)
    return {response, &p.b, &p.a};
  (void)p.deliver(p.b, p.a, response);
  // The staged packet leaves as the first data message once a has a session.
  WARREN_FUZZ_CHECK(!p.a.sink.out().empty());
  auto data = p.a.sink.out().back().bytes;
  p.a.sink.out().clear();
  (void)under_load;
  return {data, &p.a, &p.b};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Cursor in(data, size);
  const int kind = in.u8() % 4;
  const std::uint8_t flags = in.u8();
  const bool fix = flags & 1;
  const bool under_load = flags & 2;
  const std::uint8_t length = in.u8();

  fuzz::Pair p;
  Sample s = make_sample(p, kind, under_load);
  const std::vector<std::uint8_t> original = s.bytes;
  auto& m = s.bytes;
  if (length != 0)
    m.resize(length - 1u, 0);
  while (in.remaining() >= 3 && !m.empty()) {
    const std::size_t off = in.u16() % m.size();
    m[off] ^= in.u8();
  }
  if (fix)
    fuzz::fix_macs(m, s.to->pub, p.net.now.mono);

  s.to->device.force_under_load(under_load);
  s.to->sink.out().clear();
  const auto delivered = m;
  auto r = p.deliver(*s.from, *s.to, m);
  const bool accepted = r.verdict == wg::Verdict::kToTun ||
                        (r.verdict == wg::Verdict::kDrop && r.drop == wg::Drop::kNone);

  // What the protocol promises, where the answer is knowable from the edit alone.
  if (!under_load && delivered.size() == original.size()) {
    // Handshake messages: body [0, mac1) is covered by mac1, and (except the sender index at
    // [4, 8)) by the Noise AEAD too; mac2 is ignored when not under load. Cookie replies and
    // data are authenticated whole (AEAD; the receiver index selects the key).
    const std::size_t mac1 = kind == 0   ? wg::msg::kInitMac1
                             : kind == 1 ? wg::msg::kRespMac1
                                         : original.size();
    bool body = false, outside_sender = false, mac1_changed = false;
    for (std::size_t i = 0; i < original.size(); ++i) {
      if (delivered[i] == original[i])
        continue;
      if (i < mac1) {
        body = true;
        outside_sender |= i < 4 || i >= 8;
      } else if (i < mac1 + 16) {
        mac1_changed = true;
      }
    }
    if (kind >= 2) {
      WARREN_FUZZ_CHECK(accepted == !body);
    } else if (!body) {
      WARREN_FUZZ_CHECK(accepted == (fix || !mac1_changed));
    } else if (!fix || outside_sender) {
      WARREN_FUZZ_CHECK(!accepted);
    } else {
      WARREN_FUZZ_CHECK(accepted);  // only the sender index changed, mac1 recomputed
    }
  }
  if (accepted && (kind == 0 || kind == 3)) {
    auto again = delivered;
    auto r2 = p.deliver(*s.from, *s.to, again);
    if (!under_load || kind == 3)
      WARREN_FUZZ_CHECK(r2.verdict == wg::Verdict::kDrop && r2.drop != wg::Drop::kNone);
  }
  // Let whatever the message caused play out (responses, staged packets, keepalives).
  p.net.run(8);
  return 0;
}
