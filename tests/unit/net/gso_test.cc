#include "net/gso.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "unit/net/gso_packets.h"

namespace warren::net {
namespace {

using testing::build_packet;
using testing::checksums_ok;
using testing::naive_checksum;
using testing::PacketSpec;
using Packet = std::vector<std::uint8_t>;

Packet with_vnet(const VirtioNetHdr& h, const Packet& p) {
  Packet f(kVirtioNetHdrSize);
  encode_virtio_net_hdr(h, f.data());
  f.insert(f.end(), p.begin(), p.end());
  return f;
}

std::size_t l3_of(const Packet& p) {
  return (p[0] >> 4) == 6 ? 40 : (p[0] & 0x0f) * 4u;
}

// A super-packet as the kernel hands it out: one big packet, a GSO virtio header, and only the
// pseudo-header sum in the L4 checksum field (CHECKSUM_PARTIAL).
Packet kernel_super_packet(PacketSpec s, std::uint16_t gso_size) {
  Packet p = build_packet(s);
  const std::size_t l3 = l3_of(p);
  const bool tcp = s.proto == kProtoTcp;
  auto ph = testing::pseudo_header(p.data(), s.v6, s.proto, p.size() - l3);
  store_be16(&p[l3 + (tcp ? 16 : 6)], static_cast<std::uint16_t>(~naive_checksum({&ph})));
  VirtioNetHdr h;
  h.flags = kVirtioNeedsCsum;
  h.gso_type = tcp ? (s.v6 ? kGsoTcpV6 : kGsoTcpV4) : kGsoUdpL4;
  h.gso_size = gso_size;
  h.hdr_len = static_cast<std::uint16_t>(l3 + (tcp ? 20 + s.tcp_options.size() : 8));
  h.csum_start = static_cast<std::uint16_t>(l3);
  h.csum_offset = tcp ? 16 : 6;
  return with_vnet(h, p);
}

std::vector<Packet> split_all(ConstBytes frame, GsoError* error = nullptr) {
  std::vector<Packet> out;
  GsoParse r = parse_gso_frame(frame);
  if (error)
    *error = r.error;
  if (!r.ok())
    return out;
  for (std::size_t i = 0; i < r.frame.segments; ++i) {
    Packet seg(segment_size(r.frame, i));
    EXPECT_EQ(split_segment(r.frame, i, seg), seg.size());
    out.push_back(std::move(seg));
  }
  return out;
}

// ---- checksum and header ---------------------------------------------------------------

TEST(Checksum, MatchesNaiveSumForEveryLengthAndChainedPieces) {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len < 300; ++len) {
    Packet d(len);
    for (auto& b : d)
      b = static_cast<std::uint8_t>(rng());
    const std::uint16_t want = naive_checksum({&d});
    EXPECT_EQ(static_cast<std::uint16_t>(~checksum_fold(checksum_add(d))), want) << len;
    // Pieces split at an even offset chain to the same sum.
    const std::size_t cut = (len / 3) & ~std::size_t{1};
    std::uint64_t s = checksum_add(ConstBytes(d).first(cut));
    s = checksum_add(ConstBytes(d).subspan(cut), s);
    EXPECT_EQ(static_cast<std::uint16_t>(~checksum_fold(s)), want) << len;
  }
  // All-ones data stresses the carries.
  Packet ff(65535, 0xff);
  EXPECT_EQ(static_cast<std::uint16_t>(~checksum_fold(checksum_add(ff))), naive_checksum({&ff}));
}

TEST(Checksum, PseudoHeaderMatchesNaive) {
  Packet p = build_packet(PacketSpec{.v6 = true, .payload = 10});
  auto ph = testing::pseudo_header(p.data(), true, 6, 70000);
  const std::uint64_t s =
      pseudo_header_sum(ConstBytes(&p[8], 16), ConstBytes(&p[24], 16), 6, 70000);
  EXPECT_EQ(static_cast<std::uint16_t>(~checksum_fold(s)), naive_checksum({&ph}));
}

TEST(VirtioNetHdr, EncodesAndDecodesEveryField) {
  VirtioNetHdr h{1, kGsoTcpV6 | kGsoEcn, 0x1234, 1380, 40, 16};
  std::uint8_t b[kVirtioNetHdrSize];
  encode_virtio_net_hdr(h, b);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[1], kGsoTcpV6 | kGsoEcn);
  const VirtioNetHdr d = decode_virtio_net_hdr(b);
  EXPECT_EQ(d.hdr_len, 0x1234);
  EXPECT_EQ(d.gso_size, 1380);
  EXPECT_EQ(d.csum_start, 40);
  EXPECT_EQ(d.csum_offset, 16);
}

