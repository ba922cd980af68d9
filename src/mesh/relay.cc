// Relay frames, the key-possession proof and stream reassembly.
//
//   bytes ──check_header (type known, body length fits the type)──► decode_body ──► Frame
//   stream bytes ──StreamReader: whole frame in the input? view it : gather header, then exactly
//                  the body the header announced ──► decode_body
//
// The header is checked before any body byte is buffered, so a peer cannot make a stream
// reader hold more than one legitimate frame (an oversized length fails at once).

#include "mesh/relay.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/secure.h"
#include "crypto/blake2s.h"

namespace warren::mesh::relay {
namespace {

Error malformed(const std::string& what) {
  return Error(EBADMSG, "malformed relay frame: " + what);
}

bool known_type(std::uint8_t t) {
  return t >= static_cast<std::uint8_t>(FrameType::kChallenge) &&
         t <= static_cast<std::uint8_t>(FrameType::kUdpAuth);
}

const char* type_name(FrameType t) {
  switch (t) {
    case FrameType::kChallenge:
      return "challenge";
    case FrameType::kAuth:
      return "auth";
    case FrameType::kAuthOk:
      return "auth-ok";
    case FrameType::kSend:
      return "send";
    case FrameType::kRecv:
      return "recv";
    case FrameType::kPing:
      return "ping";
    case FrameType::kPong:
      return "pong";
    case FrameType::kKeepalive:
      return "keepalive";
    case FrameType::kError:
      return "error";
    case FrameType::kUdpAuth:
      return "udp-auth";
  }
  return "?";
}

// The body length each type allows: [min, max].
std::pair<std::size_t, std::size_t> body_bounds(FrameType t) {
  switch (t) {
    case FrameType::kChallenge:
      return {kKeySize + kChallengeSize, kKeySize + kChallengeSize};
    case FrameType::kAuth:
      return {kKeySize + kProofSize, kKeySize + kProofSize};
    case FrameType::kUdpAuth:
      return {kKeySize + kProofSize + kChallengeSize, kKeySize + kProofSize + kChallengeSize};
    case FrameType::kSend:
    case FrameType::kRecv:
      return {kKeySize + 1, kKeySize + kMaxDatagram};
    case FrameType::kPing:
    case FrameType::kPong:
      return {8, 8};
    case FrameType::kError:
      return {2, 2 + kMaxErrorText};
    case FrameType::kAuthOk:
    case FrameType::kKeepalive:
      break;
  }
  return {0, 0};
}

// The body length of the frame whose 4-byte header is at `h`, checked against its type.
Result<std::size_t> check_header(const std::uint8_t* h) {
  if (!known_type(h[0])) {
    return malformed("unknown type 0x" + [&] {
      char b[3];
      std::snprintf(b, sizeof b, "%02x", h[0]);
      return std::string(b);
    }());
  }
  const auto type = static_cast<FrameType>(h[0]);
  const std::size_t len = (std::size_t{h[1]} << 16) | (std::size_t{h[2]} << 8) | h[3];
  const auto [lo, hi] = body_bounds(type);
  if (len < lo || len > hi) {
    std::string what = std::string(type_name(type)) + " frame with a body of " +
                       std::to_string(len) + " bytes (want ";
    what += lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
    if (type == FrameType::kSend || type == FrameType::kRecv)
      what += ": a key and a datagram of 1.." + std::to_string(kMaxDatagram) + " bytes";
    return malformed(what + ")");
  }
  return len;
}

bool printable(std::uint8_t c) {
  return c >= 0x20 && c < 0x7f;
}

// `body` has the length check_header accepted for `type`.
Result<Frame> decode_body(FrameType type, ConstBytes body) {
  Frame f;
  f.type = type;
  switch (type) {
    case FrameType::kChallenge:
    case FrameType::kAuth:
      std::copy_n(body.data(), kKeySize, f.key.bytes.begin());
      std::copy_n(body.data() + kKeySize, kChallengeSize, f.challenge.begin());
      break;
    case FrameType::kUdpAuth:
      std::copy_n(body.data(), kKeySize, f.key.bytes.begin());
      std::copy_n(body.data() + kKeySize, kProofSize, f.challenge.begin());
      std::copy_n(body.data() + kKeySize + kProofSize, kChallengeSize, f.cookie.begin());
      break;
    case FrameType::kSend:
    case FrameType::kRecv:
      std::copy_n(body.data(), kKeySize, f.key.bytes.begin());
      f.datagram = body.subspan(kKeySize);
      break;
    case FrameType::kPing:
    case FrameType::kPong:
      f.nonce = load_be64(body.data());
      break;
    case FrameType::kError:
      f.error = load_be16(body.data());
      for (std::size_t i = 2; i < body.size(); ++i) {
        if (!printable(body[i]))
          return malformed("error text has a byte that is not printable ASCII");
        f.text += static_cast<char>(body[i]);
      }
      break;
    case FrameType::kAuthOk:
    case FrameType::kKeepalive:
      break;
  }
  return f;
}

std::vector<std::uint8_t> with_header(FrameType type, std::size_t body_size) {
  std::vector<std::uint8_t> out(kHeaderSize + body_size);
  out[0] = static_cast<std::uint8_t>(type);
  out[1] = static_cast<std::uint8_t>(body_size >> 16);
  out[2] = static_cast<std::uint8_t>(body_size >> 8);
  out[3] = static_cast<std::uint8_t>(body_size);
  return out;
}

std::vector<std::uint8_t> encode_key_pair(FrameType type, const crypto::PublicKey& key,
                                          const std::array<std::uint8_t, 32>& value) {
  auto out = with_header(type, kKeySize + value.size());
  std::copy(key.bytes.begin(), key.bytes.end(), out.begin() + kHeaderSize);
  std::copy(value.begin(), value.end(), out.begin() + kHeaderSize + kKeySize);
  return out;
}

// proof = keyed BLAKE2s-256(X25519 result, label || challenge || node key).
Proof compute_proof(const crypto::SharedSecret& shared, const Challenge& challenge,
                    const crypto::PublicKey& node) {
  std::array<std::uint8_t, kProofLabel.size() + kChallengeSize + kKeySize> msg{};
  std::memcpy(msg.data(), kProofLabel.data(), kProofLabel.size());
  std::memcpy(msg.data() + kProofLabel.size(), challenge.data(), kChallengeSize);
  std::memcpy(msg.data() + kProofLabel.size() + kChallengeSize, node.bytes.data(), kKeySize);
  Proof proof{};
  crypto::blake2s_keyed(shared.span(), msg, proof);
  return proof;
}

}  // namespace

bool is_relay(ConstBytes d) {
  return d.size() >= kHeaderSize && known_type(d[0]);
}

Result<Frame> decode_frame(ConstBytes d) {
  if (d.size() < kHeaderSize) {
    return malformed(std::to_string(d.size()) + " bytes, shorter than the " +
                     std::to_string(kHeaderSize) + "-byte header");
  }
  auto len = check_header(d.data());
  if (!len)
    return std::move(len).error();
  if (*len != d.size() - kHeaderSize) {
    return malformed("body length " + std::to_string(*len) + " but " +
                     std::to_string(d.size() - kHeaderSize) + " bytes follow the header");
  }
  return decode_body(static_cast<FrameType>(d[0]), d.subspan(kHeaderSize));
}

Status write_data_header(std::span<std::uint8_t, kDataHeaderSize> out, FrameType type,
                         const crypto::PublicKey& peer, std::size_t datagram_size) {
  if (type != FrameType::kSend && type != FrameType::kRecv)
    return Error(EINVAL, std::string("a ") + type_name(type) + " frame carries no datagram");
  if (datagram_size == 0 || datagram_size > kMaxDatagram) {
    return Error(EMSGSIZE, "relay datagram of " + std::to_string(datagram_size) +
                               " bytes (want 1.." + std::to_string(kMaxDatagram) + ")");
  }
  const std::size_t body = kKeySize + datagram_size;
  out[0] = static_cast<std::uint8_t>(type);
  out[1] = static_cast<std::uint8_t>(body >> 16);
  out[2] = static_cast<std::uint8_t>(body >> 8);
  out[3] = static_cast<std::uint8_t>(body);
  std::copy(peer.bytes.begin(), peer.bytes.end(), out.begin() + kHeaderSize);
  return ok();
}

Result<std::vector<std::uint8_t>> encode_frame(const Frame& f) {
  switch (f.type) {
    case FrameType::kChallenge:
    case FrameType::kAuth:
      return encode_key_pair(f.type, f.key, f.challenge);
    case FrameType::kUdpAuth:
      return encode_udp_auth(f.key, f.challenge, f.cookie);
    case FrameType::kSend:
    case FrameType::kRecv: {
      std::vector<std::uint8_t> out(kDataHeaderSize);
      if (auto s = write_data_header(
              std::span<std::uint8_t, kDataHeaderSize>(out.data(), kDataHeaderSize), f.type, f.key,
              f.datagram.size());
          !s)
        return std::move(s).error();
      out.insert(out.end(), f.datagram.begin(), f.datagram.end());
      return out;
    }
    case FrameType::kPing:
    case FrameType::kPong:
      return encode_ping(f.type, f.nonce);
    case FrameType::kError: {
      if (f.text.size() > kMaxErrorText) {
        return Error(EINVAL, "relay error text of " + std::to_string(f.text.size()) +
                                 " bytes (at most " + std::to_string(kMaxErrorText) + ")");
      }
      if (!std::all_of(f.text.begin(), f.text.end(),
                       [](char c) { return printable(static_cast<std::uint8_t>(c)); }))
        return Error(EINVAL, "relay error text is not printable ASCII");
      auto out = with_header(f.type, 2 + f.text.size());
      store_be16(out.data() + kHeaderSize, f.error);
      std::copy(f.text.begin(), f.text.end(), out.begin() + kHeaderSize + 2);
      return out;
    }
    case FrameType::kAuthOk:
    case FrameType::kKeepalive:
      return encode_simple(f.type);
  }
  return Error(EINVAL, "unknown relay frame type " + std::to_string(static_cast<int>(f.type)));
}

std::vector<std::uint8_t> encode_auth(const crypto::PublicKey& node, const Proof& proof) {
  return encode_key_pair(FrameType::kAuth, node, proof);
}

std::vector<std::uint8_t> encode_udp_auth(const crypto::PublicKey& node, const Proof& proof,
                                          const Challenge& cookie) {
  auto out = with_header(FrameType::kUdpAuth, kKeySize + kProofSize + kChallengeSize);
  auto* p = out.data() + kHeaderSize;
  std::copy(node.bytes.begin(), node.bytes.end(), p);
  std::copy(proof.begin(), proof.end(), p + kKeySize);
  std::copy(cookie.begin(), cookie.end(), p + kKeySize + kProofSize);
  return out;
}

std::vector<std::uint8_t> encode_udp_hello() {
  return encode_key_pair(FrameType::kAuth, crypto::PublicKey{}, Proof{});
}

bool is_udp_hello(const Frame& f) {
  return f.type == FrameType::kAuth && constant_time_is_zero(f.key.bytes) &&
         constant_time_is_zero(f.challenge);
}

std::vector<std::uint8_t> encode_simple(FrameType type) {
  return with_header(type, 0);
}

std::vector<std::uint8_t> encode_ping(FrameType type, std::uint64_t nonce) {
  auto out = with_header(type, 8);
  store_be64(out.data() + kHeaderSize, nonce);
  return out;
}

std::vector<std::uint8_t> encode_error(ErrorCode code, std::string_view text) {
  const std::size_t n = std::min(text.size(), kMaxErrorText);
  auto out = with_header(FrameType::kError, 2 + n);
  store_be16(out.data() + kHeaderSize, static_cast<std::uint16_t>(code));
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::uint8_t>(text[i]);
    out[kHeaderSize + 2 + i] = printable(c) ? c : '?';
  }
  return out;
}

