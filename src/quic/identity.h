#pragma once
/// TLS identities for QUIC (GnuTLS): the server's certificate and key, and the client's pin.
///
/// Trust works as on the control channel (control/tls.h): no CA and no host name; the client
/// pins the SHA-256 of the server certificate's DER encoding, the same `Fingerprint` the
/// invite carries, so the control channel's self-signed certificate serves QUIC unchanged.
/// TLS 1.3 proves the server holds the certificate's key (CertificateVerify).

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/result.h"

namespace warren::quic {

/// SHA-256 of a DER certificate (the same type as control::Fingerprint).
using Fingerprint = std::array<std::uint8_t, 32>;

/// The ALPN protocol both ends require (RFC 9001 §8.1: QUIC always negotiates one).
inline constexpr std::string_view kAlpn = "warren-quic/1";

/// The server's certificate and private key, parsed once and shared by every connection.
/// Immutable after creation; safe to share between threads.
class ServerIdentity {
 public:
  /// From a PEM certificate and a PEM private key held in memory (the control channel's files:
  /// an EC P-256 key, any key GnuTLS reads works). EINVAL when either does not parse or they
  /// do not match.
  [[nodiscard]] static Result<std::shared_ptr<const ServerIdentity>> from_pem(
      std::string_view cert_pem, std::string_view key_pem);
  ~ServerIdentity();
  ServerIdentity(const ServerIdentity&) = delete;
  ServerIdentity& operator=(const ServerIdentity&) = delete;

  /// SHA-256 of the certificate's DER: what clients pin.
  const Fingerprint& fingerprint() const { return fingerprint_; }

  /// The GnuTLS certificate credentials (gnutls_certificate_credentials_t), for src/quic.
  void* credentials() const { return cred_; }

 private:
  ServerIdentity() = default;
  void* cred_ = nullptr;
  Fingerprint fingerprint_{};
};

/// SHA-256 of `der` (GnuTLS), for computing a pin from a certificate.
[[nodiscard]] Fingerprint sha256(std::span<const std::uint8_t> der);

}  // namespace warren::quic
