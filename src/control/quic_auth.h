#pragma once
/// The QUIC transport's authentication and assignment messages (issue 15), on the connection's
/// first bidirectional stream, after the QUIC (TLS 1.3) handshake in which the client pinned
/// the server's certificate (the control channel's, as for enrollment):
///
///   client                                                    server
///   QUIC handshake (TLS 1.3, certificate pinned) ───────────► (no client certificate)
///   frame{"version":1,"type":"quic_hello",
///         "public_key":B64,"proof":B64}        ──stream 0──► parse_quic_hello ─► verify_quic_hello
///                                                             ─► registry: enrolled? revoked?
///                                              ◄──stream 0── assignment or error frame
///   WireGuard messages as QUIC DATAGRAM frames ◄────────────► (the engine's path seam)
///
/// Framing (both directions): a 4-byte big-endian length, then that many bytes of body (a JSON
/// object). Lengths above kMaxQuicFrameBytes (64 KiB) are a protocol error: the reader stops
/// and the connection is closed. FrameReader reassembles frames from a byte stream delivered in
/// arbitrary pieces (a frame split over several chunks, several frames in one chunk).
///
/// Proof of possession of the client's enrolled WireGuard key, bound to this QUIC connection:
///   dh    = X25519(client_private, server_static_public)   (all zero: refused at both ends)
///         = X25519(server_private, client_public)           (what the server computes)
///   proof = BLAKE2s-256 keyed with dh (RFC 7693 keyed mode, crypto/blake2s.h) over
///           "warren quic v1" || exporter (32 bytes) || client public key (32 bytes)
///   exporter = the TLS exporter of the QUIC connection (RFC 8446 §7.5, as for RFC 9001),
///              label "EXPORTER-warren-quic", no context, 32 bytes.
/// Why this and not a client certificate: the server already knows each client by its
/// WireGuard public key (the registry), and the enrollment and settings-session proofs
/// (control/enroll.h, control/session.h) use the same construction; a client certificate would
/// need a second per-client credential recorded at enrollment. Only the holder of the private
/// key can compute dh; the exporter differs on every connection (and on the two legs of a man
/// in the middle), so a proof seen once is useless on any other connection. The server's
/// static key is the one from the enrollment answer (it is no secret; its private half is the
/// server's WireGuard key). Unlike the enrollment proof there is no per-connection challenge
/// key: the exporter already makes the proof unique to the connection.
///
/// Server → client, one frame:
///   assignment: exactly the settings session's message, session_settings_to_json(Enrollment)
///               = {"version":2,"type":"settings","settings":{Enrollment JSON}}
///               (addresses, routes, DNS, MTU, ...; the client applies it as pushed settings)
///   error:      {"version":1,"type":"error","code":CODE,"message":TEXT}, then the server
///               closes the connection. CODE: "invalid_request" (a malformed hello),
///               "unsupported_version", "proof_invalid", "unknown_client" (no enrolled client
///               has this key), "revoked", "disabled", "busy", "internal".
///
/// Everything here is pure (no I/O); the QUIC connection (src/quic) and the runtime transport
/// move the bytes.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/secure.h"
#include "control/enroll.h"
#include "control/tls.h"
#include "crypto/x25519.h"