// ---- split -----------------------------------------------------------------------------

void check_tcp_split(bool v6) {
  PacketSpec s{.v6 = v6,
               .seq = 0xfffff000u,                  // wraps inside the super-packet
               .flags = 0x10 | 0x08 | 0x01 | 0x80,  // ACK PSH FIN CWR
               .tcp_options = testing::timestamp_option(11, 22),
               .id = 0xfffe,  // wraps too
               .payload = 5000};
  const Packet frame = kernel_super_packet(s, 1400);
  const Packet whole = build_packet(s);
  const std::vector<Packet> segs = split_all(frame);
  ASSERT_EQ(segs.size(), 4u);
  const std::size_t l3 = v6 ? 40 : 20;
  const std::size_t hdr = l3 + 32;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const Packet& g = segs[i];
    const std::size_t payload = i < 3 ? 1400 : 800;
    ASSERT_EQ(g.size(), hdr + payload) << i;
    if (v6) {
      EXPECT_EQ(load_be16(&g[4]), 32 + payload);
    } else {
      EXPECT_EQ(load_be16(&g[2]), hdr + payload);
      EXPECT_EQ(load_be16(&g[4]), static_cast<std::uint16_t>(0xfffe + i));
      EXPECT_EQ(g[6], 0x40);  // DF kept
    }
    EXPECT_EQ(load_be32(&g[l3 + 4]), static_cast<std::uint32_t>(0xfffff000u + i * 1400));
    EXPECT_EQ(load_be32(&g[l3 + 8]), 77u);
    const std::uint8_t flags = g[l3 + 13];
    EXPECT_EQ((flags & 0x08) != 0, i == 3) << "PSH only on the last";
    EXPECT_EQ((flags & 0x01) != 0, i == 3) << "FIN only on the last";
    EXPECT_EQ((flags & 0x80) != 0, i == 0) << "CWR only on the first";
    EXPECT_TRUE(flags & 0x10);
    EXPECT_TRUE(std::equal(&g[l3 + 20], &g[l3 + 32], &whole[l3 + 20])) << "options kept";
    EXPECT_TRUE(std::equal(g.begin() + static_cast<long>(hdr), g.end(),
                           whole.begin() + static_cast<long>(hdr + i * 1400)));
    EXPECT_TRUE(checksums_ok(g)) << i;
  }
}

TEST(GsoSplit, TsoV4SegmentsAreCompleteValidPackets) {
  check_tcp_split(false);
}
TEST(GsoSplit, TsoV6SegmentsAreCompleteValidPackets) {
  check_tcp_split(true);
}

TEST(GsoSplit, UsoSegmentsGetLengthsAndChecksums) {
  for (bool v6 : {false, true}) {
    PacketSpec s{.v6 = v6, .proto = 17, .id = 9, .payload = 3000};
    const Packet frame = kernel_super_packet(s, 1200);
    const Packet whole = build_packet(s);
    const std::vector<Packet> segs = split_all(frame);
    ASSERT_EQ(segs.size(), 3u);
    const std::size_t l3 = v6 ? 40 : 20;
    for (std::size_t i = 0; i < 3; ++i) {
      const std::size_t payload = i < 2 ? 1200 : 600;
      ASSERT_EQ(segs[i].size(), l3 + 8 + payload);
      EXPECT_EQ(load_be16(&segs[i][l3 + 4]), 8 + payload);
      if (!v6) {
        EXPECT_EQ(load_be16(&segs[i][4]), 9 + i);
      }
      EXPECT_EQ(load_be16(&segs[i][l3]), 40000);
      EXPECT_TRUE(std::equal(segs[i].begin() + static_cast<long>(l3 + 8), segs[i].end(),
                             whole.begin() + static_cast<long>(l3 + 8 + i * 1200)));
      EXPECT_TRUE(checksums_ok(segs[i])) << v6 << i;
    }
  }
}

