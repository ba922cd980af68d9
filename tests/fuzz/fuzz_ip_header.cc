// IP header parsing of decrypted (attacker-influenced once a peer is compromised) and TUN
// packets: parse_ip_header, ip_destination and udp_ports must agree with each other and never
// claim more bytes than the buffer holds.

#include "fuzz_support.h"
#include "net/ip_header.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> p(data, size);
  auto info = net::parse_ip_header(p);
  auto dst = net::ip_destination(p);
  auto ports = net::udp_ports(p);
  if (info) {
    const std::size_t header = info->family == net::Family::kV4 ? 20 : 40;
    WARREN_FUZZ_CHECK(info->total_length >= header && info->total_length <= size);
    WARREN_FUZZ_CHECK(info->source.family() == info->family);
    WARREN_FUZZ_CHECK(info->destination.family() == info->family);
    WARREN_FUZZ_CHECK((data[0] >> 4) == static_cast<int>(info->family));
    WARREN_FUZZ_CHECK(dst && *dst == info->destination);
  }
  if (ports)
    WARREN_FUZZ_CHECK(size >= 28);
  return 0;
}