Challenger Challenger::create(RandomSource& random) {
  Challenger c;
  c.ephemeral_ = crypto::generate_private_key(random);
  c.key_ = crypto::derive_public_key(c.ephemeral_);
  random.fill(c.challenge_);
  return c;
}

std::vector<std::uint8_t> Challenger::frame() const {
  return encode_key_pair(FrameType::kChallenge, key_, challenge_);
}

Result<crypto::PublicKey> Challenger::verify(const crypto::PublicKey& node, const Proof& proof) {
  // One answer per challenge, right or wrong: a second try would let a guesser or a replayer
  // work against the same challenge.
  if (used_)
    return Error(EPROTO, "relay challenge already answered (a fresh challenge is needed)");
  used_ = true;
  crypto::SharedSecret shared;
  if (!crypto::x25519(ephemeral_, node, shared))
    return Error(EINVAL,
                 "relay authentication: node key " + node.to_base64() + " is a low-order point");
  const Proof want = compute_proof(shared, challenge_, node);
  if (!constant_time_equal(want, proof)) {
    return Error(EACCES, "relay authentication failed for " + node.to_base64() +
                             ": the proof does not match this challenge and key");
  }
  ephemeral_.clear();  // no further use
  return node;
}

void StatelessChallenger::rotate(MonoTime now) {
  const std::int64_t index = now.time_since_epoch() / kRotation;
  if (index == current_.index)
    return;
  if (index == current_.index + 1)
    previous_ = current_;
  else
    previous_ = Epoch{};  // more than one epoch passed (or the first call): nothing to keep
  current_.index = index;
  random_.fill(current_.secret.span());
  current_.key = crypto::generate_private_key(random_);
  current_.pub = crypto::derive_public_key(current_.key);
}

