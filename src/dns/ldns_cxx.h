#pragma once
/// ldns (the DNS library src/dns uses), included safely from C++. ldns/common.h defines
/// `bool`, `true` and `false` as macros unless `__bool_true_false_are_defined` is set — which
/// wrecks the C++ standard library headers included after it (seen with clang and libstdc++).
/// <stdbool.h> sets that flag and, in C++, defines nothing else. Include this, never
/// <ldns/ldns.h> directly.

// The order is the point: keep clang-format from sorting these two.
// clang-format off
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers): needed for its flag, see above
#include <ldns/ldns.h>
// clang-format on

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "base/result.h"
#include "dns/message.h"

namespace warren::dns::detail {

// Every ldns object is owned by a unique_ptr with its free function, so an early return on any
// path leaks nothing.
struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RrFree {
  void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
struct WireFree {
  void operator()(std::uint8_t* p) const { std::free(p); }  // ldns allocates with malloc
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

/// The wire form of `p`, with `opcode` in the header (a number: a query may carry any of the
/// 16 values and ldns's enum holds only the six defined ones).
Result<Response> to_wire(const ldns_pkt* p, unsigned opcode);
/// A response skeleton: id, RD and CD as given, QR and RA set.
PktPtr response_header(std::uint16_t id, bool rd, bool cd);
/// Appends `rr` to `section`; ownership passes to the packet.
Status push(ldns_pkt* p, ldns_pkt_section section, RrPtr rr);

}  // namespace warren::dns::detail