TEST(GsoSplit, ExactMultipleAndSingleSegmentAndHeaderOnly) {
  PacketSpec s{.payload = 2800};
  EXPECT_EQ(split_all(kernel_super_packet(s, 1400)).size(), 2u);
  s.payload = 100;
  auto one = split_all(kernel_super_packet(s, 1400));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], build_packet(s));
  s.payload = 0;
  auto bare = split_all(kernel_super_packet(s, 1400));
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_TRUE(checksums_ok(bare[0]));
}

TEST(GsoSplit, PlainPacketWithNeedsCsumGetsItsChecksumCompleted) {
  for (std::uint8_t proto : {std::uint8_t{6}, std::uint8_t{17}}) {
    for (bool v6 : {false, true}) {
      PacketSpec s{.v6 = v6, .proto = proto, .payload = 333};
      Packet p = build_packet(s);
      const Packet want = p;
      const std::size_t l3 = l3_of(p);
      const std::size_t field = l3 + (proto == 6 ? 16 : 6);
      auto ph = testing::pseudo_header(p.data(), v6, proto, p.size() - l3);
      store_be16(&p[field], static_cast<std::uint16_t>(~naive_checksum({&ph})));
      ASSERT_FALSE(checksums_ok(p));
      VirtioNetHdr h;
      h.flags = kVirtioNeedsCsum;
      h.csum_start = static_cast<std::uint16_t>(l3);
      h.csum_offset = proto == 6 ? 16 : 6;
      auto segs = split_all(with_vnet(h, p));
      ASSERT_EQ(segs.size(), 1u);
      EXPECT_EQ(segs[0], want);
      // Without NEEDS_CSUM the packet passes untouched.
      auto plain = split_all(with_vnet(VirtioNetHdr{}, want));
      ASSERT_EQ(plain.size(), 1u);
      EXPECT_EQ(plain[0], want);
    }
  }
}

TEST(GsoSplit, OutputTooSmallWritesNothing) {
  const Packet frame = kernel_super_packet(PacketSpec{.payload = 3000}, 1400);
  GsoParse r = parse_gso_frame(frame);
  ASSERT_TRUE(r.ok());
  Packet small(segment_size(r.frame, 0) - 1);
  EXPECT_EQ(split_segment(r.frame, 0, small), 0u);
  Packet big(2000);
  EXPECT_EQ(split_segment(r.frame, r.frame.segments, big), 0u);
}

// ---- malformed frames ------------------------------------------------------------------

struct Mutation {
  const char* name;
  std::function<void(Packet&)> apply;  // on the whole frame (virtio header at 0, IP at 10)
  GsoError want;
};

void set16(Packet& f, std::size_t at, std::uint16_t v) {
  VirtioNetHdr h = decode_virtio_net_hdr(f.data());
  std::uint16_t* fields[] = {&h.hdr_len, &h.gso_size, &h.csum_start, &h.csum_offset};
  *fields[at] = v;
  encode_virtio_net_hdr(h, f.data());
}

