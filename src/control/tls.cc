// TLS 1.3 control channel over non-blocking TCP (see tls.h).

#include "control/tls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/encoding.h"
#include "base/secure.h"
#include "platform/files.h"

namespace warren::control {
namespace {

std::string ssl_error_text() {
  unsigned long e = ERR_get_error();
  if (e == 0)
    return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

/// Waits for the connection as OpenSSL asked, or throws naming what we were doing.
void wait_for(platform::TcpConnection& c, platform::TcpConnection::Ready what, Deadline deadline,
              const char* doing) {
  if (auto st = c.wait(what, deadline); !st) {
    if (st.code() == ETIMEDOUT)
      throw ControlError(std::string("timed out ") + doing);
    throw ControlError(std::string("connection lost while ") + doing + ": " + st.message());
  }
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

Fingerprint cert_fingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0)
    throw ControlError("cannot encode certificate: " + ssl_error_text());
  Fingerprint f = sha256(std::span<const std::uint8_t>(der, static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return f;
}

std::string read_file(const std::string& path) {
  auto text = platform::read_file(path);
  if (!text)
    throw ControlError(path + ": cannot read: " + text.message());
  return std::move(*text);
}

void write_new_file(const std::string& path, std::string_view data, unsigned mode) {
  if (auto st = platform::create_file(path, data, mode); !st)
    throw ControlError(path + ": cannot create: " + st.message());
}

/// Whether `path` exists; other failures than "missing" are reported, naming the file.
bool file_exists(const std::string& path) {
  auto info = platform::file_info(path);
  if (info)
    return true;
  if (info.code() == ENOENT)
    return false;
  throw ControlError(path + ": " + info.message());
}

std::string bio_string(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<std::size_t>(n));
}

ExporterValue export_from(SSL* ssl, std::string_view label) {
  ExporterValue out;
  const std::string l(label);
  if (SSL_export_keying_material(ssl, out.data(), out.size(), l.data(), l.size(), nullptr, 0,
                                 /*use_context=*/0) != 1)
    throw ControlError("cannot derive the TLS exporter value: " + ssl_error_text());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hashes and encodings

Fingerprint sha256(std::span<const std::uint8_t> data) {
  Fingerprint out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    throw ControlError("SHA-256 failed");
  return out;
}

std::string fingerprint_to_hex(const Fingerprint& f) {
  return to_hex(f);
}

std::optional<Fingerprint> fingerprint_from_hex(std::string_view text) {
  Fingerprint f{};
  if (!from_hex(text, f))
    return std::nullopt;
  return f;
}

// ---------------------------------------------------------------------------------------------
// Identity

struct TlsServerSession::Impl {
  platform::TcpConnection conn;
  SslPtr ssl;
  bool client_hello_received = false;
  bool close_notify_sent = false;
};

namespace {

/// Marks the session whose ClientHello has just been parsed (SSL_CTX_set_client_hello_cb):
/// the enrollment server gives a new connection ~2 s to get this far.
int on_client_hello(SSL* ssl, int*, void*) {
  if (auto* impl = static_cast<TlsServerSession::Impl*>(SSL_get_app_data(ssl)))
    impl->client_hello_received = true;
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

struct TlsIdentity::Impl {
  X509Ptr cert;
  PkeyPtr key;
  Fingerprint fingerprint{};
  SslCtxPtr server_ctx;
};

namespace {

std::shared_ptr<TlsIdentity::Impl> make_impl(X509Ptr cert, PkeyPtr key, const std::string& where) {
  auto impl = std::make_shared<TlsIdentity::Impl>();
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    throw ControlError(where + ": the certificate does not match the private key");
  impl->fingerprint = cert_fingerprint(cert.get());
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_client_hello_cb(ctx.get(), on_client_hello, nullptr);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  impl->cert = std::move(cert);
  impl->key = std::move(key);
  impl->server_ctx = std::move(ctx);
  return impl;
}

std::pair<X509Ptr, PkeyPtr> generate_pair() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key)
    throw ControlError("cannot generate TLS key: " + ssl_error_text());
  X509Ptr cert(X509_new());
  std::array<unsigned char, 16> serial{};
  if (!cert || RAND_bytes(serial.data(), serial.size()) != 1)
    throw ControlError("cannot create certificate: " + ssl_error_text());
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial.data(), serial.size(), nullptr);
  ASN1_INTEGER* sn = X509_get_serialNumber(cert.get());
  bool ok = bn && BN_to_ASN1_INTEGER(bn, sn) != nullptr;
  BN_free(bn);
  X509_NAME* name = X509_get_subject_name(cert.get());
  ok = ok && X509_set_version(cert.get(), 2) == 1 &&
       X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
       X509_time_adj_ex(X509_getm_notAfter(cert.get()), 365 * 50, 0, nullptr) != nullptr &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("warren enrollment"), -1,
                                  -1, 0) == 1 &&
       X509_set_issuer_name(cert.get(), name) == 1 && X509_set_pubkey(cert.get(), key.get()) == 1 &&
       X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok)
    throw ControlError("cannot create certificate: " + ssl_error_text());
  return {std::move(cert), std::move(key)};
}

}  // namespace

TlsIdentity TlsIdentity::generate() {
  auto [cert, key] = generate_pair();
  TlsIdentity id;
  id.impl_ = make_impl(std::move(cert), std::move(key), "generated identity");
  return id;
}

TlsIdentity TlsIdentity::load_or_create(const std::string& cert_path, const std::string& key_path) {
  const bool have_cert = file_exists(cert_path);
  const bool have_key = file_exists(key_path);
  if (have_cert != have_key)
    throw ControlError((have_cert ? key_path : cert_path) + ": missing (while " +
                       (have_cert ? cert_path : key_path) +
                       " exists); restore it or delete both to make a new certificate "
                       "(invites issued so far then stop working)");
  if (!have_cert) {
    auto [cert, key] = generate_pair();
    BioPtr kb(BIO_new(BIO_s_mem())), cb(BIO_new(BIO_s_mem()));
    if (!kb || !cb ||
        PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
        PEM_write_bio_X509(cb.get(), cert.get()) != 1)
      throw ControlError("cannot encode certificate: " + ssl_error_text());
    std::string key_pem = bio_string(kb.get());
    write_new_file(key_path, key_pem, 0600);
    secure_zero(key_pem.data(), key_pem.size());
    write_new_file(cert_path, bio_string(cb.get()), 0644);
    TlsIdentity id;
    id.impl_ = make_impl(std::move(cert), std::move(key), cert_path);
    return id;
  }
  return load(cert_path, key_path);
}

TlsIdentity TlsIdentity::load(const std::string& cert_path, const std::string& key_path) {
  std::string key_pem = read_file(key_path);
  std::string cert_pem = read_file(cert_path);
  BioPtr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  BioPtr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  PkeyPtr key(kb ? PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr) : nullptr);
  secure_zero(key_pem.data(), key_pem.size());
  if (!key)
    throw ControlError(key_path + ": not a PEM private key");
  X509Ptr cert(cb ? PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert)
    throw ControlError(cert_path + ": not a PEM certificate");
  TlsIdentity id;
  id.impl_ = make_impl(std::move(cert), std::move(key), cert_path);
  return id;
}

