#include "quic/identity.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <string>

#include "base/secure.h"

namespace warren::quic {

Fingerprint sha256(std::span<const std::uint8_t> der) {
  Fingerprint out{};
  gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data(), der.size(), out.data());
  return out;
}

Result<std::shared_ptr<const ServerIdentity>> ServerIdentity::from_pem(std::string_view cert_pem,
                                                                       std::string_view key_pem) {
  std::shared_ptr<ServerIdentity> id(new ServerIdentity());
  gnutls_certificate_credentials_t cred = nullptr;
  if (gnutls_certificate_allocate_credentials(&cred) != GNUTLS_E_SUCCESS)
    return Error(ENOMEM, "quic: cannot allocate certificate credentials");
  id->cred_ = cred;  // owned from here on (freed by the destructor)

  // GnuTLS reads the data but does not keep the pointers; it takes them as non-const.
  std::string cert(cert_pem), key(key_pem);
  gnutls_datum_t cert_d{reinterpret_cast<unsigned char*>(cert.data()),
                        static_cast<unsigned>(cert.size())};
  gnutls_datum_t key_d{reinterpret_cast<unsigned char*>(key.data()),
                       static_cast<unsigned>(key.size())};
  const int rc =
      gnutls_certificate_set_x509_key_mem2(cred, &cert_d, &key_d, GNUTLS_X509_FMT_PEM, nullptr, 0);
  // The PEM copy of the key is a secret; wipe it before the string frees it.
  secure_zero(key.data(), key.size());
  if (rc < 0)
    return Error(EINVAL, std::string("quic: certificate or key rejected: ") + gnutls_strerror(rc));

  gnutls_x509_crt_t crt = nullptr;
  if (gnutls_x509_crt_init(&crt) < 0)
    return Error(ENOMEM, "quic: cannot allocate a certificate");
  gnutls_datum_t der{};
  int r = gnutls_x509_crt_import(crt, &cert_d, GNUTLS_X509_FMT_PEM);
  if (r >= 0)
    r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
  gnutls_x509_crt_deinit(crt);
  if (r < 0)
    return Error(EINVAL, std::string("quic: certificate: ") + gnutls_strerror(r));
  id->fingerprint_ = sha256(std::span<const std::uint8_t>(der.data, der.size));
  gnutls_free(der.data);
  return std::shared_ptr<const ServerIdentity>(std::move(id));
}

ServerIdentity::~ServerIdentity() {
  if (cred_ != nullptr)
    gnutls_certificate_free_credentials(static_cast<gnutls_certificate_credentials_t>(cred_));
}

}  // namespace warren::quic
