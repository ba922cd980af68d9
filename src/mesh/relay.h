#pragma once
/// The relay protocol between a node and the coordinator's relay (docs/MESH.md, "Relay framing"):
/// frames, the node-authentication exchange, and a stream reader. Pure codec: no sockets, no
/// clocks; randomness is injected. The same frames travel one per datagram over UDP and back to
/// back over a TCP/TLS stream.
///
///   relay: Challenger::create ──challenge {challenge key E, 32 random bytes}──► node
///   node:  prove(node private, E, challenge) ──auth {node key, proof}──► relay
///   relay: Challenger::verify ──► the node's key (then: enrolled and not revoked? roster)
///          ──auth ok──► node
///   node ──send {destination key, WireGuard datagram}──► relay
///        ──recv {source key, WireGuard datagram}──► destination node
///   either side: ping {nonce} / pong {nonce}, keepalive, error {code, text}
///
/// Over UDP the relay keeps no state for a source before it proved a key (StatelessChallenger):
///
///   node ──hello (an auth frame of zeros, 68 bytes)──► relay (no state kept)
///   relay ──challenge {epoch key E, cookie = MAC(epoch secret, source)} (68 bytes)──► node
///   node ──udp-auth {node key, proof over the cookie, the cookie echoed}──► relay
///   relay: cookie fresh for this source? (cheap, constant time) ─► proof ─► bind the node
///
/// Frame: type (u8) | body length (u24, big-endian) | body. Every type has its two top bits set
/// (0xC1..0xCA), so a relay frame is never taken for a WireGuard message (type 1..4, three zero
/// bytes) nor for STUN (top two bits zero): the three can share the node's UDP socket.
///
/// Proof of key possession (mirrors enrollment's): with E the relay's ephemeral X25519 public
/// key, fresh per challenge,
///   proof = BLAKE2s-256(key = X25519(node private, E), "warren relay v1" || challenge || node key)
/// The relay computes the same with X25519(e, node key); only the holder of the node's private
/// key can. A challenge answers once (replays and proofs for other challenges are refused).
///
/// Errors: decoding returns EBADMSG naming the first problem (too short, unknown type, a body
/// length that does not fit the type or the datagram, an empty or oversized datagram, a non-ASCII
/// error text); authentication EACCES (proof does not match), EPROTO (challenge already used),
/// EINVAL (low-order key).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/result.h"
#include "base/secure.h"
#include "base/time.h"
#include "crypto/x25519.h"

