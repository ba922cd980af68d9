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
/// DNS messages are parsed and written by ldns (RFC 1035 wire format, name compression, EDNS);
/// nothing here reads DNS bytes by hand.
///
/// What `answer()` does with a query (QUERY opcode, one question, class IN or ANY):
///   NAME.<domain>, NAME an active node   A / AAAA / ANY: the addresses, AA, TTL kTtl; other
///                                        types: NOERROR with no data and the SOA
///   <domain> itself                      SOA: the SOA; other types: no data and the SOA
///   anything else under <domain>         NXDOMAIN, AA, the SOA (negative TTL kTtl)
///   reverse name of an address inside    PTR / ANY of a node's address: NAME.<domain>;
///   the mesh prefixes (in-addr.arpa,     another address in the prefixes: NXDOMAIN (no SOA:
///   ip6.arpa, full length only)          not cached); other types: no data
///   any other name                       Forward
/// Matching is case-insensitive; the question is echoed as it came (0x20 randomisation works).
/// Revoked nodes are not answered (NXDOMAIN). Class other than IN/ANY in the mesh domain:
/// REFUSED. Another opcode: NOTIMP. Not exactly one question, records in the answer or
/// authority section, more than one OPT record, or bytes ldns cannot parse: FORMERR (header
/// id, opcode and RD echoed).
/// EDNS (RFC 6891): a query with OPT gets OPT back (payload size kUdpPayloadSize, DO copied,
/// options ignored); EDNS version above 0 gets BADVERS. UDP responses are held to 512 bytes,
/// or the query's EDNS payload size capped at kUdpPayloadSize: a longer one is cut to header,
/// question and OPT with TC set (the client retries over TCP, which has no such limit).
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
#include "mesh/address.h"
#include "mesh/roster.h"
#include "net/ip_address.h"

namespace warren::mesh {

inline constexpr std::string_view kDefaultMeshDomain = "warren";
/// TTL of every answer and of negative answers (the SOA minimum): short, so that a renamed or
/// revoked node stops resolving soon after the roster says so, yet a page load does not ask
/// 50 times.
inline constexpr std::uint32_t kNamesTtl = 30;
/// The EDNS payload size the responder advertises and the most it sends over UDP (the DNS Flag
/// Day 2020 value: no IP fragmentation on common paths).
inline constexpr std::uint16_t kUdpPayloadSize = 1232;
/// Without EDNS a UDP response is at most this long (RFC 1035 §4.2.1).
inline constexpr std::size_t kClassicUdpSize = 512;
/// The longest mesh domain, in presentation form without the final dot: a 63-byte node label
/// under it still fits a 255-byte name (1 + 63 + 189 + 2 = 255).
inline constexpr std::size_t kMaxMeshDomainLength = 189;

/// The mesh domain in canonical form: lower case, no final dot. Accepts 1..kMaxMeshDomainLength
/// characters of dot-separated labels of `a-z A-Z 0-9 -` (1..63 each, no '-' at either end) with
/// an optional final dot. Refused (EINVAL, naming the domain and the rule): an empty or too
/// long domain or label, another character, "local" and names under it (multicast DNS, RFC
/// 6762), "arpa" and names under it (reverse and infrastructure zones, RFC 3172).
[[nodiscard]] Result<std::string> canonical_mesh_domain(std::string_view domain);

/// What `answer()` gives back for a name that is not the mesh's: send the query, unchanged, to
/// the upstream resolvers and relay their response.
struct Forward {
  friend bool operator==(const Forward&, const Forward&) = default;
};
using DnsResponse = std::vector<std::uint8_t>;
using DnsAnswer = std::variant<DnsResponse, Forward>;

/// The transport a query came over: it decides the response size limit.
enum class DnsTransport : std::uint8_t {
  kUdp,  ///< 512 bytes, or the EDNS payload size capped at kUdpPayloadSize
  kTcp,  ///< 65,535 bytes (the two-byte length prefix), never truncated
};

/// Cuts a response that is too long for UDP: keeps the header (TC set) and the question, and
/// the OPT record if there was one; drops the answer, authority and additional records
/// (RFC 2181 §9: a resolver then asks again over TCP). EBADMSG if `response` does not parse.
[[nodiscard]] Result<DnsResponse> truncate_response(ConstBytes response);

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
  const std::string& domain() const { return domain_; }
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

  std::string domain_;
  AddressPlan plan_;
  std::uint32_t serial_ = 0;
  std::map<std::string, Addresses, std::less<>> by_name_;  // lower-case label → addresses
  std::map<net::IpAddress, std::string> by_address_;       // v4 and v6 → label
};

}  // namespace warren::mesh