const Fingerprint& TlsIdentity::fingerprint() const {
  return impl_->fingerprint;
}

// ---------------------------------------------------------------------------------------------
// Stream

struct TlsStream::Impl {
  std::shared_ptr<platform::TcpConnection> conn;
  SslCtxPtr ctx;  // client side only
  SslPtr ssl;
  ~Impl() {
    ssl.reset();
    if (conn)
      conn->close();
  }

  /// Runs an SSL call until it makes progress, waiting for the socket as OpenSSL asks.
  template <typename F>
  int call(F f, Deadline deadline, const char* what) {
    for (;;) {
      ERR_clear_error();
      int r = f();
      if (r > 0)
        return r;
      int e = SSL_get_error(ssl.get(), r);
      if (e == SSL_ERROR_WANT_READ) {
        wait_for(*conn, platform::TcpConnection::Ready::kRead, deadline, what);
      } else if (e == SSL_ERROR_WANT_WRITE) {
        wait_for(*conn, platform::TcpConnection::Ready::kWrite, deadline, what);
      } else if (e == SSL_ERROR_ZERO_RETURN) {
        throw ControlError(std::string("connection closed by the peer while ") + what);
      } else if (e == SSL_ERROR_SYSCALL) {
        throw ControlError(std::string("connection lost while ") + what);
      } else {
        throw ControlError(std::string("TLS failure while ") + what + ": " + ssl_error_text());
      }
    }
  }
};

TlsStream::TlsStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  platform::ignore_sigpipe();
}
TlsStream::~TlsStream() = default;

