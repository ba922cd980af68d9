// TLS 1.3 control channel over non-blocking TCP (see tls.h).

#include "control/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/encoding.h"
#include "base/secure.h"

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

std::string errno_text(int e) {
  return std::strerror(e);
}

/// OpenSSL writes to sockets with write(2), which raises SIGPIPE when the peer has gone; a
/// peer hanging up must never kill the process, so the first TLS stream ignores SIGPIPE
/// process-wide (the daemons do so anyway, see platform::TerminationSignals).
void ignore_sigpipe_once() {
  static const bool done = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

int remaining_ms(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0)
    return 0;
  return static_cast<int>(std::min<long long>(left.count(), 60'000));
}

/// Waits until `fd` is ready for `events` or throws on timeout.
void wait_fd(int fd, short events, Deadline deadline, const char* what) {
  for (;;) {
    int ms = remaining_ms(deadline);
    if (ms == 0)
      throw ControlError(std::string("timed out ") + what);
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      throw ControlError(std::string("poll: ") + errno_text(errno));
    if (r == 0)
      continue;  // loop re-checks the deadline
    if (p.revents & POLLNVAL)
      throw ControlError("connection closed");
    return;  // readable/writable, or error/hangup for the next call to report
  }
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    throw ControlError("fcntl: " + errno_text(errno));
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
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ControlError(path + ": cannot read: " + errno_text(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_new_file(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    throw ControlError(path + ": cannot create: " + errno_text(errno));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(path.c_str());
      throw ControlError(path + ": cannot write: " + errno_text(e));
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw ControlError(path + ": cannot write: " + errno_text(e));
  }
  ::close(fd);
}

std::string bio_string(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<std::size_t>(n));
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
  struct stat st {};
  const bool have_cert = ::stat(cert_path.c_str(), &st) == 0;
  const bool have_key = ::stat(key_path.c_str(), &st) == 0;
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
  int fd = -1;
  SslCtxPtr ctx;  // client side only
  SslPtr ssl;
  ~Impl() {
    ssl.reset();
    if (fd >= 0)
      ::close(fd);
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
        wait_fd(fd, POLLIN, deadline, what);
      } else if (e == SSL_ERROR_WANT_WRITE) {
        wait_fd(fd, POLLOUT, deadline, what);
      } else if (e == SSL_ERROR_ZERO_RETURN) {
        throw ControlError(std::string("connection closed by the peer while ") + what);
      } else if (e == SSL_ERROR_SYSCALL) {
        int err = errno;
        throw ControlError(std::string("connection lost while ") + what +
                           (err ? ": " + errno_text(err) : std::string()));
      } else {
        throw ControlError(std::string("TLS failure while ") + what + ": " + ssl_error_text());
      }
    }
  }
};

TlsStream::TlsStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  ignore_sigpipe_once();
}
TlsStream::~TlsStream() = default;

std::unique_ptr<TlsStream> TlsStream::connect(std::string_view host, std::uint16_t port,
                                              const Fingerprint& pin, Deadline deadline) {
  ignore_sigpipe_once();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string h(host), p = std::to_string(port);
  if (int r = ::getaddrinfo(h.c_str(), p.c_str(), &hints, &res); r != 0)
    throw ControlError("cannot resolve " + h + ": " + gai_strerror(r));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  std::string last_error = "no address";
  auto impl = std::make_unique<Impl>();
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last_error = errno_text(errno);
      continue;
    }
    int r = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS) {
      try {
        wait_fd(fd, POLLOUT, deadline, "connecting");
      } catch (const ControlError& e) {
        ::close(fd);
        throw ControlError("cannot connect to " + h + ":" + p + ": " + e.what());
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      r = soerr == 0 ? 0 : -1;
      errno = soerr;
    }
    if (r != 0) {
      last_error = errno_text(errno);
      ::close(fd);
      continue;
    }
    impl->fd = fd;
    break;
  }
  if (impl->fd < 0)
    throw ControlError("cannot connect to " + h + ":" + p + ": " + last_error);
  int one = 1;
  ::setsockopt(impl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  impl->ctx.reset(SSL_CTX_new(TLS_client_method()));
  if (!impl->ctx || SSL_CTX_set_min_proto_version(impl->ctx.get(), TLS1_3_VERSION) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  // No CA chain: the certificate is checked against the pinned fingerprint below.
  SSL_CTX_set_verify(impl->ctx.get(), SSL_VERIFY_NONE, nullptr);
  impl->ssl.reset(SSL_new(impl->ctx.get()));
  if (!impl->ssl || SSL_set_fd(impl->ssl.get(), impl->fd) != 1)
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
        wait_fd(impl_->fd, POLLOUT, deadline, "closing");
        (void)SSL_shutdown(ssl);
      }
    }
  } catch (...) {
  }
  ERR_clear_error();
}

