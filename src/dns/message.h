#pragma once
/// DNS messages, the parts every warren DNS responder shares (the mesh names responder,
/// mesh/names.h, and the server's tunnel resolver, dns/forwarder.h + runtime/dns_service.h).
///
///   query bytes ──parse_question──► Question (id, name, type, class, EDNS size)
///   response bytes ──fit_response──► the same, or cut to header + question + OPT with TC set
///   query bytes ──error_response──► FORMERR / SERVFAIL / REFUSED / NOTIMP for it
///
/// DNS messages are parsed and written by ldns (RFC 1035 wire format, name compression, EDNS);
/// nothing here reads DNS bytes by hand except the fixed 12-byte header, through ldns's own
/// wire macros. I/O-free; every function is thread-safe.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace warren::dns {

/// The EDNS payload size warren's responders advertise and the most they send over UDP (the
/// DNS Flag Day 2020 value: no IP fragmentation on common paths).
inline constexpr std::uint16_t kUdpPayloadSize = 1232;
/// Without EDNS a UDP response is at most this long (RFC 1035 §4.2.1).
inline constexpr std::size_t kClassicUdpSize = 512;
/// Over TCP a message is prefixed by a two-byte length.
inline constexpr std::size_t kMaxTcpMessage = 65535;
/// The longest local domain, in presentation form without the final dot: a 63-byte host label
/// under it still fits a 255-byte name (1 + 63 + 189 + 2 = 255).
inline constexpr std::size_t kMaxDomainLength = 189;

/// Response codes used here (RFC 1035 §4.1.1).
enum class Rcode : std::uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

/// What a local zone gives back for a name that is not its own: send the query to the
/// upstream resolvers and relay their response.
struct Forward {
  friend bool operator==(const Forward&, const Forward&) = default;
};
using Response = std::vector<std::uint8_t>;
using Answer = std::variant<Response, Forward>;

/// The transport a query came over: it decides the response size limit.
enum class Transport : std::uint8_t {
  kUdp,  ///< 512 bytes, or the EDNS payload size capped at kUdpPayloadSize
  kTcp,  ///< 65,535 bytes (the two-byte length prefix), never truncated
};

/// `domain` in canonical form: lower case, no final dot. Accepts 1..kMaxDomainLength
/// characters of dot-separated labels of `a-z A-Z 0-9 -` (1..63 each, no '-' at either end) with
/// an optional final dot. Refused (EINVAL, naming `what` ("mesh domain", "dns.domain"), the
/// domain and the rule): an empty or too long domain or label, another character, "local" and
/// names under it (multicast DNS, RFC 6762), "arpa" and names under it (reverse and
/// infrastructure zones, RFC 3172).
[[nodiscard]] Result<std::string> canonical_domain(std::string_view domain,
                                                   std::string_view what = "domain");

/// The one question of a query, as the forwarder keys it.
struct Question {
  std::uint16_t id = 0;
  std::string name;  ///< canonical presentation form: lower case, final dot ("a.example.")
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  bool recursion_desired = false;
  /// The most this query's asker takes over UDP: 512, or its EDNS payload size (at least 512)
  /// capped at kUdpPayloadSize.
  std::size_t udp_limit = kClassicUdpSize;
  friend bool operator==(const Question&, const Question&) = default;
};

/// The question of `message` (a query or a response). EBADMSG, naming the problem, when it is
/// shorter than a header, does not parse, or has not exactly one question.
[[nodiscard]] Result<Question> parse_question(ConstBytes message);

/// The largest response `transport` may carry for a query whose UDP limit is `udp_limit`.
[[nodiscard]] std::size_t response_limit(Transport transport, std::size_t udp_limit);

/// Cuts a response that is too long for UDP: keeps the header (TC set) and the question, and
/// the OPT record if there was one; drops the answer, authority and additional records
/// (RFC 2181 §9: a resolver then asks again over TCP). EBADMSG if `response` does not parse.
[[nodiscard]] Result<Response> truncate_response(ConstBytes response);

/// `response` if it fits `limit` bytes, else truncate_response(response).
[[nodiscard]] Result<Response> fit_response(ConstBytes response, std::size_t limit);

/// A response with `rcode` and no records to `query` (id, opcode, RD, CD echoed, QR and RA
/// set, the question echoed when the query parses and has exactly one). EBADMSG when the query
/// is shorter than a header or is itself a response (QR set).
[[nodiscard]] Result<Response> error_response(ConstBytes query, Rcode rcode);

/// `message` with its 16-bit id replaced (the forwarder's fresh upstream id and the way back).
/// EBADMSG when shorter than a header.
[[nodiscard]] Result<Response> with_id(ConstBytes message, std::uint16_t id);

}  // namespace warren::dns
