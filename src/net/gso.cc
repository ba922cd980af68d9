#include "net/gso.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace warren::net {
namespace {

constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpRst = 0x04;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;
constexpr std::uint8_t kTcpCwr = 0x80;
constexpr std::size_t kTcpCsumOffset = 16;
constexpr std::size_t kUdpCsumOffset = 6;
constexpr std::size_t kMaxIpLength = 65535;
constexpr std::uint32_t kNone = 0xffffffffu;

constexpr bool kLittle = std::endian::native == std::endian::little;

std::uint16_t load_native16(const std::uint8_t* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store_native16(std::uint8_t* p, std::uint16_t v) {
  std::memcpy(p, &v, 2);
}

std::uint16_t bswap16(std::uint16_t v) {
  return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}

// IPv4 header checksum over `len` bytes at `p`, with the checksum field treated as zero.
void fill_ipv4_checksum(std::uint8_t* p, std::size_t len) {
  store_be16(p + 10, 0);
  store_be16(p + 10, static_cast<std::uint16_t>(~checksum_fold(checksum_add({p, len}))));
}

ConstBytes src_addr(const std::uint8_t* p, bool v6) {
  return v6 ? ConstBytes(p + 8, 16) : ConstBytes(p + 12, 4);
}
ConstBytes dst_addr(const std::uint8_t* p, bool v6) {
  return v6 ? ConstBytes(p + 24, 16) : ConstBytes(p + 16, 4);
}

// Fills the L4 checksum of the L4 segment [l3, l3 + l4_len) of `p`.
void fill_l4_checksum(std::uint8_t* p, std::size_t l3, std::size_t l4_len, std::uint8_t proto,
                      bool v6) {
  const std::size_t field = l3 + (proto == kProtoTcp ? kTcpCsumOffset : kUdpCsumOffset);
  store_be16(p + field, 0);
  std::uint64_t sum = pseudo_header_sum(src_addr(p, v6), dst_addr(p, v6), proto,
                                        static_cast<std::uint32_t>(l4_len));
  sum = checksum_add({p + l3, l4_len}, sum);
  std::uint16_t c = static_cast<std::uint16_t>(~checksum_fold(sum));
  if (c == 0)
    c = 0xffff;  // UDP: 0 would mean "no checksum"; for TCP both forms verify
  store_be16(p + field, c);
}

}  // namespace

// ---- virtio header -------------------------------------------------------------------

VirtioNetHdr decode_virtio_net_hdr(const std::uint8_t* p) {
  VirtioNetHdr h;
  h.flags = p[0];
  h.gso_type = p[1];
  h.hdr_len = load_native16(p + 2);
  h.gso_size = load_native16(p + 4);
  h.csum_start = load_native16(p + 6);
  h.csum_offset = load_native16(p + 8);
  return h;
}

void encode_virtio_net_hdr(const VirtioNetHdr& h, std::uint8_t* p) {
  p[0] = h.flags;
  p[1] = h.gso_type;
  store_native16(p + 2, h.hdr_len);
  store_native16(p + 4, h.gso_size);
  store_native16(p + 6, h.csum_start);
  store_native16(p + 8, h.csum_offset);
}

// ---- checksum ------------------------------------------------------------------------
//
// The sum is kept over native-order words (RFC 1071 §2(B): byte order does not matter until
// the end) as 32-bit halves of 64-bit loads added into a 64-bit accumulator, which cannot
// overflow for any packet size.

std::uint64_t checksum_add(ConstBytes data, std::uint64_t sum) {
  const std::uint8_t* p = data.data();
  std::size_t n = data.size();
  std::uint64_t a = 0, b = 0;
  while (n >= 32) {
    std::uint64_t w[4];
    std::memcpy(w, p, 32);
    a += (w[0] & 0xffffffffu) + (w[0] >> 32) + (w[1] & 0xffffffffu) + (w[1] >> 32);
    b += (w[2] & 0xffffffffu) + (w[2] >> 32) + (w[3] & 0xffffffffu) + (w[3] >> 32);
    p += 32;
    n -= 32;
  }
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    a += (w & 0xffffffffu) + (w >> 32);
    p += 8;
    n -= 8;
  }
  while (n >= 2) {
    a += load_native16(p);
    p += 2;
    n -= 2;
  }
  if (n == 1)
    a += kLittle ? p[0] : static_cast<std::uint64_t>(p[0]) << 8;
  // Fold the partial sums before adding so repeated calls never overflow either.
  std::uint64_t s = a + b;
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  sum += s;
  return sum;
}

