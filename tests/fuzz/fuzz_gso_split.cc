// The TUN read side of the offloads: parse_gso_frame on a virtio-net header + IP packet, then
// split_segment for every segment. Every segment of a GSO frame must be a complete IP packet of
// exactly segment_size() bytes whose IPv4 header and TCP/UDP checksums verify (checked with the
// unit tests' naive checksum, which shares no code with net/gso.cc), and the segments' payloads
// together must be the frame's payload, in order.
//
// Input: the first byte picks the form: 0 = raw frame (virtio header + packet as given);
// 1..255 = a well-formed TSO/USO frame built from the rest (protocol, family, gso_size,
// payload length), so the split path is reached without the fuzzer having to find checksums.

#include <algorithm>

#include "fuzz_support.h"
#include "net/gso.h"
#include "net/ip_header.h"
#include "unit/net/gso_packets.h"

using namespace warren;

namespace {

std::vector<std::uint8_t> built_frame(fuzz::Cursor& in) {
  testing::PacketSpec s;
  const std::uint8_t shape = in.u8();
  s.v6 = shape & 1;
  s.proto = (shape & 2) ? 17 : 6;
  s.payload = in.u16() % 9000;
  s.seq = static_cast<std::uint32_t>(in.u16()) << 16 | in.u16();
  s.flags = static_cast<std::uint8_t>(0x10 | (in.u8() & 0xc9));  // ACK + FIN/PSH/CWR/ECE bits
  if (shape & 4)
    s.tcp_options = testing::timestamp_option(in.u16(), in.u16());
  s.fill = in.u8();
  auto p = testing::build_packet(s);
  const std::size_t l3 = s.v6 ? 40 : 20;
  const std::size_t l4h = s.proto == 6 ? 20 + s.tcp_options.size() : 8;
  net::VirtioNetHdr h;
  h.flags = net::kVirtioNeedsCsum;
  h.gso_type = s.proto == 17 ? net::kGsoUdpL4 : s.v6 ? net::kGsoTcpV6 : net::kGsoTcpV4;
  h.gso_size = static_cast<std::uint16_t>(1 + in.u16() % 2000);
  h.hdr_len = static_cast<std::uint16_t>(l3 + l4h);
  h.csum_start = static_cast<std::uint16_t>(l3);
  h.csum_offset = s.proto == 6 ? 16 : 6;
  std::vector<std::uint8_t> frame(net::kVirtioNetHdrSize);
  net::encode_virtio_net_hdr(h, frame.data());
  frame.insert(frame.end(), p.begin(), p.end());
  // Any remaining bytes overwrite the start of the frame: a nearly valid one.
  auto rest = in.rest();
  for (std::size_t i = 0; i + 1 < rest.size() && i < 64; i += 2)
    frame[rest[i] % frame.size()] ^= rest[i + 1];
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Cursor in(data, size);
  std::vector<std::uint8_t> frame;
  if (in.u8() == 0) {
    auto r = in.rest();
    frame.assign(r.begin(), r.end());
  } else {
    frame = built_frame(in);
  }
  auto parsed = net::parse_gso_frame(frame);
  if (!parsed.ok())
    return 0;
  const net::GsoFrame& f = parsed.frame;
  WARREN_FUZZ_CHECK(f.segments >= 1 && f.segments <= net::kMaxGsoSegments);
  WARREN_FUZZ_CHECK(f.packet.size() + net::kVirtioNetHdrSize == frame.size());
  std::vector<std::uint8_t> payload;
  std::vector<std::uint8_t> seg;
  for (std::size_t i = 0; i < f.segments; ++i) {
    const std::size_t n = net::segment_size(f, i);
    WARREN_FUZZ_CHECK(n > 0 && n <= 65535 + 40);
    seg.assign(n, 0xee);
    if (i == 0 && n > 1)
      WARREN_FUZZ_CHECK(net::split_segment(f, i, std::span(seg).first(n - 1)) == 0);
    WARREN_FUZZ_CHECK(net::split_segment(f, i, seg) == n);
    if (!f.gso)
      continue;
    WARREN_FUZZ_CHECK(n >= f.header_len);
    auto info = net::parse_ip_header(seg);
    WARREN_FUZZ_CHECK(info && info->total_length == n);
    WARREN_FUZZ_CHECK(testing::checksums_ok(seg));
    payload.insert(payload.end(), seg.begin() + static_cast<std::ptrdiff_t>(f.header_len),
                   seg.end());
  }
  if (f.gso) {
    WARREN_FUZZ_CHECK(payload.size() == f.packet.size() - f.header_len);
    WARREN_FUZZ_CHECK(std::equal(payload.begin(), payload.end(),
                                 f.packet.begin() + static_cast<std::ptrdiff_t>(f.header_len)));
  }
  return 0;
}
