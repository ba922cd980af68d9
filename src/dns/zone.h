#pragma once
/// A local zone: `NAME.<domain>` → addresses, answered from memory. The mesh names responder
/// (mesh/names.h, names from the roster) and the server's tunnel resolver (runtime/dns_service.h,
/// names from the registry) are both a Zone. I/O-free.
///
///   hosts (label → addresses) + reverse prefixes ──Zone::create──► zone
///   datagram / TCP message ──answer──► response bytes   (the domain, reverse names inside the
///                                                         prefixes, FORMERR, NOTIMP, REFUSED)
///                                   └─► Forward           (every other name: the caller sends
///                                                         the query on to its upstreams)
///                                   └─► error             (not a query at all: drop it)
///
/// What `answer()` does with a query (QUERY opcode, one question, class IN or ANY):
///   NAME.<domain>, NAME a host          A / AAAA / ANY: its addresses of that family, AA, TTL
///                                        ttl; other types (or no address of the family):
///                                        NOERROR with no data and the SOA
///   <domain> itself                      SOA: the SOA; other types: no data and the SOA
///   anything else under <domain>         NXDOMAIN, AA, the SOA (negative TTL = ttl)
///   reverse name of an address inside    PTR / ANY of a host's address: NAME.<domain>;
///   a reverse prefix (in-addr.arpa,      another address in the prefixes: NXDOMAIN (no SOA:
///   ip6.arpa, full length only)          not cached); other types: no data
///   any other name                       Forward
/// Matching is case-insensitive; the question is echoed as it came (0x20 randomisation works).
/// Class other than IN/ANY in the zone: REFUSED. Another opcode: NOTIMP. Not exactly one
/// question, records in the answer or authority section, more than one OPT record, or bytes
/// ldns cannot parse: FORMERR (header id, opcode and RD echoed).
/// EDNS (RFC 6891): a query with OPT gets OPT back (payload size kUdpPayloadSize, DO copied,
/// options ignored); EDNS version above 0 gets BADVERS. UDP responses are held to the
/// query's limit (dns/message.h): a longer one is cut with TC set.
///
/// Thread-compatible value type; `answer()` is const and may run on several threads at once.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "dns/message.h"
#include "net/ip_address.h"

namespace warren::dns {

class Zone {
 public:
  struct Host {
    std::string label;  ///< one DNS label (letters, digits, '-', '_'), any case
    std::vector<net::IpAddress> addresses;
  };
  struct Options {
    std::string domain;                         ///< canonical_domain's rules
    std::string_view what = "domain";           ///< names the domain in errors
    std::uint32_t serial = 0;                   ///< the SOA serial
    std::uint32_t ttl = 30;                     ///< every answer's TTL and the negative TTL
    std::vector<net::Prefix> reverse_prefixes;  ///< reverse names inside are answered here
  };

  /// The zone for `hosts`. Errors (EINVAL): a bad domain (canonical_domain's message), a
  /// label that is not one DNS label, a label given twice (case-insensitively).
  [[nodiscard]] static Result<Zone> create(Options options, std::vector<Host> hosts);

  /// The canonical domain (lower case, no final dot).
  const std::string& domain() const { return domain_; }
  std::size_t size() const { return by_name_.size(); }
  /// The addresses of host `label` (case-insensitive), or nullopt.
  [[nodiscard]] const std::vector<net::IpAddress>* find(std::string_view label) const;

  /// The response to one DNS query (see the header comment), or Forward. An error only for
  /// bytes no response can be formed for, which the caller drops: EBADMSG when shorter than the
  /// 12-byte header or when the QR bit says it is a response itself (answering responses could
  /// loop two responders forever); ENOMEM if ldns cannot allocate.
  [[nodiscard]] Result<Answer> answer(ConstBytes query,
                                      Transport transport = Transport::kUdp) const;

 private:
  Zone() = default;

  std::string domain_;
  std::uint32_t serial_ = 0;
  std::uint32_t ttl_ = 30;
  std::vector<net::Prefix> reverse_;
  std::map<std::string, std::vector<net::IpAddress>, std::less<>> by_name_;  // lower-case label
  std::map<net::IpAddress, std::string> by_address_;                         // → label
};

/// Whether `label` is one DNS label a Zone accepts as a host name: 1..63 of letters, digits,
/// '-' and '_' ('_' is common in client names; DNS itself allows any byte).
[[nodiscard]] bool valid_host_label(std::string_view label);

}  // namespace warren::dns