namespace warren::mesh::relay {

enum class FrameType : std::uint8_t {
  kChallenge = 0xC1,  ///< relay → node: challenge key (32) | challenge (32)
  kAuth = 0xC2,       ///< node → relay: node public key (32) | proof (32)
  kAuthOk = 0xC3,     ///< relay → node: empty; the node may send data frames now
  kSend = 0xC4,       ///< node → relay: destination public key (32) | WireGuard datagram
  kRecv = 0xC5,       ///< relay → node: source public key (32) | WireGuard datagram
  kPing = 0xC6,       ///< either way: nonce (u64); answered with a pong carrying it
  kPong = 0xC7,       ///< either way: the ping's nonce (u64)
  kKeepalive = 0xC8,  ///< either way: empty; keeps NAT and idle-timeout state alive, no answer
  kError = 0xC9,      ///< either way: code (u16) | text (0..kMaxErrorText printable ASCII)
  kUdpAuth = 0xCA,    ///< node → relay over UDP: node key (32) | proof (32) | cookie echoed (32)
};

/// Codes of error frames. The receiver of an unknown code treats it as kProtocol.
enum class ErrorCode : std::uint16_t {
  kProtocol = 1,            ///< malformed or unexpected frame; the stream is closed
  kAuthRequired = 2,        ///< a data frame before authentication
  kAuthFailed = 3,          ///< the proof did not match
  kNotEnrolled = 4,         ///< the key is not in the roster, or revoked
  kUnknownDestination = 5,  ///< no such node, or not connected to the relay
  kRateLimited = 6,         ///< over the per-node rate; frames are being dropped
  kTooLarge = 7,            ///< a datagram over what this transport carries
  kShuttingDown = 8,        ///< the relay is going away; reconnect later
};

inline constexpr std::size_t kHeaderSize = 4;
inline constexpr std::size_t kKeySize = crypto::kKeySize;
inline constexpr std::size_t kChallengeSize = 32;
inline constexpr std::size_t kProofSize = 32;
/// WireGuard datagrams up to the engine's limit (platform::kMaxPacketSize, the path seam's).
inline constexpr std::size_t kMaxDatagram = 65535;
inline constexpr std::size_t kMaxErrorText = 256;
/// The largest frame: a send/recv header and the largest datagram.
inline constexpr std::size_t kDataHeaderSize = kHeaderSize + kKeySize;
inline constexpr std::size_t kMaxFrameSize = kDataHeaderSize + kMaxDatagram;
/// The label hashed into every proof: binds it to this protocol and version.
inline constexpr std::string_view kProofLabel = "warren relay v1";

using Challenge = std::array<std::uint8_t, kChallengeSize>;
using Proof = std::array<std::uint8_t, kProofSize>;

/// A decoded frame. Which fields mean something depends on `type` (see FrameType); the others
/// keep their defaults. `datagram` is a view into the bytes decoded: valid while they are.
struct Frame {
  FrameType type = FrameType::kKeepalive;
  crypto::PublicKey key;    ///< challenge: challenge key; auth: node; send: to; recv: from
  Challenge challenge{};    ///< challenge: the challenge; auth, udp-auth: the proof
  Challenge cookie{};       ///< udp-auth: the challenge (cookie) it answers, echoed
  ConstBytes datagram;      ///< send, recv: the WireGuard datagram (1..kMaxDatagram bytes)
  std::uint64_t nonce = 0;  ///< ping, pong
  std::uint16_t error = 0;  ///< error: the code (an ErrorCode, or unknown)
  std::string text;         ///< error: printable ASCII, at most kMaxErrorText
};

/// True if `datagram` starts like a relay frame (type 0xC1..0xCA): the cheap test for the
/// shared UDP socket; decode_frame does the full check.
[[nodiscard]] bool is_relay(ConstBytes datagram);

/// Decodes exactly one frame (a UDP datagram): the header's length must be the rest of it.
[[nodiscard]] Result<Frame> decode_frame(ConstBytes datagram);

/// The bytes of `frame`. EMSGSIZE for an empty or oversized datagram, EINVAL for an error text
/// that is too long or not printable ASCII.
[[nodiscard]] Result<std::vector<std::uint8_t>> encode_frame(const Frame& frame);

/// Writes the 36-byte header of a send or recv frame carrying a datagram of `datagram_size`
/// bytes, for a transport that sends header and datagram as two iovecs (no copy of the
/// datagram). EINVAL for another type, EMSGSIZE for a size of 0 or above kMaxDatagram.
[[nodiscard]] Status write_data_header(std::span<std::uint8_t, kDataHeaderSize> out, FrameType type,
                                       const crypto::PublicKey& peer, std::size_t datagram_size);

// Convenience encoders for the fixed-size frames (they cannot fail).
[[nodiscard]] std::vector<std::uint8_t> encode_auth(const crypto::PublicKey& node,
                                                    const Proof& proof);
/// The UDP answer to a StatelessChallenger's challenge: 100 bytes.
[[nodiscard]] std::vector<std::uint8_t> encode_udp_auth(const crypto::PublicKey& node,
                                                        const Proof& proof,
                                                        const Challenge& cookie);
/// A UDP source's opening datagram: an auth frame of zeros, 68 bytes (the size of the challenge
/// it asks for, so a forged source address gains no amplification).
[[nodiscard]] std::vector<std::uint8_t> encode_udp_hello();
/// True for an auth frame whose key and proof are all zeros (a hello).
[[nodiscard]] bool is_udp_hello(const Frame& frame);
[[nodiscard]] std::vector<std::uint8_t> encode_simple(FrameType type);  ///< auth ok, keepalive
[[nodiscard]] std::vector<std::uint8_t> encode_ping(FrameType type, std::uint64_t nonce);
/// An error frame; `text` is cut to kMaxErrorText and non-printable bytes become '?'.
[[nodiscard]] std::vector<std::uint8_t> encode_error(ErrorCode code, std::string_view text);

/// The relay's side of authentication: one per connection (TCP) or per source address (UDP),
/// discarded after one answer. Holds the ephemeral private key, wiped on destruction.
class Challenger {
 public:
  /// A fresh ephemeral key pair and challenge from `random` (production: the CSPRNG).
  [[nodiscard]] static Challenger create(RandomSource& random);

  const crypto::PublicKey& challenge_key() const { return key_; }
  const Challenge& challenge() const { return challenge_; }
  /// The challenge frame to send.
  [[nodiscard]] std::vector<std::uint8_t> frame() const;