std::uint64_t checksum_add_be16(std::uint16_t word, std::uint64_t sum) {
  return sum + (kLittle ? bswap16(word) : word);
}

std::uint16_t checksum_fold(std::uint64_t sum) {
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffffffffu) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  const auto v = static_cast<std::uint16_t>(sum);
  return kLittle ? bswap16(v) : v;
}

std::uint64_t pseudo_header_sum(ConstBytes source, ConstBytes destination, std::uint8_t protocol,
                                std::uint32_t l4_length) {
  std::uint64_t sum = checksum_add(source);
  sum = checksum_add(destination, sum);
  sum = checksum_add_be16(protocol, sum);
  sum = checksum_add_be16(static_cast<std::uint16_t>(l4_length >> 16), sum);
  return checksum_add_be16(static_cast<std::uint16_t>(l4_length), sum);
}

// ---- split ---------------------------------------------------------------------------

const char* to_string(GsoError e) {
  switch (e) {
    case GsoError::kNone:
      return "ok";
    case GsoError::kTruncated:
      return "truncated";
    case GsoError::kBadIpHeader:
      return "bad IP header";
    case GsoError::kBadGsoType:
      return "bad gso_type";
    case GsoError::kBadGsoSize:
      return "bad gso_size";
    case GsoError::kBadHdrLen:
      return "bad hdr_len";
    case GsoError::kBadCsumStart:
      return "bad csum_start";
    case GsoError::kBadCsumOffset:
      return "bad csum_offset";
    case GsoError::kBadL4Header:
      return "bad TCP header";
    case GsoError::kTooManySegments:
      return "too many segments";
  }
  return "?";
}

GsoParse parse_gso_frame(ConstBytes frame) {
  GsoParse r;
  auto fail = [&r](GsoError e) {
    r.error = e;
    return r;
  };
  if (frame.size() <= kVirtioNetHdrSize)
    return fail(GsoError::kTruncated);
  GsoFrame& f = r.frame;
  f.vnet = decode_virtio_net_hdr(frame.data());
  f.packet = frame.subspan(kVirtioNetHdrSize);
  const std::uint8_t* p = f.packet.data();
  const std::size_t len = f.packet.size();
  const std::uint8_t type = f.vnet.gso_type & static_cast<std::uint8_t>(~kGsoEcn);
  const bool needs_csum = (f.vnet.flags & kVirtioNeedsCsum) != 0;

  if (type == kGsoNone) {
    if (needs_csum) {
      if (f.vnet.csum_start >= len)
        return fail(GsoError::kBadCsumStart);
      if (std::size_t{f.vnet.csum_start} + f.vnet.csum_offset + 2 > len)
        return fail(GsoError::kBadCsumOffset);
    }
    if (f.vnet.hdr_len > len)
      return fail(GsoError::kBadHdrLen);
    f.segments = 1;
    return r;
  }
  if (type != kGsoTcpV4 && type != kGsoTcpV6 && type != kGsoUdpL4)
    return fail(GsoError::kBadGsoType);
  if (f.vnet.gso_size == 0)
    return fail(GsoError::kBadGsoSize);
  if (len > kMaxIpLength)
    return fail(GsoError::kBadIpHeader);

  const unsigned version = p[0] >> 4;
  if (version == 4) {
    if (len < 20)
      return fail(GsoError::kTruncated);
    f.l3_len = (p[0] & 0x0fu) * 4u;
    if (f.l3_len < 20)
      return fail(GsoError::kBadIpHeader);
    if (f.l3_len > len)
      return fail(GsoError::kTruncated);
    if ((load_be16(p + 6) & 0x3fff) != 0)  // MF or a fragment offset
      return fail(GsoError::kBadIpHeader);
    f.protocol = p[9];
  } else if (version == 6) {
    if (len < 40)
      return fail(GsoError::kTruncated);
    f.l3_len = 40;
    f.v6 = true;
    f.protocol = p[6];
  } else {
    return fail(GsoError::kBadIpHeader);
  }
  const bool want_tcp = type != kGsoUdpL4;
  if (want_tcp != (f.protocol == kProtoTcp) || (!want_tcp && f.protocol != kProtoUdp))
    return fail(GsoError::kBadGsoType);
  if ((type == kGsoTcpV4 && f.v6) || (type == kGsoTcpV6 && !f.v6))
    return fail(GsoError::kBadGsoType);
  if (f.vnet.csum_start != f.l3_len)
    return fail(GsoError::kBadCsumStart);
  if (needs_csum && f.vnet.csum_offset != (want_tcp ? kTcpCsumOffset : kUdpCsumOffset))
    return fail(GsoError::kBadCsumOffset);

  if (want_tcp) {
    if (len < f.l3_len + 20)
      return fail(GsoError::kTruncated);
    const std::size_t doff = (p[f.l3_len + 12] >> 4) * 4u;
    if (doff < 20)
      return fail(GsoError::kBadL4Header);
    if (f.l3_len + doff > len)
      return fail(GsoError::kTruncated);
    f.header_len = f.l3_len + doff;
  } else {
    if (len < f.l3_len + 8)
      return fail(GsoError::kTruncated);
    f.header_len = f.l3_len + 8;
  }
  if (f.vnet.hdr_len > len)
    return fail(GsoError::kBadHdrLen);
  const std::size_t payload = len - f.header_len;
  f.segments = payload == 0 ? 1 : (payload + f.vnet.gso_size - 1) / f.vnet.gso_size;
  if (f.segments > kMaxGsoSegments)
    return fail(GsoError::kTooManySegments);
  f.gso = true;
  return r;
}