TEST(GsoSplit, MalformedHeadersAreRefusedByName) {
  const std::size_t ip = kVirtioNetHdrSize;
  const std::vector<Mutation> cases = {
      {"gso_size 0", [](Packet& f) { set16(f, 1, 0); }, GsoError::kBadGsoSize},
      {"hdr_len beyond packet",
       [](Packet& f) { set16(f, 0, static_cast<std::uint16_t>(f.size())); }, GsoError::kBadHdrLen},
      {"csum_start 0", [](Packet& f) { set16(f, 2, 0); }, GsoError::kBadCsumStart},
      {"csum_start 21", [](Packet& f) { set16(f, 2, 21); }, GsoError::kBadCsumStart},
      {"csum_start huge", [](Packet& f) { set16(f, 2, 0xffff); }, GsoError::kBadCsumStart},
      {"csum_offset 6 on TCP", [](Packet& f) { set16(f, 3, 6); }, GsoError::kBadCsumOffset},
      {"csum_offset huge", [](Packet& f) { set16(f, 3, 0xfff0); }, GsoError::kBadCsumOffset},
      {"gso_type 2", [](Packet& f) { f[1] = 2; }, GsoError::kBadGsoType},
      {"gso_type UFO", [](Packet& f) { f[1] = kGsoUdp; }, GsoError::kBadGsoType},
      {"gso_type 0x7f", [](Packet& f) { f[1] = 0x7f; }, GsoError::kBadGsoType},
      {"TCPV6 on IPv4", [](Packet& f) { f[1] = kGsoTcpV6; }, GsoError::kBadGsoType},
      {"UDP_L4 on TCP", [](Packet& f) { f[1] = kGsoUdpL4; }, GsoError::kBadGsoType},
      {"IP protocol ICMP", [ip](Packet& f) { f[ip + 9] = 1; }, GsoError::kBadGsoType},
      {"IP version 5", [ip](Packet& f) { f[ip] = 0x55; }, GsoError::kBadIpHeader},
      {"IHL 4", [ip](Packet& f) { f[ip] = 0x44; }, GsoError::kBadIpHeader},
      {"IHL 15 (past csum_start)", [ip](Packet& f) { f[ip] = 0x4f; }, GsoError::kBadCsumStart},
      {"fragment", [ip](Packet& f) { f[ip + 6] |= 0x20; }, GsoError::kBadIpHeader},
      {"fragment offset", [ip](Packet& f) { f[ip + 7] = 1; }, GsoError::kBadIpHeader},
      {"TCP doff 4", [ip](Packet& f) { f[ip + 20 + 12] = 0x40; }, GsoError::kBadL4Header},
      {"TCP doff past end",
       [ip](Packet& f) {
         f[ip + 20 + 12] = 0xf0;
         f.resize(ip + 20 + 40);
       },
       GsoError::kTruncated},
      {"only the virtio header", [](Packet& f) { f.resize(kVirtioNetHdrSize); },
       GsoError::kTruncated},
      {"half a virtio header", [](Packet& f) { f.resize(5); }, GsoError::kTruncated},
      {"IPv4 header cut", [ip](Packet& f) { f.resize(ip + 19); }, GsoError::kTruncated},
      {"TCP header cut", [ip](Packet& f) { f.resize(ip + 20 + 19); }, GsoError::kTruncated},
      {"too many segments", [](Packet& f) { set16(f, 1, 1); }, GsoError::kTooManySegments},
  };
  const Packet good = kernel_super_packet(PacketSpec{.payload = 5000}, 1400);
  ASSERT_TRUE(parse_gso_frame(good).ok());
  for (const Mutation& m : cases) {
    Packet f = good;
    m.apply(f);
    GsoError e;
    EXPECT_TRUE(split_all(f, &e).empty()) << m.name;
    EXPECT_EQ(e, m.want) << m.name << ": got " << to_string(e);
  }
  // Plain frames: NEEDS_CSUM pointing outside the packet.
  const Packet plain = build_packet(PacketSpec{.payload = 50});
  VirtioNetHdr h{kVirtioNeedsCsum, kGsoNone, 0, 0, static_cast<std::uint16_t>(plain.size()), 0};
  EXPECT_EQ(parse_gso_frame(with_vnet(h, plain)).error, GsoError::kBadCsumStart);
  h.csum_start = 20;
  h.csum_offset = static_cast<std::uint16_t>(plain.size() - 21);
  EXPECT_EQ(parse_gso_frame(with_vnet(h, plain)).error, GsoError::kBadCsumOffset);
  h.csum_offset = static_cast<std::uint16_t>(plain.size() - 22);
  EXPECT_TRUE(parse_gso_frame(with_vnet(h, plain)).ok());
  // IPv6 with an extension header (hop-by-hop) is not split.
  Packet v6 = kernel_super_packet(PacketSpec{.v6 = true, .payload = 3000}, 1400);
  v6[ip + 6] = 0;
  EXPECT_EQ(parse_gso_frame(v6).error, GsoError::kBadGsoType);
}