  /// Checks an auth frame's node key and proof; on success returns the node's key, which the
  /// caller then looks up in the roster (enrolled, not revoked). Single use: any second call
  /// fails with EPROTO, whatever it carries. EACCES if the proof does not match (another key,
  /// another challenge, a forged proof), EINVAL for a low-order node key.
  [[nodiscard]] Result<crypto::PublicKey> verify(const crypto::PublicKey& node, const Proof& proof);

 private:
  Challenger() = default;

  crypto::PrivateKey ephemeral_;
  crypto::PublicKey key_;
  Challenge challenge_{};
  bool used_ = false;
};

/// The relay's side of authentication over UDP, keeping no state per source until a key is
/// proven (as WireGuard's cookie reply and QUIC's retry do). Time is split into epochs of
/// kRotation; each has a random 32-byte secret and an X25519 key pair (e, E), both drawn when
/// the epoch starts and wiped when it is two epochs old. A hello from `source` (its address and
/// port, as bytes) gets the challenge frame {E, cookie} with
///   cookie = keyed BLAKE2s-256(epoch secret, "warren relay cookie v1" || source),
/// 68 bytes, the size of the hello. A udp-auth frame is checked in two steps: its echoed cookie
/// must be this source's under the current or the previous epoch's secret (constant-time
/// compare; a forged source address never sees its cookie), and only then is the proof over
/// that cookie checked with the epoch's e, as Challenger::verify does. So a cookie is good for
/// 2 to 4 minutes from the source that asked for it; re-sending the same answer from the same
/// source within that time proves the same key for the same address again (harmless: that is
/// where the node already is). Thread-compatible.
class StatelessChallenger {
 public:
  static constexpr Duration kRotation = std::chrono::minutes(2);
  static constexpr std::string_view kCookieLabel = "warren relay cookie v1";

  /// `random` (production: the CSPRNG) must outlive this.
  explicit StatelessChallenger(RandomSource& random) : random_(random) {}

  /// The challenge frame for a hello from `source` (68 bytes).
  [[nodiscard]] std::vector<std::uint8_t> challenge(ConstBytes source, MonoTime now);

  /// Checks a udp-auth frame from `source`. EACCES "stale or forged cookie" when the echoed
  /// cookie is not this source's under the current or previous epoch (nothing else is done:
  /// no X25519); then as Challenger::verify (EACCES: the proof does not match, EINVAL: a
  /// low-order node key). EINVAL for another frame type.
  [[nodiscard]] Result<crypto::PublicKey> verify(ConstBytes source, const Frame& frame,
                                                 MonoTime now);

 private:
  struct Epoch {
    std::int64_t index = -1;  // -1: none
    Secret<32> secret;
    crypto::PrivateKey key;
    crypto::PublicKey pub;
  };
  void rotate(MonoTime now);
  static Challenge cookie(const Epoch& epoch, ConstBytes source);

  RandomSource& random_;
  Epoch current_;
  Epoch previous_;
};

/// The node's side: the proof for `challenge` under `challenge_key`. EINVAL if the challenge key
/// is a low-order point (X25519 gives all zeros: a hostile relay, refuse it).
[[nodiscard]] Result<Proof> prove(const crypto::PrivateKey& node_private,
                                  const crypto::PublicKey& node_public,
                                  const crypto::PublicKey& challenge_key,
                                  const Challenge& challenge);

/// Turns a byte stream (TCP, TLS) back into frames, however the bytes were split:
///
///   ConstBytes in(buffer, n);                      // what one read returned
///   for (;;) {
///     auto f = reader.next(in);                    // consumes from `in`
///     if (!f) { close the stream; break; }         // corrupt: no way to resynchronise
///     if (!*f) break;                              // `in` used up; a partial frame is kept
///     handle(**f);
///   }
///
/// A frame that lies whole in `in` is returned as a view into it (no copy); one split across
/// reads is gathered in an internal buffer that holds at most that one frame (kMaxFrameSize),
/// sized by the frame's own header, so memory per stream stays bounded whatever the peer sends.
/// Views in a returned frame are valid until the next call or until `in`'s bytes change. Errors
/// are those of decode_frame, and sticky. Thread-compatible.
class StreamReader {
 public:
  [[nodiscard]] Result<std::optional<Frame>> next(ConstBytes& in);
  /// Bytes of a partial frame held between reads.
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::vector<std::uint8_t> buffer_;
  bool release_ = false;  // buffer_ held the frame last returned: clear it on the next call
  std::optional<Error> error_;
};

}  // namespace warren::mesh::relay
