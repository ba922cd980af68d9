#pragma once
// Test helper: builds TCP/UDP over IPv4/IPv6 packets with correct checksums, and checks them,
// using a deliberately naive checksum (16-bit big-endian words, one at a time) that shares no
// code with net/gso.cc.

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/bytes.h"

namespace warren::testing {

/// RFC 1071, the slow obvious way: the complemented sum of big-endian 16-bit words.
inline std::uint16_t naive_checksum(const std::vector<const std::vector<std::uint8_t>*>& parts) {
  std::uint32_t sum = 0;
  for (const auto* part : parts) {
    for (std::size_t i = 0; i < part->size(); i += 2) {
      std::uint32_t w = static_cast<std::uint32_t>((*part)[i]) << 8;
      if (i + 1 < part->size())
        w |= (*part)[i + 1];
      sum += w;
      while (sum > 0xffff)
        sum = (sum & 0xffff) + (sum >> 16);
    }
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

inline std::vector<std::uint8_t> pseudo_header(const std::uint8_t* ip, bool v6, std::uint8_t proto,
                                               std::size_t l4_len) {
  std::vector<std::uint8_t> ph;
  if (v6) {
    ph.assign(ip + 8, ip + 40);
    for (int s = 24; s >= 0; s -= 8)
      ph.push_back(static_cast<std::uint8_t>(l4_len >> s));
    ph.insert(ph.end(), {0, 0, 0, proto});
  } else {
    ph.assign(ip + 12, ip + 20);
    ph.insert(ph.end(), {0, proto, static_cast<std::uint8_t>(l4_len >> 8),
                         static_cast<std::uint8_t>(l4_len)});
  }
  return ph;
}

/// True when the IPv4 header checksum (if IPv4) and the TCP/UDP checksum of `p` verify.
inline bool checksums_ok(ConstBytes pkt) {
  std::vector<std::uint8_t> p(pkt.begin(), pkt.end());
  const bool v6 = (p[0] >> 4) == 6;
  std::size_t l3 = v6 ? 40 : (p[0] & 0x0f) * 4u;
  if (!v6) {
    std::vector<std::uint8_t> h(p.begin(), p.begin() + static_cast<long>(l3));
    if (naive_checksum({&h}) != 0)
      return false;
  }
  const std::uint8_t proto = v6 ? p[6] : p[9];
  std::vector<std::uint8_t> l4(p.begin() + static_cast<long>(l3), p.end());
  std::vector<std::uint8_t> ph = pseudo_header(p.data(), v6, proto, l4.size());
  return naive_checksum({&ph, &l4}) == 0;
}

struct PacketSpec {
  bool v6 = false;
  std::uint8_t proto = 6;  // 6 TCP, 17 UDP
  std::uint8_t src_last = 1, dst_last = 2;
  std::uint16_t sport = 40000, dport = 5201;
  std::uint32_t seq = 1000, ack = 77;
  std::uint8_t flags = 0x10;  // ACK
  std::uint16_t window = 512;
  std::vector<std::uint8_t> tcp_options;  // a multiple of 4 bytes
  std::vector<std::uint8_t> ip_options;   // IPv4 only, a multiple of 4 bytes
  std::uint16_t id = 100;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  bool df = true;
  std::size_t payload = 1000;
  std::uint8_t fill = 0;  // payload byte i is fill + i
  bool corrupt = false;   // flip the L4 checksum after computing it
};

/// A packet as the spec says, all checksums valid (unless corrupt).
inline std::vector<std::uint8_t> build_packet(const PacketSpec& s) {
  const std::size_t l3 = s.v6 ? 40 : 20 + s.ip_options.size();
  const std::size_t l4h = s.proto == 6 ? 20 + s.tcp_options.size() : 8;
  std::vector<std::uint8_t> p(l3 + l4h + s.payload, 0);
  std::uint8_t* ip = p.data();
  if (s.v6) {
    ip[0] = static_cast<std::uint8_t>(0x60 | (s.tos >> 4));
    ip[1] = static_cast<std::uint8_t>(s.tos << 4);
    store_be16(ip + 4, static_cast<std::uint16_t>(p.size() - 40));
    ip[6] = s.proto;
    ip[7] = s.ttl;
    ip[8] = 0xfd;
    ip[23] = s.src_last;
    ip[24] = 0xfd;
    ip[39] = s.dst_last;
  } else {
    ip[0] = static_cast<std::uint8_t>(0x40 | (l3 / 4));
    ip[1] = s.tos;
    store_be16(ip + 2, static_cast<std::uint16_t>(p.size()));
    store_be16(ip + 4, s.id);
    ip[6] = s.df ? 0x40 : 0;
    ip[8] = s.ttl;
    ip[9] = s.proto;
    ip[12] = 10;
    ip[15] = s.src_last;
    ip[16] = 10;
    ip[19] = s.dst_last;
    std::copy(s.ip_options.begin(), s.ip_options.end(), ip + 20);
    std::vector<std::uint8_t> h(p.begin(), p.begin() + static_cast<long>(l3));
    store_be16(ip + 10, naive_checksum({&h}));
  }
  std::uint8_t* l4 = ip + l3;
  store_be16(l4, s.sport);
  store_be16(l4 + 2, s.dport);
  std::size_t field;
  if (s.proto == 6) {
    store_be32(l4 + 4, s.seq);
    store_be32(l4 + 8, s.ack);
    l4[12] = static_cast<std::uint8_t>((l4h / 4) << 4);
    l4[13] = s.flags;
    store_be16(l4 + 14, s.window);
    std::copy(s.tcp_options.begin(), s.tcp_options.end(), l4 + 20);
    field = 16;
  } else {
    store_be16(l4 + 4, static_cast<std::uint16_t>(l4h + s.payload));
    field = 6;
  }
  for (std::size_t i = 0; i < s.payload; ++i)
    l4[l4h + i] = static_cast<std::uint8_t>(s.fill + i);
  std::vector<std::uint8_t> seg(p.begin() + static_cast<long>(l3), p.end());
  std::vector<std::uint8_t> ph = pseudo_header(ip, s.v6, s.proto, seg.size());
  std::uint16_t c = naive_checksum({&ph, &seg});
  if (c == 0)
    c = 0xffff;  // the form net/gso writes (and the one UDP requires)
  if (s.corrupt)
    c ^= 0x5a5a;
  store_be16(l4 + field, c);
  return p;
}

/// Timestamps option (NOP, NOP, TS) as Linux sends on every segment.
inline std::vector<std::uint8_t> timestamp_option(std::uint32_t tsval, std::uint32_t tsecr) {
  std::vector<std::uint8_t> o = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  store_be32(&o[4], tsval);
  store_be32(&o[8], tsecr);
  return o;
}

}  // namespace warren::testing