Challenge StatelessChallenger::cookie(const Epoch& epoch, ConstBytes source) {
  std::vector<std::uint8_t> msg(kCookieLabel.begin(), kCookieLabel.end());
  msg.insert(msg.end(), source.begin(), source.end());
  Challenge c{};
  crypto::blake2s_keyed(epoch.secret.span(), msg, c);
  return c;
}

std::vector<std::uint8_t> StatelessChallenger::challenge(ConstBytes source, MonoTime now) {
  rotate(now);
  return encode_key_pair(FrameType::kChallenge, current_.pub, cookie(current_, source));
}

Result<crypto::PublicKey> StatelessChallenger::verify(ConstBytes source, const Frame& f,
                                                      MonoTime now) {
  if (f.type != FrameType::kUdpAuth)
    return Error(EINVAL, "relay authentication over UDP wants a udp-auth frame");
  rotate(now);
  const Epoch* epoch = nullptr;
  for (const Epoch* e : {&current_, &previous_}) {
    // Both epochs are always computed and compared, so the time taken does not say which one
    // (if any) matched.
    const bool match = e->index >= 0 && constant_time_equal(cookie(*e, source), f.cookie);
    if (match && epoch == nullptr)
      epoch = e;
  }
  if (epoch == nullptr)
    return Error(EACCES, "relay authentication over UDP: stale or forged cookie");
  crypto::SharedSecret shared;
  if (!crypto::x25519(epoch->key, f.key, shared))
    return Error(EINVAL,
                 "relay authentication: node key " + f.key.to_base64() + " is a low-order point");
  const Proof want = compute_proof(shared, f.cookie, f.key);
  if (!constant_time_equal(want, f.challenge)) {
    return Error(EACCES, "relay authentication failed for " + f.key.to_base64() +
                             ": the proof does not match this challenge and key");
  }
  return f.key;
}

