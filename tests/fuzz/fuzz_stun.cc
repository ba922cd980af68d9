// STUN Binding messages (mesh endpoint discovery) arrive on the WireGuard UDP socket from
// anyone. Invariants: parsing never reads out of bounds or crashes; whatever parses also passes
// the cheap is_stun() classifier, and nothing shaped like a WireGuard message does; a parsed
// address survives build -> parse; and a request and a response built from the input's bytes
// parse back to exactly what went in.

#include "fuzz_support.h"
#include "mesh/stun.h"

using namespace warren;
using namespace warren::mesh;

namespace {

net::IpAddress address_from(fuzz::Cursor& in, bool v6) {
  std::uint8_t b[16];
  for (auto& x : b)
    x = in.u8();
  return *net::IpAddress::from_bytes(b, v6 ? 16 : 4);
}

void check_round_trip(const stun::TransactionId& id, const net::Endpoint& e, bool fingerprint) {
  auto b = stun::build_binding_success(id, e, fingerprint);
  WARREN_FUZZ_CHECK(stun::is_stun(b));
  auto m = stun::parse(b);
  WARREN_FUZZ_CHECK(m && m->fingerprint == fingerprint && m->type == stun::kBindingSuccess);
  auto got = stun::parse_binding_success(b, id);
  WARREN_FUZZ_CHECK(got && got->port == e.port && got->address == e.address.unmapped());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ConstBytes d(data, size);

  // 1. The input as a datagram.
  const bool looks_stun = stun::is_stun(d);
  auto m = stun::parse(d);
  if (m) {
    WARREN_FUZZ_CHECK(looks_stun);
    const auto& addr = m->xor_mapped ? m->xor_mapped : m->mapped;
    if (addr) {
      WARREN_FUZZ_CHECK(addr->port != 0);
      check_round_trip(m->transaction_id, *addr, m->fingerprint);
    }
  } else {
    WARREN_FUZZ_CHECK(!m.error().message.empty());
  }
  if (size >= 32 && data[0] >= 1 && data[0] <= 4 && data[1] == 0 && data[2] == 0 && data[3] == 0)
    WARREN_FUZZ_CHECK(!looks_stun);  // a WireGuard message is never taken for STUN
  if (auto id = stun::parse_binding_request(d)) {
    WARREN_FUZZ_CHECK(m && m->type == stun::kBindingRequest && *id == m->transaction_id);
  }
  if (m && size >= stun::kHeaderSize) {
    if (auto e = stun::parse_binding_success(d, m->transaction_id))
      WARREN_FUZZ_CHECK(m->type == stun::kBindingSuccess && (m->xor_mapped || m->mapped));
  }

  // 2. The input as the fields of messages to build.
  fuzz::Cursor in(data, size);
  stun::TransactionId id{};
  for (auto& x : id)
    x = in.u8();
  const std::uint8_t flags = in.u8();
  net::Endpoint e{address_from(in, flags & 1), in.u16()};
  if (e.port == 0)
    e.port = 1;
  check_round_trip(id, e, flags & 2);
  auto req = stun::build_binding_request(id, flags & 4);
  auto rid = stun::parse_binding_request(req);
  WARREN_FUZZ_CHECK(rid && *rid == id);
  return 0;
}