TEST(GsoSplit, EveryTruncationAndRandomCorruptionIsSafe) {
  // Under ASan this also proves no read or write outside the spans.
  const Packet good = kernel_super_packet(
      PacketSpec{.tcp_options = testing::timestamp_option(1, 2), .payload = 4000}, 1300);
  for (std::size_t len = 0; len < good.size(); ++len) {
    Packet f(good.begin(), good.begin() + static_cast<long>(len));
    for (const Packet& seg : split_all(f))
      EXPECT_LE(seg.size(), len);
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    Packet f = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      f[rng() % 80] = static_cast<std::uint8_t>(rng());
    if (rng() % 4 == 0)
      f.resize(rng() % f.size());
    GsoParse r = parse_gso_frame(f);
    if (!r.ok())
      continue;
    for (std::size_t i = 0; i < r.frame.segments; ++i) {
      Packet seg(segment_size(r.frame, i));
      ASSERT_EQ(split_segment(r.frame, i, seg), seg.size());
      if (r.frame.gso) {
        EXPECT_TRUE(checksums_ok(seg)) << round;
      }
    }
  }
}

// ---- coalesce --------------------------------------------------------------------------

std::vector<ConstBytes> views(const std::vector<Packet>& ps) {
  return std::vector<ConstBytes>(ps.begin(), ps.end());
}

Packet flat(const GroCoalescer& c, std::size_t i) {
  Packet f(kVirtioNetHdrSize + 70000);
  f.resize(c.flatten(i, f));
  return f;
}

// Consecutive segments of one TCP flow as a sender's TSO would cut them.
std::vector<Packet> tcp_run(PacketSpec s, std::size_t n, std::size_t seg, std::size_t last = 0) {
  std::vector<Packet> out;
  for (std::size_t i = 0; i < n; ++i) {
    PacketSpec p = s;
    p.payload = (i + 1 == n && last) ? last : seg;
    p.seq = s.seq + static_cast<std::uint32_t>(i * seg);
    p.id = static_cast<std::uint16_t>(s.id + i);
    p.fill = static_cast<std::uint8_t>(s.fill + i * seg);
    out.push_back(build_packet(p));
  }
  return out;
}

