#pragma once
/// Mesh names (docs/MESH.md, "Names"): `NAME.<mesh domain>` resolves to a node's mesh addresses.
/// I/O-free: the table is built from the roster and `answer()` turns the bytes of one DNS query
/// into the bytes of its response, or says the query is for someone else.
///
///   roster ──NameTable::create──► table (active nodes: name → A, AAAA; address → PTR)
///   datagram / TCP message ──answer──► response bytes   (mesh domain, mesh reverse names,
///                                                         FORMERR, NOTIMP, REFUSED)
///                                   └─► Forward           (every other name: the service sends
///                                                         the query on to the host's resolvers)
///                                   └─► error             (not a query at all: drop it)
///
/// The answering itself is a dns::Zone (dns/zone.h, which has the full table of what is answered
/// how; moved there in issue 14 so that the server's tunnel resolver answers the same way): the
/// node names are its hosts, the mesh prefixes its reverse prefixes, the roster version its SOA
/// serial. Revoked nodes are not answered (NXDOMAIN).
///
/// Thread-compatible value type; `answer()` is const and may run on several threads at once.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "dns/message.h"
#include "dns/zone.h"
#include "mesh/address.h"
#include "mesh/roster.h"
#include "net/ip_address.h"

namespace warren::mesh {

inline constexpr std::string_view kDefaultMeshDomain = "warren";
/// TTL of every answer and of negative answers (the SOA minimum): short, so that a renamed or
/// revoked node stops resolving soon after the roster says so, yet a page load does not ask
/// 50 times.
inline constexpr std::uint32_t kNamesTtl = 30;
/// The DNS limits and types are dns/message.h's (kept under these names for mesh callers).
inline constexpr std::uint16_t kUdpPayloadSize = dns::kUdpPayloadSize;
inline constexpr std::size_t kClassicUdpSize = dns::kClassicUdpSize;
inline constexpr std::size_t kMaxMeshDomainLength = dns::kMaxDomainLength;
using Forward = dns::Forward;
using DnsResponse = dns::Response;
using DnsAnswer = dns::Answer;
using DnsTransport = dns::Transport;
using dns::truncate_response;

/// The mesh domain in canonical form: dns::canonical_domain's rules, errors naming it the
/// "mesh domain".
[[nodiscard]] Result<std::string> canonical_mesh_domain(std::string_view domain);

class NameTable {
 public:
  /// One node's addresses as the table answers them.
  struct Addresses {
    net::IpAddress v4;
    net::IpAddress v6;
    friend bool operator==(const Addresses&, const Addresses&) = default;
  };

  /// The table for the active nodes of `roster` under `domain` (canonical_mesh_domain's rules;
  /// its error when the domain is bad). The roster's address plan decides which reverse names
  /// are the mesh's; the roster's version is the SOA serial (low 32 bits).
  [[nodiscard]] static Result<NameTable> create(const Roster& roster,
                                                std::string_view domain = kDefaultMeshDomain);

  /// The canonical mesh domain (lower case, no final dot).
  const std::string& domain() const { return zone_->domain(); }
  /// The zone that answers (what a DNS service such as runtime/dns_service.h serves).
  const dns::Zone& zone() const { return *zone_; }
  /// Active nodes with a name.
  std::size_t size() const { return by_name_.size(); }
  /// The addresses of node `label` (one label, case-insensitive, without the domain).
  [[nodiscard]] std::optional<Addresses> find(std::string_view label) const;

  /// The response to one DNS query (see the header comment), or Forward. An error only for
  /// bytes no response can be formed for, which the caller drops: EBADMSG when shorter than the
  /// 12-byte header or when the QR bit says it is a response itself (answering responses could
  /// loop two responders forever); ENOMEM if ldns cannot allocate.
  [[nodiscard]] Result<DnsAnswer> answer(ConstBytes query,
                                         DnsTransport transport = DnsTransport::kUdp) const;

 private:
  NameTable() = default;

  std::optional<dns::Zone> zone_;
  std::map<std::string, Addresses, std::less<>> by_name_;  // lower-case label → addresses
};

}  // namespace warren::mesh