namespace warren::control {

inline constexpr int kQuicAuthVersion = 1;
/// Domain separation of the proof, and the exporter's label (see above).
inline constexpr std::string_view kQuicProofContext = "warren quic v1";
inline constexpr std::string_view kQuicExporterLabel = "EXPORTER-warren-quic";
inline constexpr std::size_t kQuicExporterBytes = 32;
/// The largest frame body either side accepts (an assignment is a few hundred bytes; a mesh
/// coordinator's is still far below).
inline constexpr std::size_t kMaxQuicFrameBytes = 64 * 1024;
inline constexpr std::size_t kQuicFrameHeaderBytes = 4;

using QuicProof = Secret<32>;

/// The client's first message.
struct QuicHello {
  crypto::PublicKey public_key;  ///< the client's WireGuard public key (never all zero)
  QuicProof proof;
};

/// The proof for this connection. EINVAL when X25519(client_private, server_public) is all
/// zero (a low-order server key: a broken or hostile enrollment answer). Wipes dh.
[[nodiscard]] Result<QuicProof> make_quic_proof(const crypto::PrivateKey& client_private,
                                                const crypto::PublicKey& server_public,
                                                const ExporterValue& exporter);

/// The hello's JSON body for this connection (errors as make_quic_proof).
[[nodiscard]] Result<std::string> make_quic_hello(const crypto::PrivateKey& client_private,
                                                  const crypto::PublicKey& server_public,
                                                  const ExporterValue& exporter);

/// Parses a hello body. EPROTONOSUPPORT for another "version" (answer "unsupported_version"),
/// EACCES for a missing or malformed "proof" (answer "proof_invalid"), EINVAL for anything else
/// (not JSON, not an object, wrong "type", a missing or all-zero "public_key"; answer
/// "invalid_request"). quic_error_code() maps the error to that code.
[[nodiscard]] Result<QuicHello> parse_quic_hello(std::string_view json);
/// The error code to answer a parse_quic_hello failure with.
[[nodiscard]] std::string_view quic_error_code(const Error& parse_error);

/// Server side: whether `hello.proof` was made by the holder of `hello.public_key`'s private
/// key on the connection whose exporter is `exporter`. Constant time in the proof; false when
/// X25519(server_private, public_key) is all zero. Wipes its intermediate secrets. Says nothing
/// on whether the key is enrolled (the caller asks the registry).
[[nodiscard]] bool verify_quic_hello(const crypto::PrivateKey& server_private,
                                     const ExporterValue& exporter, const QuicHello& hello);

/// The server's refusal (see the codes above).
[[nodiscard]] std::string quic_error_to_json(std::string_view code, std::string_view message);
/// The server's assignment: session_settings_to_json(assignment).
[[nodiscard]] std::string quic_assignment_to_json(const Enrollment& assignment);

/// What the server answered: an assignment or an error.
struct QuicServerMessage {
  std::optional<Enrollment> assignment;  ///< set for an assignment
  std::string error_code;                ///< set for an error ("internal" when it named none)
  std::string error_message;
};

/// Parses the server's frame body. EPROTO naming the problem for anything but a well-formed
/// assignment (as parse_session_message accepts a settings message) or error message.
[[nodiscard]] Result<QuicServerMessage> parse_quic_server_message(std::string_view json);

/// The frame for `body`: 4-byte big-endian length || body. EMSGSIZE when the body is longer
/// than kMaxQuicFrameBytes.
[[nodiscard]] Result<std::vector<std::uint8_t>> encode_frame(std::string_view body);

/// Reassembles frames from a stream's bytes. Feed every received chunk in order, then take the
/// complete frames with next() until it returns nullopt. After a length above the limit, the
/// reader is failed for good (every later feed returns the same error): the caller closes the
/// connection. Memory: what was fed and not yet taken, i.e. at most one partial frame plus the
/// last chunk when the caller drains after each feed. Not thread-safe.
class FrameReader {
 public:
  explicit FrameReader(std::size_t max_body = kMaxQuicFrameBytes) : max_body_(max_body) {}

  /// Appends `data`. EMSGSIZE (sticky) when a frame header announces more than max_body; the
  /// frames before it stay available from next().
  [[nodiscard]] Status feed(ConstBytes data);
  /// The next complete frame's body, or nullopt when none is complete yet.
  [[nodiscard]] std::optional<std::string> next();
  /// Bytes fed and not yet returned by next().
  std::size_t buffered() const { return buffer_.size() - start_; }
  /// A frame has begun and is not complete (the stream ending now would truncate it).
  bool partial() const { return buffered() != 0; }
  bool failed() const { return failed_; }

 private:
  /// Checks every complete header from scan_ on; stops at the first oversized one.
  void check_headers();

  std::size_t max_body_;
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;      ///< offset of the first byte not yet returned
  std::size_t scan_ = 0;       ///< offset of the next frame header not yet checked
  bool failed_ = false;        ///< the frame at scan_ is oversized
  std::size_t announced_ = 0;  ///< its announced length (for the error message)
};

}  // namespace warren::control
