#pragma once
/// The cross-platform UAPI text protocol (wireguard.com/xplatform "Configuration Protocol"),
/// as pure functions with no I/O:
///
///   get=1\n\n                    ->  key=value\n ... errno=0\n\n        (format_get)
///   set=1\nkey=value\n ... \n    ->  errno=0\n\n or errno=-N\n\n       (parse_set, format_errno)
///
/// RequestReader cuts a byte stream into these operations; the server (uapi/server.h) feeds it
/// and talks to the device.
///
/// Semantics that differ from wireguard-go on purpose:
///   * A `set` is validated as a whole and applied as a whole. wireguard-go applies lines one by
///     one and stops at the first bad one, leaving the earlier lines applied; warren parses the
///     whole request first, and any bad line (or a client that hangs up before the blank line)
///     means errno=-22 (or -71) and NOTHING changes.
///   * After a failed `set` the connection stays usable (wireguard-go closes it, because the
///     unread rest of the request is then taken for an unknown operation).
/// Everything else (key names, value syntax, errno numbers, get key order) follows
/// wireguard-go 0.0.20220316, so `wg` and `wg-quick` work unchanged.
///
/// Nothing here ever copies key material into an error message.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "wg/config.h"

namespace warren::uapi {

/// Largest request (operation line plus body) RequestReader buffers: far above what `wg`
/// sends (wireguard-go's stress test sets 131073 allowed IPs in one request, ~6 MB).
inline constexpr std::size_t kMaxRequestBytes = std::size_t{64} << 20;

/// Parses the lines of a `set=1` request after the `set=1` line. Each line is `key=value`
/// ending in '\n' (the last '\n' may be missing); parsing stops at the first blank line, as the
/// protocol's blank line ends the operation.
///
/// Device keys (private_key, listen_port, fwmark, replace_peers) must come before the first
/// public_key=; every public_key= starts a new PeerDelta, and a public key may appear only once
/// per request. A public key equal to the device's own key is kept in the delta: only the
/// device knows its key, and it ignores such a peer (wireguard-go). Values:
///   * keys: exactly 64 hex digits (either case); all-zero private/preshared key = remove;
///   * numbers: decimal, within u16 (listen_port, persistent_keepalive_interval) or u32 (fwmark);
///   * booleans (replace_peers, remove, update_only, replace_allowed_ips): only `true`;
///   * endpoint: numeric `a.b.c.d:port` or `[ipv6]:port` (a `%zone` is accepted and dropped);
///   * allowed_ip: `addr/cidr` (host bits are kept; the device masks them); `-addr/cidr` removes;
///   * protocol_version: only `1`.
/// Returns the whole delta, or the first error and no delta. The error's code is EINVAL for a
/// bad key or value, EPROTO for a line without '='; its message names the line number (1 = the
/// first line after `set=1`) and the key, never the value.
Result<wg::ConfigDelta> parse_set(std::string_view body);

/// The reply to `get=1`, in wireguard-go's exact key order, ending with "errno=0\n\n":
/// private_key (omitted when absent or zero), listen_port and fwmark (omitted when 0), then per
/// peer public_key, preshared_key (zeros if none), protocol_version=1, endpoint (if known),
/// last_handshake_time_sec, last_handshake_time_nsec, tx_bytes, rx_bytes,
/// persistent_keepalive_interval and one allowed_ip line per prefix. Hex is lowercase.
/// The result holds the private key: wipe it (secure_zero) once sent.
std::string format_get(const wg::DeviceSnapshot& snapshot);

/// "errno=0\n\n" for 0, else "errno=-N\n\n" for a positive errno N (a negative N is taken as
/// already negated), as wireguard-go replies and `wg` expects.
std::string format_errno(int errno_value);

enum class RequestKind {
  kGet,     ///< `get=1\n\n`: reply with format_get
  kSet,     ///< `set=1\n...\n\n`: `body` holds the lines (each ending in '\n')
  kReject,  ///< reply format_errno(errno_value); then close the connection if close_after
  kClose,   ///< unknown operation: close the connection without a reply (wireguard-go)
};

/// One operation cut from the stream. The destructor wipes `body` (it may hold keys).
struct Request {
  RequestKind kind = RequestKind::kClose;
  std::string body;
  int errno_value = 0;  ///< positive, for kReject
  bool close_after = false;

  Request() = default;
  Request(RequestKind k, std::string b, int e, bool close);
  Request(const Request&) = default;
  Request(Request&&) noexcept = default;
  Request& operator=(const Request&) = default;
  Request& operator=(Request&&) noexcept = default;
  ~Request();
};

/// Incremental framing of one connection: feed() bytes as they arrive, then call next() until
/// it returns nullopt (it needs more bytes). Rules, as wireguard-go's IpcHandle:
///   * the operation line must be exactly `get=1` or `set=1`; anything else (including a
///     leading blank line) is kClose, reported as soon as the first wrong byte arrives;
///   * `get=1\n` must be followed by '\n'; any other byte is consumed and answered with
///     kReject(EINVAL), and reading continues after it (as wireguard-go does);
///   * `set=1\n` is complete at the first blank line; an empty body is allowed;
///   * a request that grows beyond `max_request_bytes` before it is complete is kReject(EINVAL)
///     with close_after, and nothing more is buffered.
/// After kClose or a closing kReject, next() returns nullopt and feed() discards its input.
/// Memory stays within max_request_bytes plus one feed() chunk. Buffered bytes are wiped when
/// consumed, moved or destroyed. Not thread-safe: one reader per connection.
class RequestReader {
 public:
  explicit RequestReader(std::size_t max_request_bytes = kMaxRequestBytes);
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  void feed(std::string_view bytes);
  std::optional<Request> next();

  /// Bytes received but not yet part of a returned request (a request in progress).
  std::size_t pending_bytes() const { return buffer_.size() - start_; }
  /// True after kClose or a closing kReject.
  bool closed() const { return closed_; }

 private:
  void consume(std::size_t n);
  void close_and_wipe();

  std::size_t max_request_bytes_;
  std::vector<char> buffer_;  // bytes [start_, size) are pending
  std::size_t start_ = 0;
  // Offset from start_ where the search for the blank line ending a `set` resumes, so a large
  // request arriving in many pieces is scanned once, not once per piece.
  std::size_t scan_from_ = 0;
  bool closed_ = false;
};

}  // namespace warren::uapi
