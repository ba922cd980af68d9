#pragma once
/// The mesh messages of the settings session (control/session.h; docs/MESH.md, "Roster
/// service"). Codec only: no sockets. Both sides use it — the coordinator (server/roster_service.h)
/// and the node's session client.
///
///   node                                              coordinator
///     session established ─► {"type":"roster_request","from":N}      N = version held, 0: none
///                         ─► {"type":"endpoints","local":[..],"reflexive":".."}
///                         ◄─ {"type":"roster","delta":"<base64 of mesh::encode_delta>"}
///                            (the answer: diff(N), or a snapshot when diff gives ESTALE; then
///                             after every roster change the delta from the version last sent,
///                             at most one per session per 200 ms tick)
///     apply() fails with ESTALE ─► {"type":"roster_request","from":0}
///
/// Every message carries "version" (kProtocolVersion) and "type", like the other session
/// messages. A roster frame may exceed the channel's kMaxMessageBytes: a snapshot of 10,000
/// nodes is about 1 MB of binary, 1.3 MB of base64. An established session (the proof was
/// verified) therefore accepts server → node frames of up to kMaxRosterMessageBytes; the node →
/// server direction and everything before authentication keep kMaxMessageBytes.
///
/// Parse errors are EPROTO (the message is not what its type says: not JSON, wrong version,
/// wrong type) or EINVAL (a field is missing or malformed), the message naming the field.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "mesh/roster.h"
#include "net/ip_address.h"

namespace warren::control {

/// The largest server → node frame on an established session (a roster snapshot).
inline constexpr std::size_t kMaxRosterMessageBytes = 32 * 1024 * 1024;

inline constexpr std::string_view kRosterMessageType = "roster";
inline constexpr std::string_view kRosterRequestType = "roster_request";
inline constexpr std::string_view kEndpointsMessageType = "endpoints";

/// The type of a session message without parsing the rest ("" when it has none, or is not a
/// JSON object). Cheap enough to dispatch on; the parse functions below check everything.
[[nodiscard]] std::string session_message_type(std::string_view json);

// ---- server → node: roster ----------------------------------------------------------------

/// {"version":2,"type":"roster","delta":"<base64 of mesh::encode_delta(delta)>"}
[[nodiscard]] std::string roster_message_to_json(const mesh::RosterDelta& delta);
/// The same from an already encoded delta (the coordinator encodes a delta once for every
/// session that needs the same one).
[[nodiscard]] std::string roster_message_to_json(ConstBytes encoded_delta);
/// The delta of a roster message: EPROTO (not a roster message), EINVAL ("delta" missing or
/// not base64), or decode_delta's EBADMSG naming the problem in the bytes.
[[nodiscard]] Result<mesh::RosterDelta> parse_roster_message(std::string_view json);

// ---- node → server: roster_request ----------------------------------------------------------

struct RosterRequest {
  std::uint64_t from = 0;  ///< the roster version the node holds; 0 = none (send a snapshot)
  friend bool operator==(const RosterRequest&, const RosterRequest&) = default;
};
[[nodiscard]] std::string roster_request_to_json(const RosterRequest& request);
[[nodiscard]] Result<RosterRequest> parse_roster_request(std::string_view json);

// ---- node → server: endpoints ---------------------------------------------------------------

/// A node's candidate endpoints: its own addresses with its WireGuard port, and what the
/// coordinator's STUN server saw (absent when unknown).
struct EndpointReport {
  std::vector<net::Endpoint> local;  ///< at most mesh::kMaxLocalEndpoints
  std::optional<net::Endpoint> reflexive;
  friend bool operator==(const EndpointReport&, const EndpointReport&) = default;
};
/// {"version":2,"type":"endpoints","local":["192.0.2.10:51820","[2001:db8::10]:51820"],
///  "reflexive":"198.51.100.7:40001"}   ("reflexive" absent when unknown)
[[nodiscard]] std::string endpoints_to_json(const EndpointReport& report);
/// Syntax only: every item must be a numeric address:port with port != 0, at most
/// mesh::kMaxLocalEndpoints local ones (EINVAL naming the item). Whether an endpoint is
/// acceptable as a candidate (no unspecified, loopback or multicast address) is
/// check_endpoint_report's call, so that the server can drop a bad item and keep the rest.
[[nodiscard]] Result<EndpointReport> parse_endpoints(std::string_view json);

/// The coordinator's policy for reported candidates: keeps the endpoints a peer could dial
/// (unicast, not unspecified, not loopback, not multicast, not link-local IPv6 — which needs
/// a scope a peer cannot know — port != 0, no duplicates) and returns the rest in `rejected`
/// with the reason, for the log line.
struct CheckedEndpoints {
  EndpointReport kept;
  std::vector<std::string> rejected;  ///< "ENDPOINT: reason"
};
[[nodiscard]] CheckedEndpoints check_endpoint_report(const EndpointReport& report);

}  // namespace warren::control