void TlsStream::shutdown() noexcept {
  if (impl_->fd >= 0)
    ::shutdown(impl_->fd, SHUT_RDWR);
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

// ---------------------------------------------------------------------------------------------
// Listeners

namespace {

/// Binds and listens on "addr:port"; returns the fd and the bound port.
std::pair<int, std::uint16_t> tcp_listen(std::string_view listen) {
  auto hp = split_host_port(listen);
  std::optional<std::uint16_t> port_zero;
  std::string host;
  std::uint16_t port = 0;
  if (hp) {
    host = hp->host;
    port = hp->port;
  } else if (listen.ends_with(":0")) {  // random port (tests)
    auto h = listen.substr(0, listen.size() - 2);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
      h = h.substr(1, h.size() - 2);
    host = std::string(h);
  } else {
    throw ControlError("'" + std::string(listen) + "' is not an address:port");
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    len = sizeof *s4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    len = sizeof *s6;
  } else {
    throw ControlError("'" + host + "' is not an IP address to listen on");
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    throw ControlError("socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6)
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 128) != 0) {
    int e = errno;
    ::close(fd);
    throw ControlError("cannot listen on " + std::string(listen) + ": " + errno_text(e));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  std::uint16_t p = bound.ss_family == AF_INET
                        ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                        : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return {fd, p};
}

/// Waits for a connection on `fd` or a byte on `wake`; nullopt when woken.
std::optional<int> accept_or_wake(int fd, int wake) {
  for (;;) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (p[1].revents)
      return std::nullopt;
    if (r < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0)
      return c;
    if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
      continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // EMFILE and friends
  }
}

}  // namespace

struct TlsAcceptor::Impl {
  TlsIdentity identity;
  int fd = -1;
  int wake[2] = {-1, -1};
  std::uint16_t port = 0;
};

TlsAcceptor::TlsAcceptor(TlsIdentity identity, std::string_view listen)
    : impl_(std::make_unique<Impl>()) {
  ignore_sigpipe_once();
  impl_->identity = std::move(identity);
  auto [fd, port] = tcp_listen(listen);
  impl_->fd = fd;
  impl_->port = port;
  if (::pipe2(impl_->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd);
    throw ControlError("pipe: " + errno_text(errno));
  }
}

TlsAcceptor::~TlsAcceptor() {
  for (int f : {impl_->fd, impl_->wake[0], impl_->wake[1]})
    if (f >= 0)
      ::close(f);
}

std::uint16_t TlsAcceptor::port() const {
  return impl_->port;
}

std::optional<int> TlsAcceptor::accept_fd() {
  return accept_or_wake(impl_->fd, impl_->wake[0]);
}

void TlsAcceptor::interrupt() noexcept {
  char c = 1;
  (void)!::write(impl_->wake[1], &c, 1);
}

std::unique_ptr<TlsStream> TlsAcceptor::handshake(int fd, Deadline deadline) {
  auto impl = std::make_unique<TlsStream::Impl>();
  set_nonblocking(fd);
  impl->ssl.reset(SSL_new(impl_->identity.impl()->server_ctx.get()));
  if (!impl->ssl || SSL_set_fd(impl->ssl.get(), fd) != 1)
    throw ControlError("cannot set up TLS: " + ssl_error_text());
  impl->fd = fd;
  SSL* ssl = impl->ssl.get();
  try {
    impl->call([&] { return SSL_accept(ssl); }, deadline, "in the TLS handshake");
  } catch (...) {
    impl->fd = -1;  // the caller still owns the descriptor on failure
    throw;
  }
  return std::make_unique<TlsStream>(std::move(impl));
}

TcpListener::TcpListener(std::string_view listen) {
  auto [fd, port] = tcp_listen(listen);
  fd_ = fd;
  port_ = port;
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    ::close(fd_);
    throw ControlError("pipe: " + errno_text(errno));
  }
}

TcpListener::~TcpListener() {
  for (int f : {fd_, wake_[0], wake_[1]})
    if (f >= 0)
      ::close(f);
}

std::optional<int> TcpListener::accept_fd() {
  return accept_or_wake(fd_, wake_[0]);
}

void TcpListener::interrupt() noexcept {
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
}

std::string fd_read_until(int fd, std::string_view terminator, std::size_t max_bytes,
                          Deadline deadline) {
  std::string s;
  char buf[1024];
  while (s.find(terminator) == std::string::npos && s.size() < max_bytes) {
    wait_fd(fd, POLLIN, deadline, "reading");
    ssize_t n = ::read(fd, buf, std::min(sizeof buf, max_bytes - s.size()));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      continue;
    if (n <= 0)
      break;
    s.append(buf, static_cast<std::size_t>(n));
  }
  return s;
}

void fd_write_all(int fd, std::string_view data, Deadline deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      wait_fd(fd, POLLOUT, deadline, "writing");
      continue;
    }
    if (n <= 0)
      throw ControlError("write: " + errno_text(errno));
    off += static_cast<std::size_t>(n);
  }
}

void fd_close(int fd) noexcept {
  if (fd >= 0)
    ::close(fd);
}

}  // namespace warren::control
