#pragma once
/// STUN (RFC 5389) Binding messages, as far as mesh endpoint discovery needs them: a node sends a
/// Binding request from its WireGuard UDP socket to the coordinator's STUN port and learns its
/// reflexive (public) address and port from the XOR-MAPPED-ADDRESS of the success response.
/// Pure codec: no sockets, no clocks; randomness is injected.
///
///   node ── build_binding_request(id) ──► coordinator
///        ◄── build_binding_success(id, seen) ── parse_binding_request(datagram) ◄┘
///   parse_binding_success(datagram, id) ─► reflexive endpoint
///
/// Wire format (RFC 5389 §6, §15): a 20-byte header (type, length of the attributes, magic
/// cookie 0x2112A442, 96-bit transaction id), then attributes, each type | length | value
/// padded to a multiple of 4. Supported attributes: XOR-MAPPED-ADDRESS (0x0020), MAPPED-ADDRESS
/// (0x0001, read as a fallback for RFC 3489 servers), ERROR-CODE (0x0009, read from error
/// responses), FINGERPRINT (0x8028: CRC-32 from zlib, XOR 0x5354554E; checked whenever present,
/// written on request). MESSAGE-INTEGRITY (0x0008) is neither written nor checked: mesh STUN
/// carries no credentials (the answer only tells a node what it could see itself from outside;
/// a forged answer can at worst offer a wrong candidate, which then fails its WireGuard
/// handshake), so there is no key to check it with. A response that carries one is read as if
/// it did not (RFC 5389 §15.4: attributes after it other than FINGERPRINT are ignored).
///
/// Sharing the WireGuard socket: `is_stun` tells a STUN message from a WireGuard message by
/// format alone. The two sets are disjoint, not just unlikely to overlap: every WireGuard
/// message starts with a type byte 1..4 followed by three zero bytes and is at least 32 bytes
/// long. Read as STUN, its bytes 2..3 (zero) would be a message length of 0, so it would have
/// to be exactly 20 bytes long — no WireGuard message is. (Every STUN message warren sends
/// also has byte 0 == 0x00 or byte 1 != 0, which no WireGuard message has.)
///
/// Every parse is bounds-checked and returns a Result whose error (EBADMSG for malformed input,
/// EPROTO for a well-formed message that is not the expected one) says what was wrong.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/result.h"
#include "net/ip_address.h"