void check_round_trip(bool v6) {
  PacketSpec s{.v6 = v6, .tcp_options = testing::timestamp_option(5, 6)};
  std::vector<Packet> in = tcp_run(s, 10, 1368, 500);
  in.back()[l3_of(in.back()) + 13] |= 0x08;  // PSH on the last
  // Fix its checksum after the flag change.
  {
    PacketSpec last = s;
    last.payload = 500;
    last.seq = s.seq + 9 * 1368;
    last.id = static_cast<std::uint16_t>(s.id + 9);
    last.fill = static_cast<std::uint8_t>(9 * 1368);
    last.flags = 0x18;
    in.back() = build_packet(last);
  }
  GroCoalescer c;
  const auto v = views(in);
  ASSERT_EQ(c.coalesce(v), 1u);
  const GroCoalescer::Frame f = c.frame(0);
  EXPECT_EQ(f.packets, 10u);
  const std::size_t l3 = v6 ? 40 : 20;
  EXPECT_EQ(f.header.size(), l3 + 32);
  const VirtioNetHdr h = decode_virtio_net_hdr(f.vnet_hdr.data());
  EXPECT_EQ(h.flags, kVirtioNeedsCsum);
  EXPECT_EQ(h.gso_type, v6 ? kGsoTcpV6 : kGsoTcpV4);
  EXPECT_EQ(h.gso_size, 1368);
  EXPECT_EQ(h.hdr_len, l3 + 32);
  EXPECT_EQ(h.csum_start, l3);
  EXPECT_EQ(h.csum_offset, 16);
  const Packet frame = flat(c, 0);
  const std::size_t total = l3 + 32 + 9 * 1368 + 500;
  ASSERT_EQ(frame.size(), kVirtioNetHdrSize + total);
  const std::uint8_t* ip = frame.data() + kVirtioNetHdrSize;
  if (v6) {
    EXPECT_EQ(load_be16(ip + 4), total - 40);
  } else {
    EXPECT_EQ(load_be16(ip + 2), total);
    std::vector<std::uint8_t> iph(ip, ip + 20);
    EXPECT_EQ(naive_checksum({&iph}), 0);
  }
  EXPECT_TRUE(ip[l3 + 13] & 0x08) << "PSH of the last member";
  // Completing the partial checksum the way the kernel does gives a valid packet.
  Packet whole(ip, ip + total);
  std::vector<std::uint8_t> l4(whole.begin() + static_cast<long>(l3), whole.end());
  store_be16(&whole[l3 + 16], naive_checksum({&l4}));
  EXPECT_TRUE(checksums_ok(whole));
  // And splitting it again gives back exactly the input.
  EXPECT_EQ(split_all(frame), in);
}

TEST(GroCoalesce, TcpV4RoundTripEqualsInput) {
  check_round_trip(false);
}
TEST(GroCoalesce, TcpV6RoundTripEqualsInput) {
  check_round_trip(true);
}

TEST(GroCoalesce, UdpOnlyWhenEnabled) {
  std::vector<Packet> in;
  for (int i = 0; i < 5; ++i) {
    in.push_back(build_packet(PacketSpec{.proto = 17,
                                         .id = static_cast<std::uint16_t>(i),
                                         .payload = i < 4 ? 1200u : 100u,
                                         .fill = static_cast<std::uint8_t>(i)}));
  }
  const auto v = views(in);
  GroCoalescer off;
  EXPECT_EQ(off.coalesce(v), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(off.frame(i).header.size(), 0u);
    EXPECT_EQ(flat(off, i), with_vnet(VirtioNetHdr{}, in[i]));
  }
  GroCoalescer on(GroOptions{.udp = true});
  ASSERT_EQ(on.coalesce(v), 1u);
  const Packet f = flat(on, 0);
  EXPECT_EQ(decode_virtio_net_hdr(f.data()).gso_type, kGsoUdpL4);
  EXPECT_EQ(decode_virtio_net_hdr(f.data()).gso_size, 1200);
  EXPECT_EQ(split_all(f), in);
}

// Frames of a batch, as lists of input packet indexes.
std::vector<std::vector<std::size_t>> grouping(const std::vector<Packet>& in, GroOptions opt = {}) {
  GroCoalescer c(opt);
  const auto v = views(in);
  std::vector<std::vector<std::size_t>> out;
  for (std::size_t i = 0, n = c.coalesce(v); i < n; ++i) {
    std::vector<std::size_t> idx;
    for (ConstBytes s : c.frame(i).payloads) {
      for (std::size_t k = 0; k < in.size(); ++k) {
        const std::uint8_t* b = in[k].data();
        if (s.data() >= b && s.data() < b + in[k].size())
          idx.push_back(k);
      }
    }
    out.push_back(idx);
    // Whatever the grouping, split(frame) gives back exactly its members.
    std::vector<Packet> members;
    for (std::size_t k : idx)
      members.push_back(in[k]);
    EXPECT_EQ(split_all(flat(c, i)), members);
  }
  return out;
}

using G = std::vector<std::vector<std::size_t>>;