std::unique_ptr<TlsStream> TlsStream::connect(std::string_view host, std::uint16_t port,
                                              const Fingerprint& pin, Deadline deadline) {
  platform::ignore_sigpipe();
  const std::string where = std::string(host) + ":" + std::to_string(port);
  auto conn = platform::tcp_connect(host, port, deadline);
  if (!conn) {
    if (conn.code() == ETIMEDOUT)
      throw ControlError("cannot connect to " + where + ": timed out connecting");
    throw ControlError("cannot connect to " + where + ": " + conn.message());
  }
  auto impl = std::make_unique<Impl>();
  impl->conn = std::make_shared<platform::TcpConnection>(std::move(*conn));

  impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!impl->ctx || SSL_CTX_set_min_proto_version(impl->ctx.get(), TLS1_3_VERSION) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  // No CA chain: the certificate is checked against the pinned fingerprint below.
  SSL_CTX_set_verify(impl->ctx.get(), SSL_VERIFY_NONE, nullptr);
  impl->ssl.reset(SSL_new(impl->ctx.get()));
  if (!impl->ssl || SSL_set_fd(impl->ssl.get(), impl->conn->native_handle()) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  SSL* ssl = impl->ssl.get();
  impl->call([&] { return SSL_connect(ssl); }, deadline, "in the TLS handshake");
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (!peer)
    throw ControlError("the server sent no certificate");
  Fingerprint got = cert_fingerprint(peer);
  if (!constant_time_equal(got, pin))
    throw ControlError("the server's certificate fingerprint " + fingerprint_to_hex(got) +
                       " does not match the invite's " + fingerprint_to_hex(pin) +
                       " (wrong server, or the server's certificate was replaced)");
  return std::make_unique<TlsStream>(std::move(impl));
}

void TlsStream::read_exact(std::span<std::uint8_t> out, Deadline deadline) {
  std::size_t off = 0;
  SSL* ssl = impl_->ssl.get();
  while (off < out.size()) {
    int n = impl_->call(
        [&] {
          return SSL_read(ssl, out.data() + off,
                          static_cast<int>(std::min<std::size_t>(out.size() - off, 1 << 20)));
        },
        deadline, "reading");
    off += static_cast<std::size_t>(n);
  }
}

std::size_t TlsStream::read_available(std::span<std::uint8_t> out, Deadline deadline) {
  SSL* ssl = impl_->ssl.get();
  for (;;) {
    ERR_clear_error();
    const int r =
        SSL_read(ssl, out.data(), static_cast<int>(std::min<std::size_t>(out.size(), 1 << 20)));
    if (r > 0)
      return static_cast<std::size_t>(r);
    const int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
      return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
      wait_for(*impl_->conn, platform::TcpConnection::Ready::kWrite, deadline, "reading");
      continue;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
      throw ControlError("connection closed by the peer while reading");
    if (e == SSL_ERROR_SYSCALL)
      throw ControlError("connection lost while reading");
    throw ControlError("TLS failure while reading: " + ssl_error_text());
  }
}

int TlsStream::native_handle() const {
  return impl_->conn ? impl_->conn->native_handle() : -1;
}

void TlsStream::write_all(std::span<const std::uint8_t> data, Deadline deadline) {
  std::size_t off = 0;
  SSL* ssl = impl_->ssl.get();
  while (off < data.size()) {
    int n = impl_->call(
        [&] {
          return SSL_write(ssl, data.data() + off,
                           static_cast<int>(std::min<std::size_t>(data.size() - off, 1 << 20)));
        },
        deadline, "writing");
    off += static_cast<std::size_t>(n);
  }
}

void TlsStream::close(Deadline deadline) noexcept {
  if (!impl_->ssl)
    return;
  try {
    SSL* ssl = impl_->ssl.get();
    ERR_clear_error();
    int r = SSL_shutdown(ssl);
    if (r < 0) {
      int e = SSL_get_error(ssl, r);
      if (e == SSL_ERROR_WANT_WRITE) {
        wait_for(*impl_->conn, platform::TcpConnection::Ready::kWrite, deadline, "closing");
        (void)SSL_shutdown(ssl);
      }
    }
  } catch (...) {
  }
  ERR_clear_error();
}

void TlsStream::shutdown() noexcept {
  if (impl_->conn)
    impl_->conn->shutdown();
}

void TlsStream::write_frame(std::string_view payload, Deadline deadline) {
  std::vector<std::uint8_t> buf(4 + payload.size());
  const auto n = static_cast<std::uint32_t>(payload.size());
  buf[0] = static_cast<std::uint8_t>(n >> 24);
  buf[1] = static_cast<std::uint8_t>(n >> 16);
  buf[2] = static_cast<std::uint8_t>(n >> 8);
  buf[3] = static_cast<std::uint8_t>(n);
  std::memcpy(buf.data() + 4, payload.data(), payload.size());
  write_all(buf, deadline);
}

std::string TlsStream::read_frame(std::size_t max_bytes, Deadline deadline) {
  std::array<std::uint8_t, 4> h{};
  read_exact(h, deadline);
  const std::uint32_t n =
      std::uint32_t{h[0]} << 24 | std::uint32_t{h[1]} << 16 | std::uint32_t{h[2]} << 8 | h[3];
  if (n > max_bytes)
    throw ControlError("message of " + std::to_string(n) + " bytes exceeds the limit of " +
                       std::to_string(max_bytes));
  std::string s(n, '\0');
  read_exact(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(s.data()), n), deadline);
  return s;
}