namespace warren::mesh::stun {

inline constexpr std::uint32_t kMagicCookie = 0x2112A442u;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::size_t kTransactionIdSize = 12;
/// FINGERPRINT = CRC-32(message up to the attribute) XOR this (RFC 5389 §15.5).
inline constexpr std::uint32_t kFingerprintXor = 0x5354554Eu;

/// Message types (method Binding = 0x001, RFC 5389 §6 and §18.1).
inline constexpr std::uint16_t kBindingRequest = 0x0001;
inline constexpr std::uint16_t kBindingSuccess = 0x0101;
inline constexpr std::uint16_t kBindingError = 0x0111;

/// Attribute types (RFC 5389 §18.2).
inline constexpr std::uint16_t kAttrMappedAddress = 0x0001;
inline constexpr std::uint16_t kAttrUsername = 0x0006;
inline constexpr std::uint16_t kAttrMessageIntegrity = 0x0008;
inline constexpr std::uint16_t kAttrErrorCode = 0x0009;
inline constexpr std::uint16_t kAttrUnknownAttributes = 0x000A;
inline constexpr std::uint16_t kAttrRealm = 0x0014;
inline constexpr std::uint16_t kAttrNonce = 0x0015;
inline constexpr std::uint16_t kAttrXorMappedAddress = 0x0020;
inline constexpr std::uint16_t kAttrSoftware = 0x8022;
inline constexpr std::uint16_t kAttrAlternateServer = 0x8023;
inline constexpr std::uint16_t kAttrFingerprint = 0x8028;

using TransactionId = std::array<std::uint8_t, kTransactionIdSize>;

/// A fresh transaction id (96 random bits, RFC 5389 §6). Production passes
/// `crypto::SystemRandom::instance()`; the id is what makes an unsolicited or stale answer
/// recognisable, so it must come from a CSPRNG.
[[nodiscard]] TransactionId new_transaction_id(RandomSource& random);

/// True if `datagram` has the form of a STUN message: at least 20 bytes, the top two bits of
/// byte 0 zero, the magic cookie in bytes 4..7, and a length field that is a multiple of 4 and
/// equals the datagram's size minus 20. Cheap (no attribute walk, no CRC): meant to route a
/// datagram on the shared WireGuard socket; `parse` does the full check. Never true for a
/// WireGuard message (see the header comment).
[[nodiscard]] bool is_stun(ConstBytes datagram);

/// A Binding request with no attributes, or with FINGERPRINT only (20 or 28 bytes).
[[nodiscard]] std::vector<std::uint8_t> build_binding_request(const TransactionId& id,
                                                              bool fingerprint = true);

/// A Binding success response carrying `mapped` (the source the request came from; port != 0)
/// as XOR-MAPPED-ADDRESS, and FINGERPRINT if asked (32 or 40 bytes for IPv4, 44 or 52 for
/// IPv6). An IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack socket reports IPv4
/// sources) is written as IPv4.
[[nodiscard]] std::vector<std::uint8_t> build_binding_success(const TransactionId& id,
                                                              const net::Endpoint& mapped,
                                                              bool fingerprint = true);

/// A STUN message read in full: header checked, every attribute walked, FINGERPRINT (if any)
/// verified, the address attributes decoded. Unknown comprehension-optional attributes
/// (0x8000-0xFFFF) are skipped; unknown comprehension-required ones (0x0000-0x7FFF) are listed.
struct Message {
  std::uint16_t type = 0;
  TransactionId transaction_id{};
  std::optional<net::Endpoint> xor_mapped;  ///< the first XOR-MAPPED-ADDRESS
  std::optional<net::Endpoint> mapped;      ///< the first MAPPED-ADDRESS
  std::optional<int> error_code;            ///< ERROR-CODE: class * 100 + number (e.g. 400)
  std::string error_reason;  ///< ERROR-CODE reason: printable ASCII (others '?'), <= 128 chars
  bool fingerprint = false;  ///< a FINGERPRINT was present and matched
  bool message_integrity = false;  ///< a MESSAGE-INTEGRITY was present (not checked)
  bool username = false;           ///< a USERNAME was present (not read)
  std::vector<std::uint16_t> unknown_required;
};

/// Parses any STUN message. Errors (EBADMSG) name the first problem: too short, not STUN
/// (top bits, magic cookie), length field (not a multiple of 4, or not the datagram's size),
/// an attribute header or value running past the end, a bad address attribute (family,
/// length, port 0), an ERROR-CODE too short, a FINGERPRINT of the wrong size, not last, or not
/// matching.
[[nodiscard]] Result<Message> parse(ConstBytes datagram);

/// For the coordinator's STUN server: the transaction id of a valid Binding request. Errors:
/// what `parse` reports, EPROTO for another message type, a request asking for authentication
/// (USERNAME or MESSAGE-INTEGRITY: unsupported, see the header comment), or unknown
/// comprehension-required attributes (RFC 5389 §7.3.1 would answer 420; a mesh node never sends
/// them, so the caller just drops the request).
[[nodiscard]] Result<TransactionId> parse_binding_request(ConstBytes datagram);

/// For a node: the reflexive endpoint of a Binding success response to the request `expected`
/// (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). Errors: what `parse` reports; EPROTO for another
/// transaction id (a stale or unsolicited answer: ignore it), an error response (its code and
/// reason in the message), another message type, unknown comprehension-required attributes
/// (RFC 5389 §7.3.3: discard), or no address attribute.
[[nodiscard]] Result<net::Endpoint> parse_binding_success(ConstBytes datagram,
                                                          const TransactionId& expected);

}  // namespace warren::mesh::stun