TEST(GroCoalesce, NonCoalescableCasesStayApartAndInOrder) {
  PacketSpec s;
  {
    auto in = tcp_run(s, 4, 1000);
    PacketSpec gap = s;
    gap.seq = s.seq + 5000;
    gap.id = 104;
    in.push_back(build_packet(gap));
    EXPECT_EQ(grouping(in), (G{{0, 1, 2, 3}, {4}})) << "sequence gap";
  }
  for (std::uint8_t flag : {0x01, 0x02, 0x04, 0x20, 0x40, 0x80}) {
    auto in = tcp_run(s, 4, 1000);
    PacketSpec odd = s;
    odd.seq = s.seq + 2000;
    odd.id = 102;
    odd.fill = static_cast<std::uint8_t>(2000);
    odd.flags = static_cast<std::uint8_t>(0x10 | flag);
    in[2] = build_packet(odd);
    EXPECT_EQ(grouping(in), (G{{0, 1}, {2}, {3}})) << "flag " << int(flag);
  }
  {
    auto in = tcp_run(s, 4, 1000);
    PacketSpec psh = s;
    psh.seq = s.seq + 1000;
    psh.id = 101;
    psh.fill = static_cast<std::uint8_t>(1000);
    psh.flags = 0x18;
    in[1] = build_packet(psh);
    EXPECT_EQ(grouping(in), (G{{0, 1}, {2, 3}})) << "PSH ends a frame";
  }
  {
    auto in = tcp_run(s, 2, 1000, 0);
    auto more = tcp_run(PacketSpec{.seq = s.seq + 2000, .id = 102, .fill = 208}, 3, 999);
    in.insert(in.end(), more.begin(), more.end());
    EXPECT_EQ(grouping(in), (G{{0, 1, 2}, {3, 4}})) << "a shorter segment is a tail";
  }
  {
    auto a = tcp_run(s, 3, 1000);
    auto b = tcp_run(PacketSpec{.sport = 40001}, 3, 1000);
    auto v6 = tcp_run(PacketSpec{.v6 = true}, 2, 1000);
    std::vector<Packet> in = {a[0], b[0], a[1], v6[0], b[1], a[2], v6[1], b[2]};
    EXPECT_EQ(grouping(in), (G{{0, 2, 5}, {1, 4, 7}, {3, 6}})) << "interleaved flows";
  }
  {
    auto in = tcp_run(PacketSpec{.ip_options = {1, 1, 1, 0}}, 3, 1000);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "IP options";
  }
  {
    auto in = tcp_run(s, 3, 1000);
    PacketSpec ttl = s;
    ttl.seq = s.seq + 1000;
    ttl.id = 101;
    ttl.fill = static_cast<std::uint8_t>(1000);
    ttl.ttl = 63;
    in[1] = build_packet(ttl);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "TTL change";
    ttl.ttl = 64;
    ttl.ack = 78;
    in[1] = build_packet(ttl);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "ACK change";
    ttl.ack = 77;
    ttl.tos = 2;
    in[1] = build_packet(ttl);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "TOS change";
    ttl.tos = 0;
    ttl.window = 1;
    in[1] = build_packet(ttl);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "window change";
    ttl.window = 512;
    ttl.corrupt = true;
    in[1] = build_packet(ttl);
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "bad checksum";
  }
  {
    auto in = tcp_run(s, 3, 1000);
    in[1][6] |= 0x20;  // MF: a fragment (checksums no longer matter)
    EXPECT_EQ(grouping(in), (G{{0}, {1}, {2}})) << "fragment";
  }
  {
    auto in = tcp_run(s, 3, 1000);
    in.push_back({0x45, 0, 0});  // garbage passes through as a plain frame
    EXPECT_EQ(grouping(in), (G{{0, 1, 2}, {3}}));
  }
}

TEST(GroCoalesce, CapsAtSizeAndSegmentLimits) {
  auto in = tcp_run(PacketSpec{}, 100, 1400);
  auto g = grouping(in);
  ASSERT_GT(g.size(), 1u);
  std::size_t seen = 0;
  for (const auto& frame : g) {
    EXPECT_LE(40 + frame.size() * 1400, 65535u);
    for (std::size_t k : frame)
      EXPECT_EQ(k, seen++);
  }
  EXPECT_EQ(seen, 100u);
  EXPECT_EQ(g[0].size(), (65535u - 40) / 1400);
  auto capped = grouping(tcp_run(PacketSpec{}, 10, 100), GroOptions{.max_segments = 4});
  EXPECT_EQ(capped, (G{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9}}));
}