ExporterValue TlsStream::export_keying_material(std::string_view label) const {
  return export_from(impl_->ssl.get(), label);
}

// ---------------------------------------------------------------------------------------------
// Server session (event loop)

TlsServerSession::TlsServerSession(const TlsIdentity& identity, platform::TcpConnection connection)
    : impl_(std::make_unique<Impl>()) {
  platform::ignore_sigpipe();
  impl_->conn = std::move(connection);
  impl_->ssl.reset(SSL_new(identity.impl()->server_ctx.get()));
  if (!impl_->ssl || SSL_set_fd(impl_->ssl.get(), impl_->conn.native_handle()) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  SSL_set_app_data(impl_->ssl.get(), impl_.get());
  SSL_set_mode(impl_->ssl.get(), SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_accept_state(impl_->ssl.get());
}

TlsServerSession::~TlsServerSession() {
  impl_->ssl.reset();
  impl_->conn.close();
}

int TlsServerSession::native_handle() const {
  return impl_->conn.native_handle();
}

bool TlsServerSession::client_hello_received() const {
  return impl_->client_hello_received;
}

TlsServerSession::Io TlsServerSession::result(int ret, const char* what) {
  const int e = SSL_get_error(impl_->ssl.get(), ret);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return Io::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Io::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      return Io::kClosed;
    case SSL_ERROR_SYSCALL:
      failure_ = std::string("connection lost while ") + what;
      ERR_clear_error();
      return Io::kFailed;
    default:
      failure_ = std::string("TLS failure while ") + what + ": " + ssl_error_text();
      ERR_clear_error();
      return Io::kFailed;
  }
}

TlsServerSession::Io TlsServerSession::handshake() {
  ERR_clear_error();
  const int r = SSL_do_handshake(impl_->ssl.get());
  return r == 1 ? Io::kDone : result(r, "in the TLS handshake");
}

TlsServerSession::Io TlsServerSession::read_to(std::string& buffer, std::size_t total) {
  std::array<char, 4096> chunk{};
  while (buffer.size() < total) {
    ERR_clear_error();
    const int want = static_cast<int>(std::min(chunk.size(), total - buffer.size()));
    const int r = SSL_read(impl_->ssl.get(), chunk.data(), want);
    if (r <= 0)
      return result(r, "reading");
    buffer.append(chunk.data(), static_cast<std::size_t>(r));
  }
  secure_zero(chunk.data(), chunk.size());  // may hold a piece of an invite secret
  return Io::kDone;
}

TlsServerSession::Io TlsServerSession::write_from(std::string_view data, std::size_t& offset) {
  while (offset < data.size()) {
    ERR_clear_error();
    const int n = static_cast<int>(std::min<std::size_t>(data.size() - offset, 1 << 20));
    const int r = SSL_write(impl_->ssl.get(), data.data() + offset, n);
    if (r <= 0)
      return result(r, "writing");
    offset += static_cast<std::size_t>(r);
  }
  return Io::kDone;
}

TlsServerSession::Io TlsServerSession::drain() {
  std::array<char, 512> chunk{};
  for (;;) {
    ERR_clear_error();
    const int r = SSL_read(impl_->ssl.get(), chunk.data(), static_cast<int>(chunk.size()));
    if (r <= 0)
      return result(r, "closing");
  }
}

void TlsServerSession::send_close_notify() noexcept {
  if (impl_->close_notify_sent)
    return;
  impl_->close_notify_sent = true;
  ERR_clear_error();
  (void)SSL_shutdown(impl_->ssl.get());  // a full socket buffer just loses the alert
  ERR_clear_error();
}

ExporterValue TlsServerSession::export_keying_material(std::string_view label) const {
  return export_from(impl_->ssl.get(), label);
}

}  // namespace warren::control