std::size_t segment_size(const GsoFrame& f, std::size_t index) {
  if (!f.gso)
    return f.packet.size();
  const std::size_t payload = f.packet.size() - f.header_len;
  const std::size_t start = index * f.vnet.gso_size;
  if (start >= payload)
    return f.header_len;
  return f.header_len + std::min<std::size_t>(f.vnet.gso_size, payload - start);
}

std::size_t split_segment(const GsoFrame& f, std::size_t index, Bytes out) {
  if (index >= f.segments)
    return 0;
  const std::size_t size = segment_size(f, index);
  if (out.size() < size)
    return 0;
  std::uint8_t* o = out.data();
  const std::uint8_t* p = f.packet.data();
  if (!f.gso) {
    std::memcpy(o, p, size);
    if (f.vnet.flags & kVirtioNeedsCsum) {
      // The field holds the pseudo-header sum; the checksum covers [csum_start, end).
      const std::size_t field = std::size_t{f.vnet.csum_start} + f.vnet.csum_offset;
      std::uint16_t c = static_cast<std::uint16_t>(
          ~checksum_fold(checksum_add({o + f.vnet.csum_start, size - f.vnet.csum_start})));
      if (c == 0)
        c = 0xffff;
      store_be16(o + field, c);
    }
    return size;
  }
  const std::size_t seg_payload = size - f.header_len;
  std::memcpy(o, p, f.header_len);
  std::memcpy(o + f.header_len, p + f.header_len + index * f.vnet.gso_size, seg_payload);
  const bool first = index == 0;
  const bool last = index + 1 == f.segments;
  if (!f.v6) {
    store_be16(o + 2, static_cast<std::uint16_t>(size));
    store_be16(o + 4, static_cast<std::uint16_t>(load_be16(p + 4) + index));
    fill_ipv4_checksum(o, f.l3_len);
  } else {
    store_be16(o + 4, static_cast<std::uint16_t>(size - 40));
  }
  std::uint8_t* l4 = o + f.l3_len;
  if (f.protocol == kProtoTcp) {
    store_be32(l4 + 4,
               static_cast<std::uint32_t>(load_be32(p + f.l3_len + 4) + index * f.vnet.gso_size));
    if (!last)
      l4[13] &= static_cast<std::uint8_t>(~(kTcpFin | kTcpPsh));
    if (!first)
      l4[13] &= static_cast<std::uint8_t>(~kTcpCwr);
  } else {
    store_be16(l4 + 4, static_cast<std::uint16_t>(size - f.l3_len));
  }
  fill_l4_checksum(o, f.l3_len, size - f.l3_len, f.protocol, f.v6);
  return size;
}