TEST(GroCoalesce, RandomizedSequencesRoundTripPerFlowInOrder) {
  std::mt19937 rng(20261201);
  std::size_t total_in = 0, total_frames = 0;
  for (int round = 0; round < 300; ++round) {
    struct FlowState {
      PacketSpec spec;
      std::uint32_t seq;
      std::uint16_t id;
    };
    std::vector<FlowState> flows;
    for (int k = 0; k < 4; ++k) {
      PacketSpec s;
      s.v6 = rng() % 2;
      s.proto = rng() % 3 == 0 ? 17 : 6;
      s.sport = static_cast<std::uint16_t>(1000 + k);
      if (rng() % 2)
        s.tcp_options = testing::timestamp_option(rng(), rng());
      flows.push_back({s, static_cast<std::uint32_t>(rng()), static_cast<std::uint16_t>(rng())});
    }
    const std::size_t seg = 200 + rng() % 1200;
    std::vector<Packet> in;
    std::vector<int> flow_of;
    const std::size_t n = 1 + rng() % 128;
    for (std::size_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng() % flows.size());
      FlowState& f = flows[static_cast<std::size_t>(k)];
      PacketSpec p = f.spec;
      p.payload = rng() % 5 == 0 ? rng() % (seg + 1) : seg;
      if (rng() % 20 == 0)
        f.seq += 1 + rng() % 5000;  // a gap
      const unsigned r = rng() % 30;
      if (r == 0)
        p.flags |= 0x08;
      else if (r == 1)
        p.flags |= 0x01;
      else if (r == 2)
        p.corrupt = true;
      else if (r == 3)
        p.ttl = 1;
      p.seq = f.seq;
      p.id = f.id++;
      p.fill = static_cast<std::uint8_t>(rng());
      f.seq += static_cast<std::uint32_t>(p.payload);
      in.push_back(build_packet(p));
      flow_of.push_back(k);
    }
    GroCoalescer c(GroOptions{.udp = true});
    const auto v = views(in);
    std::vector<Packet> out;
    std::size_t packets = 0;
    for (std::size_t i = 0, m = c.coalesce(v); i < m; ++i) {
      packets += c.frame(i).packets;
      auto segs = split_all(flat(c, i));
      out.insert(out.end(), segs.begin(), segs.end());
    }
    EXPECT_EQ(packets, in.size());
    total_in += in.size();
    total_frames += c.frame_count();
    ASSERT_EQ(out.size(), in.size()) << round;
    // Per flow, the output is exactly the input in the same order.
    std::map<std::vector<std::uint8_t>, std::vector<Packet>> by_in, by_out;
    auto key = [](const Packet& p) {
      const std::size_t l3 = l3_of(p);
      std::vector<std::uint8_t> k(p.begin() + (l3 == 40 ? 8 : 12),
                                  p.begin() + (l3 == 40 ? 40 : 20));
      k.insert(k.end(), p.begin() + static_cast<long>(l3), p.begin() + static_cast<long>(l3 + 4));
      k.push_back(l3 == 40 ? p[6] : p[9]);
      return k;
    };
    for (const Packet& p : in)
      by_in[key(p)].push_back(p);
    for (const Packet& p : out)
      by_out[key(p)].push_back(p);
    // A corrupt packet passes through untouched; any packet the kernel would have split is
    // rebuilt with its original bytes.
    EXPECT_EQ(by_in, by_out) << "round " << round;
  }
  // The mix must really coalesce (and really keep some apart) to mean anything.
  EXPECT_LT(total_frames, total_in / 2);
  EXPECT_GT(total_frames, total_in / 20);
}

}  // namespace
}  // namespace warren::net
