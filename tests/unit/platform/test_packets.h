#pragma once
// Builds minimal IPv4/IPv6 packets for tests (header fields only; no checksums needed by the
// fakes or the tunnel).

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "net/ip_address.h"

namespace warren::testing {

/// Receive buffers for batch reads: storage, spans over it, sizes and paths.
struct Buffers {
  explicit Buffers(std::size_t n, std::size_t size = 2048)
      : storage(n, std::vector<std::uint8_t>(size)) {
    for (auto& s : storage)
      views.emplace_back(s);
    sizes.resize(n);
    paths.resize(n);
  }
  std::vector<std::vector<std::uint8_t>> storage;
  std::vector<Bytes> views;
  std::vector<std::size_t> sizes;
  std::vector<net::Path> paths;
};

inline std::vector<std::uint8_t> make_ip_packet(const net::IpAddress& src,
                                                const net::IpAddress& dst, std::size_t payload_len,
                                                std::uint8_t fill = 0xab) {
  std::vector<std::uint8_t> p;
  if (src.is_v4()) {
    p.assign(20 + payload_len, fill);
    p[0] = 0x45;
    p[1] = 0;
    store_be16(&p[2], static_cast<std::uint16_t>(p.size()));
    store_be16(&p[4], 0);
    store_be16(&p[6], 0);
    p[8] = 64;
    p[9] = 17;
    store_be16(&p[10], 0);
    std::copy(src.data(), src.data() + 4, &p[12]);
    std::copy(dst.data(), dst.data() + 4, &p[16]);
  } else {
    p.assign(40 + payload_len, fill);
    p[0] = 0x60;
    p[1] = p[2] = p[3] = 0;
    store_be16(&p[4], static_cast<std::uint16_t>(payload_len));
    p[6] = 17;
    p[7] = 64;
    std::copy(src.data(), src.data() + 16, &p[8]);
    std::copy(dst.data(), dst.data() + 16, &p[24]);
  }
  return p;
}

}  // namespace warren::testing
