#include "uapi/protocol.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "base/encoding.h"
#include "base/secure.h"

namespace warren::uapi {
namespace {

constexpr std::string_view kGetLine = "get=1\n";
constexpr std::string_view kSetLine = "set=1\n";
// Consumed bytes at the front of the buffer that make it worth moving the rest down.
constexpr std::size_t kCompactAfter = std::size_t{64} << 10;

Error line_error(int err, std::size_t line, std::string_view what) {
  std::string message = "line " + std::to_string(line) + ": ";
  message.append(what);
  return Error(err, std::move(message));
}

// Key names are echoed in messages only when they look like key names: a client that puts a
// key where the name belongs (or sends a line with no '=') must not get it logged.
std::string printable_key(std::string_view key) {
  constexpr std::size_t kMaxShown = 32;
  bool plain = !key.empty() && key.size() <= kMaxShown &&
               std::all_of(key.begin(), key.end(),
                           [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
  return plain ? "'" + std::string(key) + "'" : std::string("(unprintable key)");
}

// Decimal digits only, like Go's strconv.ParseUint(value, 10, bits): no sign, no spaces.
bool parse_decimal(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  if (text.empty()) {
    return false;
  }
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v > max) {
    return false;
  }
  out = v;
  return true;
}

bool parse_secret(std::string_view text, crypto::PrivateKey& out) {
  return from_hex(text, out.span());
}

bool parse_public(std::string_view text, crypto::PublicKey& out) {
  return from_hex(text, out.bytes);
}

// wireguard-go parses allowed IPs with netip.ParsePrefix: the "/bits" part is required and a
// zone is not allowed. Prefix::parse is more lenient on both, so check them first.
std::optional<net::Prefix> parse_allowed_ip(std::string_view text) {
  if (text.find('/') == std::string_view::npos || text.find('%') != std::string_view::npos) {
    return std::nullopt;
  }
  return net::Prefix::parse(text);
}

bool is_device_key(std::string_view key) {
  return key == "private_key" || key == "listen_port" || key == "fwmark" || key == "replace_peers";
}

bool is_peer_key(std::string_view key) {
  return key == "remove" || key == "update_only" || key == "preshared_key" || key == "endpoint" ||
         key == "persistent_keepalive_interval" || key == "replace_allowed_ips" ||
         key == "allowed_ip" || key == "protocol_version";
}

class SetParser {
 public:
  Result<wg::ConfigDelta> run(std::string_view body) {
    while (!body.empty()) {
      std::size_t nl = body.find('\n');
      std::string_view line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      ++line_;
      if (line.empty()) {
        break;  // a blank line ends the operation
      }
      std::size_t eq = line.find('=');
      if (eq == std::string_view::npos) {
        // wireguard-go answers a line it cannot split with EPROTO rather than EINVAL.
        return line_error(EPROTO, line_, "expected key=value");
      }
      if (auto err = handle(line.substr(0, eq), line.substr(eq + 1))) {
        return std::move(*err);
      }
    }
    return std::move(delta_);
  }

 private:
  std::optional<Error> fail(std::string_view key, std::string_view why) {
    return line_error(EINVAL, line_, printable_key(key) + ": " + std::string(why));
  }

  std::optional<Error> handle(std::string_view key, std::string_view value) {
    if (key == "public_key") {
      return start_peer(value);
    }
    if (peer_ == nullptr) {
      if (is_peer_key(key)) {
        return fail(key, "peer key before the first public_key");
      }
      return device_key(key, value);
    }
    if (is_device_key(key)) {
      return fail(key, "device key after the first public_key");
    }
    return peer_key(key, value);
  }

  std::optional<Error> start_peer(std::string_view value) {
    crypto::PublicKey key;
    if (!parse_public(value, key)) {
      return fail("public_key", "want 64 hex digits");
    }
    // The spec says a public key may not repeat within one message; with whole-request
    // semantics a repeat would also make the meaning of the request order-dependent.
    if (!seen_.insert(key).second) {
      return fail("public_key", "repeats an earlier peer");
    }
    delta_.peers.emplace_back();
    peer_ = &delta_.peers.back();
    peer_->public_key = key;
    return std::nullopt;
  }

  std::optional<Error> device_key(std::string_view key, std::string_view value) {
    std::uint64_t n = 0;
    if (key == "private_key") {
      crypto::PrivateKey k;
      if (!parse_secret(value, k)) {
        return fail(key, "want 64 hex digits");
      }
      delta_.private_key = k;
    } else if (key == "listen_port") {
      if (!parse_decimal(value, UINT16_MAX, n)) {
        return fail(key, "want a number 0-65535");
      }
      delta_.listen_port = static_cast<std::uint16_t>(n);
    } else if (key == "fwmark") {
      if (!parse_decimal(value, UINT32_MAX, n)) {
        return fail(key, "want a number 0-4294967295");
      }
      delta_.fwmark = static_cast<std::uint32_t>(n);
    } else if (key == "replace_peers") {
      if (value != "true") {
        return fail(key, "only 'true' is allowed");
      }
      delta_.replace_peers = true;
    } else {
      return fail(key, "unknown key");
    }
    return std::nullopt;
  }

  std::optional<Error> peer_key(std::string_view key, std::string_view value) {
    std::uint64_t n = 0;
    if (key == "remove" || key == "update_only" || key == "replace_allowed_ips") {
      if (value != "true") {
        return fail(key, "only 'true' is allowed");
      }
      if (key == "remove") {
        peer_->remove = true;
      } else if (key == "update_only") {
        peer_->update_only = true;
      } else {
        // wireguard-go clears the peer's allowed IPs at this line, so prefixes named before it
        // in the same request are dropped too; the delta applies the clear first.
        peer_->replace_allowed_ips = true;
        peer_->allowed_ips_add.clear();
        peer_->allowed_ips_remove.clear();
      }
    } else if (key == "preshared_key") {
      crypto::PresharedKey k;
      if (!parse_secret(value, k)) {
        return fail(key, "want 64 hex digits");
      }
      peer_->preshared_key = k;
    } else if (key == "endpoint") {
      auto ep = net::Endpoint::parse(value);
      if (!ep) {
        return fail(key, "want a.b.c.d:port or [ipv6]:port");
      }
      peer_->endpoint = *ep;
    } else if (key == "persistent_keepalive_interval") {
      if (!parse_decimal(value, UINT16_MAX, n)) {
        return fail(key, "want a number 0-65535");
      }
      peer_->persistent_keepalive = static_cast<std::uint16_t>(n);
    } else if (key == "allowed_ip") {
      bool remove = !value.empty() && value.front() == '-';
      auto prefix = parse_allowed_ip(remove ? value.substr(1) : value);
      if (!prefix) {
        return fail(key, "want address/cidr");
      }
      (remove ? peer_->allowed_ips_remove : peer_->allowed_ips_add).push_back(*prefix);
    } else if (key == "protocol_version") {
      if (value != "1") {
        return fail(key, "only version 1 is supported");
      }
    } else {
      return fail(key, "unknown key");
    }
    return std::nullopt;
  }

  wg::ConfigDelta delta_;
  wg::PeerDelta* peer_ = nullptr;  // points into delta_.peers, the peer being configured
  std::unordered_set<crypto::PublicKey> seen_;
  std::size_t line_ = 0;
};

// An empty vector's data() may be null, which explicit_bzero must not be given.
void wipe(char* p, std::size_t n) {
  if (n != 0) {
    secure_zero(p, n);
  }
}

void append_line(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out.push_back('=');
  out.append(value);
  out.push_back('\n');
}

}  // namespace

Result<wg::ConfigDelta> parse_set(std::string_view body) {
  return SetParser().run(body);
}

std::string format_get(const wg::DeviceSnapshot& s) {
  std::string out;
  // An upper bound (device lines < 256 bytes, a peer's fixed lines < 512, an allowed_ip line
  // < 64), so the string never reallocates: a reallocation would leave a copy of the private
  // key behind in freed memory.
  std::size_t prefixes = 0;
  for (const auto& p : s.peers) {
    prefixes += p.allowed_ips.size();
  }
  out.reserve(256 + s.peers.size() * 512 + prefixes * 64);

  if (s.private_key && !s.private_key->is_zero()) {
    out.append("private_key=");
    std::string hex = to_hex(s.private_key->span());
    out.append(hex);
    secure_zero(hex.data(), hex.size());
    out.push_back('\n');
  }
  if (s.listen_port != 0) {
    append_line(out, "listen_port", std::to_string(s.listen_port));
  }
  if (s.fwmark != 0) {
    append_line(out, "fwmark", std::to_string(s.fwmark));
  }

  for (const auto& p : s.peers) {
    append_line(out, "public_key", to_hex(p.public_key.bytes));
    std::string psk = to_hex(p.preshared_key.span());
    append_line(out, "preshared_key", psk);
    secure_zero(psk.data(), psk.size());
    append_line(out, "protocol_version", "1");
    if (p.endpoint && p.endpoint->valid()) {
      append_line(out, "endpoint", p.endpoint->to_string());
    }
    append_line(out, "last_handshake_time_sec", std::to_string(p.last_handshake_sec));
    append_line(out, "last_handshake_time_nsec", std::to_string(p.last_handshake_nsec));
    append_line(out, "tx_bytes", std::to_string(p.tx_bytes));
    append_line(out, "rx_bytes", std::to_string(p.rx_bytes));
    append_line(out, "persistent_keepalive_interval", std::to_string(p.persistent_keepalive));
    for (const auto& prefix : p.allowed_ips) {
      append_line(out, "allowed_ip", prefix.to_string());
    }
  }
  out.append("errno=0\n\n");
  return out;
}

std::string format_errno(int errno_value) {
  if (errno_value == 0) {
    return "errno=0\n\n";
  }
  long long negative = errno_value > 0 ? -static_cast<long long>(errno_value) : errno_value;
  return "errno=" + std::to_string(negative) + "\n\n";
}

Request::Request(RequestKind k, std::string b, int e, bool close)
    : kind(k), body(std::move(b)), errno_value(e), close_after(close) {}

Request::~Request() {
  secure_zero(body.data(), body.size());
}

RequestReader::RequestReader(std::size_t max_request_bytes)
    : max_request_bytes_(max_request_bytes) {}

RequestReader::~RequestReader() {
  wipe(buffer_.data(), buffer_.size());
}

void RequestReader::feed(std::string_view bytes) {
  if (closed_ || bytes.empty()) {
    return;
  }
  // The request in progress is already too large; next() rejects it, so keep no more.
  if (pending_bytes() > max_request_bytes_) {
    return;
  }
  if (buffer_.size() + bytes.size() > buffer_.capacity()) {
    // Grow by hand rather than letting the vector reallocate: the old storage may hold a
    // private key and must be wiped, and consumed bytes need not move.
    std::size_t pending = pending_bytes();
    std::vector<char> grown;
    grown.reserve(std::max({pending + bytes.size(), 2 * buffer_.capacity(), std::size_t{4096}}));
    grown.insert(grown.end(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_), buffer_.end());
    wipe(buffer_.data(), buffer_.size());
    buffer_.swap(grown);
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

std::optional<Request> RequestReader::next() {
  if (closed_) {
    return std::nullopt;
  }
  std::string_view pending(buffer_.data() + start_, pending_bytes());
  if (pending.empty()) {
    return std::nullopt;
  }

  // Decide on the operation line as soon as a byte rules out both operations, so a client
  // sending junk is dropped at once instead of after max_request_bytes.
  std::size_t n = std::min(pending.size(), kGetLine.size());
  bool maybe_get = pending.substr(0, n) == kGetLine.substr(0, n);
  bool maybe_set = pending.substr(0, n) == kSetLine.substr(0, n);
  if (!maybe_get && !maybe_set) {
    close_and_wipe();
    return Request(RequestKind::kClose, {}, 0, true);
  }
  if (pending.size() < kGetLine.size()) {
    return std::nullopt;
  }

  if (maybe_get) {
    if (pending.size() < kGetLine.size() + 1) {
      return std::nullopt;
    }
    // wireguard-go reads exactly one byte after "get=1\n"; if it is not '\n' it answers
    // EINVAL and goes on reading operations after that byte.
    bool ok = pending[kGetLine.size()] == '\n';
    consume(kGetLine.size() + 1);
    if (ok) {
      return Request(RequestKind::kGet, {}, 0, false);
    }
    return Request(RequestKind::kReject, {}, EINVAL, false);
  }

  // The body ends at the first empty line. Searching from the '\n' of "set=1\n" finds an empty
  // body ("set=1\n\n") the same way as a non-empty one.
  std::size_t from = std::max(kSetLine.size() - 1, scan_from_);
  std::size_t end = pending.find("\n\n", from);
  if (end == std::string_view::npos) {
    if (pending.size() > max_request_bytes_) {
      close_and_wipe();
      return Request(RequestKind::kReject, {}, EINVAL, true);
    }
    scan_from_ = pending.size() - 1;  // the last '\n' may pair with the next byte
    return std::nullopt;
  }
  std::size_t total = end + 2;
  if (total > max_request_bytes_) {
    close_and_wipe();
    return Request(RequestKind::kReject, {}, EINVAL, true);
  }
  Request r(RequestKind::kSet,
            std::string(pending.substr(kSetLine.size(), end + 1 - kSetLine.size())), 0, false);
  consume(total);
  return r;
}

void RequestReader::consume(std::size_t n) {
  wipe(buffer_.data() + start_, n);
  start_ += n;
  scan_from_ = 0;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ >= kCompactAfter && start_ * 2 >= buffer_.size()) {
    // Many small requests in one stream: move the rest to the front now and then, so the
    // buffer does not creep forward forever.
    std::size_t pending = pending_bytes();
    std::memmove(buffer_.data(), buffer_.data() + start_, pending);
    wipe(buffer_.data() + pending, buffer_.size() - pending);
    buffer_.resize(pending);
    start_ = 0;
  }
}

void RequestReader::close_and_wipe() {
  wipe(buffer_.data(), buffer_.size());
  buffer_.clear();
  start_ = 0;
  scan_from_ = 0;
  closed_ = true;
}

}  // namespace warren::uapi