Result<Proof> prove(const crypto::PrivateKey& node_private, const crypto::PublicKey& node_public,
                    const crypto::PublicKey& challenge_key, const Challenge& challenge) {
  crypto::SharedSecret shared;
  if (!crypto::x25519(node_private, challenge_key, shared))
    return Error(EINVAL, "relay challenge key is a low-order point (refusing to answer)");
  return compute_proof(shared, challenge, node_public);
}

Result<std::optional<Frame>> StreamReader::next(ConstBytes& in) {
  if (error_)
    return *error_;
  if (release_) {
    release_ = false;
    buffer_.clear();
    if (buffer_.capacity() > 16 * 1024)
      std::vector<std::uint8_t>().swap(buffer_);  // do not keep 64 KiB per idle stream
  }
  auto fail = [&](Error e) -> Result<std::optional<Frame>> {
    error_ = e;
    return e;
  };

  // Fast path: nothing buffered and a whole frame in the input.
  if (buffer_.empty() && in.size() >= kHeaderSize) {
    auto len = check_header(in.data());
    if (!len)
      return fail(std::move(len).error());
    if (in.size() >= kHeaderSize + *len) {
      auto f = decode_body(static_cast<FrameType>(in[0]), in.subspan(kHeaderSize, *len));
      if (!f)
        return fail(std::move(f).error());
      in = in.subspan(kHeaderSize + *len);
      return std::optional<Frame>(std::move(*f));
    }
  }

  // Gather: the header first, then exactly the body it announces, never more.
  auto take = [&](std::size_t want) {
    const std::size_t n = std::min(want - buffer_.size(), in.size());
    buffer_.insert(buffer_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
    in = in.subspan(n);
  };
  if (buffer_.size() < kHeaderSize) {
    take(kHeaderSize);
    if (buffer_.size() < kHeaderSize)
      return std::optional<Frame>();
  }
  auto len = check_header(buffer_.data());
  if (!len)
    return fail(std::move(len).error());
  const std::size_t total = kHeaderSize + *len;
  buffer_.reserve(total);
  take(total);
  if (buffer_.size() < total)
    return std::optional<Frame>();
  auto f =
      decode_body(static_cast<FrameType>(buffer_[0]), ConstBytes(buffer_).subspan(kHeaderSize));
  if (!f)
    return fail(std::move(f).error());
  release_ = true;
  return std::optional<Frame>(std::move(*f));
}

}  // namespace warren::mesh::relay