// ---- coalesce ------------------------------------------------------------------------

namespace {

// What coalescing needs to know about one packet.
struct Classified {
  bool flow = false;       // TCP/UDP with a parseable 5-tuple (takes part in flow tracking)
  bool candidate = false;  // may join or start a super-packet
  bool v6 = false;
  std::uint8_t protocol = 0;
  std::size_t l3 = 0;
  std::size_t hdr = 0;
  std::size_t payload = 0;
  std::uint32_t seq = 0;
  std::uint64_t hash = 0;
};

std::uint64_t fnv(const std::uint8_t* p, std::size_t n, std::uint64_t h) {
  for (std::size_t i = 0; i < n; ++i)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

Classified classify(ConstBytes pkt, const GroOptions& opt) {
  Classified c;
  const std::uint8_t* p = pkt.data();
  const std::size_t len = pkt.size();
  if (len < 20)
    return c;
  const unsigned version = p[0] >> 4;
  bool simple_ip = true;  // no options, no fragment, lengths agree
  if (version == 4) {
    c.l3 = (p[0] & 0x0fu) * 4u;
    if (c.l3 < 20 || c.l3 > len || (load_be16(p + 6) & 0x1fff) != 0)
      return c;  // a later fragment has no ports to key on
    c.protocol = p[9];
    simple_ip = c.l3 == 20 && load_be16(p + 2) == len && (p[6] & 0x20) == 0;
  } else if (version == 6) {
    if (len < 40)
      return c;
    c.l3 = 40;
    c.v6 = true;
    c.protocol = p[6];
    simple_ip = 40u + load_be16(p + 4) == len;
  } else {
    return c;
  }
  if (c.protocol != kProtoTcp && c.protocol != kProtoUdp)
    return c;
  if (len < c.l3 + (c.protocol == kProtoTcp ? 20u : 8u))
    return c;
  c.flow = true;
  std::uint64_t h = 1469598103934665603ull ^ c.protocol;
  h = c.v6 ? fnv(p + 8, 32, h) : fnv(p + 12, 8, h);
  c.hash = fnv(p + c.l3, 4, h);
  if (!simple_ip)
    return c;
  const std::uint8_t* l4 = p + c.l3;
  if (c.protocol == kProtoTcp) {
    if (!opt.tcp)
      return c;
    const std::size_t doff = (l4[12] >> 4) * 4u;
    if (doff < 20 || c.l3 + doff > len)
      return c;
    const std::uint8_t flags = l4[13];
    if ((flags & ~(kTcpAck | kTcpPsh)) != 0 || (flags & kTcpAck) == 0)
      return c;  // SYN/FIN/RST/URG/ECE/CWR are left alone
    c.hdr = c.l3 + doff;
    c.seq = load_be32(l4 + 4);
  } else {
    if (!opt.udp)
      return c;
    if (load_be16(l4 + 4) != len - c.l3 || (!c.v6 && load_be16(l4 + 6) == 0))
      return c;  // a bad length, or an IPv4 datagram without checksum
    c.hdr = c.l3 + 8;
  }
  c.payload = len - c.hdr;
  if (c.payload == 0 || c.payload > 0xffff)
    return c;
  const std::uint64_t sum = pseudo_header_sum(src_addr(p, c.v6), dst_addr(p, c.v6), c.protocol,
                                              static_cast<std::uint32_t>(len - c.l3));
  if (checksum_fold(checksum_add({l4, len - c.l3}, sum)) != 0xffff)
    return c;  // a corrupt packet goes out alone, for the kernel to drop
  c.candidate = true;
  return c;
}

bool same_flow(ConstBytes a, ConstBytes b, const Classified& c) {
  // `a` is a packet already classified as a flow with the same hash; compare the 5-tuple.
  if ((a[0] >> 4) != (b[0] >> 4))
    return false;
  const std::uint8_t* x = a.data();
  const std::uint8_t* y = b.data();
  if (c.v6) {
    if (x[6] != y[6] || std::memcmp(x + 8, y + 8, 32) != 0)
      return false;
  } else {
    if ((x[0] & 0x0f) != (y[0] & 0x0f) || x[9] != y[9] || std::memcmp(x + 12, y + 12, 8) != 0)
      return false;
  }
  return std::memcmp(x + c.l3, y + c.l3, 4) == 0;
}

}  // namespace

std::size_t GroCoalescer::Frame::size() const {
  std::size_t n = header.size();
  for (ConstBytes s : payloads)
    n += s.size();
  return n;
}

GroCoalescer::GroCoalescer(GroOptions options) : options_(options) {
  options_.max_size = std::min(options_.max_size, kMaxIpLength);
  options_.max_segments = std::max<std::size_t>(options_.max_segments, 1);
}

std::size_t GroCoalescer::lookup(std::uint64_t hash, ConstBytes p, std::size_t l3) {
  Classified key;
  key.v6 = (p[0] >> 4) == 6;
  key.l3 = l3;
  std::size_t slot = hash & (kTableSize - 1);
  for (std::size_t probes = 0; probes < kTableSize; ++probes) {
    if (table_gen_[slot] != generation_)
      return slot;
    const Group& g = groups_[table_[slot] - 1];
    if (same_flow(packets_[g.head], p, key))
      return slot;
    slot = (slot + 1) & (kTableSize - 1);
  }
  return kTableSize;
}

bool GroCoalescer::try_append(Group& g, std::size_t index, ConstBytes p, std::size_t hdr_len,
                              std::size_t payload, std::uint32_t seq) {
  if (g.closed || g.protocol == 0 || g.count >= options_.max_segments ||
      g.total + payload > options_.max_size || payload > g.seg_size || hdr_len != g.hdr_len)
    return false;
  const std::uint8_t* h = packets_[g.head].data();
  const std::uint8_t* x = p.data();
  if (g.v6) {
    if (std::memcmp(h, x, 4) != 0 || h[7] != x[7])  // traffic class, flow label, hop limit
      return false;
  } else {
    if (h[1] != x[1] || (h[6] & 0x40) != (x[6] & 0x40) || h[8] != x[8])  // TOS, DF, TTL
      return false;
  }
  const std::size_t l3 = g.l3_len;
  if (g.protocol == kProtoTcp) {
    if (seq != g.next_seq)
      return false;
    // ACK number, data offset, window and options must be equal; flags are ACK (checked by
    // classify) plus PSH only on a last member, which closes the group below.
    if (std::memcmp(h + l3 + 8, x + l3 + 8, 5) != 0 || std::memcmp(h + l3 + 14, x + l3 + 14, 2) ||
        std::memcmp(h + l3 + 20, x + l3 + 20, hdr_len - l3 - 20) != 0)
      return false;
  }
  next_[g.tail] = static_cast<std::uint32_t>(index);
  g.tail = static_cast<std::uint32_t>(index);
  ++g.count;
  g.total += static_cast<std::uint32_t>(payload);
  g.next_seq = seq + static_cast<std::uint32_t>(payload);
  if (payload < g.seg_size || (g.protocol == kProtoTcp && (x[l3 + 13] & kTcpPsh)))
    g.closed = true;
  return true;
}

std::size_t GroCoalescer::coalesce(std::span<const ConstBytes> packets) {
  packets_ = packets;
  groups_.clear();
  spans_.clear();
  next_.assign(packets.size(), kNone);
  if (++generation_ == 0) {
    table_gen_.fill(0);
    generation_ = 1;
  }
  std::size_t flows = 0;
  for (std::size_t i = 0; i < packets.size(); ++i) {
    const ConstBytes p = packets[i];
    const Classified c = classify(p, options_);
    std::size_t slot = kTableSize;
    Group* open = nullptr;
    if (c.flow) {
      slot = lookup(c.hash, p, c.l3);
      if (slot < kTableSize && table_gen_[slot] == generation_)
        open = &groups_[table_[slot] - 1];
    }
    if (c.candidate && open && try_append(*open, i, p, c.hdr, c.payload, c.seq))
      continue;
    if (open)
      open->closed = true;  // nothing later of this flow may join an earlier frame
    Group g;
    g.head = g.tail = static_cast<std::uint32_t>(i);
    g.total = static_cast<std::uint32_t>(p.size());
    if (c.candidate) {
      g.protocol = c.protocol;
      g.v6 = c.v6;
      g.l3_len = static_cast<std::uint16_t>(c.l3);
      g.hdr_len = static_cast<std::uint16_t>(c.hdr);
      g.seg_size = static_cast<std::uint16_t>(c.payload);
      g.next_seq = c.seq + static_cast<std::uint32_t>(c.payload);
      g.closed = c.protocol == kProtoTcp && (p[c.l3 + 13] & kTcpPsh);
    }
    groups_.push_back(g);
    if (c.flow && slot < kTableSize) {
      if (table_gen_[slot] == generation_ || flows < kTableSize / 2) {
        if (table_gen_[slot] != generation_)
          ++flows;
        table_gen_[slot] = generation_;
        table_[slot] = static_cast<std::uint32_t>(groups_.size());
      }
    }
  }
  spans_.reserve(packets.size());
  for (Group& g : groups_)
    finish(g);
  return groups_.size();
}

void GroCoalescer::finish(Group& g) {
  g.spans_begin = static_cast<std::uint32_t>(spans_.size());
  if (g.count == 1) {
    spans_.push_back(packets_[g.head]);
    g.protocol = 0;  // marks a plain frame for frame()
    return;
  }
  const ConstBytes head = packets_[g.head];
  std::memcpy(g.header.data(), head.data(), g.hdr_len);
  for (std::uint32_t i = g.head; i != kNone; i = next_[i])
    spans_.push_back(packets_[i].subspan(g.hdr_len));
  std::uint8_t* h = g.header.data();
  const std::size_t total = g.total;
  if (g.v6) {
    store_be16(h + 4, static_cast<std::uint16_t>(total - 40));
  } else {
    store_be16(h + 2, static_cast<std::uint16_t>(total));
    fill_ipv4_checksum(h, g.l3_len);
  }
  std::uint8_t* l4 = h + g.l3_len;
  const bool tcp = g.protocol == kProtoTcp;
  if (tcp) {
    if (packets_[g.tail][g.l3_len + 13] & kTcpPsh)
      l4[13] |= kTcpPsh;
  } else {
    store_be16(l4 + 4, static_cast<std::uint16_t>(total - g.l3_len));
  }
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum, not complemented.
  const std::uint64_t sum = pseudo_header_sum(src_addr(h, g.v6), dst_addr(h, g.v6), g.protocol,
                                              static_cast<std::uint32_t>(total - g.l3_len));
  store_be16(l4 + (tcp ? kTcpCsumOffset : kUdpCsumOffset), checksum_fold(sum));
  VirtioNetHdr v;
  v.flags = kVirtioNeedsCsum;
  v.gso_type = tcp ? (g.v6 ? kGsoTcpV6 : kGsoTcpV4) : kGsoUdpL4;
  v.hdr_len = g.hdr_len;
  v.gso_size = g.seg_size;
  v.csum_start = g.l3_len;
  v.csum_offset = static_cast<std::uint16_t>(tcp ? kTcpCsumOffset : kUdpCsumOffset);
  encode_virtio_net_hdr(v, g.vnet.data());
}

GroCoalescer::Frame GroCoalescer::frame(std::size_t i) const {
  const Group& g = groups_[i];
  Frame f;
  f.vnet_hdr = ConstBytes(g.vnet.data(), kVirtioNetHdrSize);
  f.header = g.protocol == 0 ? ConstBytes() : ConstBytes(g.header.data(), g.hdr_len);
  f.payloads = std::span<const ConstBytes>(spans_.data() + g.spans_begin, g.count);
  f.packets = g.count;
  return f;
}

std::size_t GroCoalescer::flatten(std::size_t i, Bytes out) const {
  const Frame f = frame(i);
  const std::size_t need = kVirtioNetHdrSize + f.size();
  if (out.size() < need)
    return 0;
  std::uint8_t* o = out.data();
  std::memcpy(o, f.vnet_hdr.data(), kVirtioNetHdrSize);
  o += kVirtioNetHdrSize;
  if (!f.header.empty())
    std::memcpy(o, f.header.data(), f.header.size());
  o += f.header.size();
  for (ConstBytes s : f.payloads) {
    if (s.empty())
      continue;  // an empty packet's span may have no storage at all (memcpy from null is UB)
    std::memcpy(o, s.data(), s.size());
    o += s.size();
  }
  return need;
}

}  // namespace warren::net
