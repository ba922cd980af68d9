// The TUN write side of the offloads: GroCoalescer on a batch of decrypted packets. Checks: every
// input packet lands in exactly one frame; flatten() writes virtio header + frame.size() bytes; a
// plain frame is its packet unchanged; a super-packet parses back with parse_gso_frame into as
// many segments as it has members, and splitting it gives back each member's payload, with valid
// checksums (naive checksum of the unit tests). So coalescing never loses, reorders within a
// flow, or corrupts a byte, and never turns a packet with a bad checksum into a good one.
//
// Input: options byte (bit 0 UDP coalescing, bits 1-3 max_segments), then packets. Each packet
// is either raw (a length byte and bytes) or built (a well-formed TCP/UDP packet of one of four
// flows, continuing that flow's sequence numbers unless told otherwise, sometimes corrupt), so
// the fuzzer reaches real coalescing without finding checksums itself.

#include <algorithm>
#include <array>

#include "fuzz_support.h"
#include "net/gso.h"
#include "unit/net/gso_packets.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Cursor in(data, size);
  const std::uint8_t opt = in.u8();
  net::GroOptions options;
  options.udp = opt & 1;
  options.max_segments = 2 + ((opt >> 1) & 7) * 9;
  std::vector<std::vector<std::uint8_t>> packets;
  std::array<std::uint32_t, 4> next_seq{1000, 50000, 7, 900000};
  while (!in.empty() && packets.size() < 256) {
    const std::uint8_t kind = in.u8();
    if ((kind & 0x80) == 0) {
      auto b = in.take(in.u8());
      packets.emplace_back(b.begin(), b.end());
      continue;
    }
    const int flow = kind & 3;
    testing::PacketSpec s;
    s.v6 = flow & 1;
    s.proto = (flow & 2) && options.udp ? 17 : 6;
    s.sport = static_cast<std::uint16_t>(40000 + flow);
    s.payload = (kind & 0x04) ? in.u8() : 1000;
    s.seq = next_seq[flow];
    if (kind & 0x08)
      s.seq += in.u8();                                                // a gap
    s.flags = static_cast<std::uint8_t>((kind & 0x10) ? 0x18 : 0x10);  // PSH|ACK or ACK
    s.corrupt = (kind & 0x20) && (in.u8() & 1);
    if (kind & 0x40)
      s.ttl = in.u8();
    s.fill = static_cast<std::uint8_t>(packets.size());
    next_seq[flow] = s.seq + static_cast<std::uint32_t>(s.payload);
    packets.push_back(testing::build_packet(s));
  }
  std::vector<ConstBytes> views;
  for (const auto& p : packets)
    views.emplace_back(p);

  net::GroCoalescer gro(options);
  const std::size_t frames = gro.coalesce(views);
  WARREN_FUZZ_CHECK(frames == gro.frame_count());
  std::size_t members = 0;
  std::vector<std::uint8_t> flat, seg;
  for (std::size_t i = 0; i < frames; ++i) {
    const auto f = gro.frame(i);
    members += f.packets;
    WARREN_FUZZ_CHECK(f.vnet_hdr.size() == net::kVirtioNetHdrSize);
    flat.assign(net::kVirtioNetHdrSize + f.size(), 0);
    WARREN_FUZZ_CHECK(gro.flatten(i, flat) == flat.size());
    if (flat.size() > 1)
      WARREN_FUZZ_CHECK(gro.flatten(i, std::span(flat).first(flat.size() - 1)) == 0);
    const auto h = net::decode_virtio_net_hdr(flat.data());
    if (h.gso_type == net::kGsoNone) {
      WARREN_FUZZ_CHECK(f.packets == 1 && f.payloads.size() == 1);
      WARREN_FUZZ_CHECK(std::equal(f.payloads[0].begin(), f.payloads[0].end(),
                                   flat.begin() + net::kVirtioNetHdrSize, flat.end()));
      continue;
    }
    WARREN_FUZZ_CHECK(f.packets >= 1 && f.packets <= options.max_segments);
    WARREN_FUZZ_CHECK(f.size() <= options.max_size);
    auto parsed = net::parse_gso_frame(flat);
    WARREN_FUZZ_CHECK(parsed.ok());
    WARREN_FUZZ_CHECK(parsed.frame.segments == f.packets);
    WARREN_FUZZ_CHECK(f.payloads.size() == f.packets);
    for (std::size_t k = 0; k < f.packets; ++k) {
      seg.assign(net::segment_size(parsed.frame, k), 0);
      WARREN_FUZZ_CHECK(net::split_segment(parsed.frame, k, seg) == seg.size());
      WARREN_FUZZ_CHECK(testing::checksums_ok(seg));
      const auto& pl = f.payloads[k];
      WARREN_FUZZ_CHECK(seg.size() == parsed.frame.header_len + pl.size());
      WARREN_FUZZ_CHECK(
          std::equal(pl.begin(), pl.end(),
                     seg.begin() + static_cast<std::ptrdiff_t>(parsed.frame.header_len)));
    }
  }
  WARREN_FUZZ_CHECK(members == packets.size());
  return 0;
}
