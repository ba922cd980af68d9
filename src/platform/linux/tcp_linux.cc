// TCP streams with deadlines on Linux (see platform/tcp.h). Moved here from control/tls.cc so
// that src/control keeps only the TLS and enrollment protocols.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <thread>
#include <vector>

#include "net/host_port.h"
#include "platform/tcp.h"

namespace warren::platform {
namespace {

int remaining_ms(StreamDeadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0)
    return 0;
  return static_cast<int>(std::min<long long>(left.count(), 60'000));
}

/// Waits for `events` on `fd` by the deadline (EINTR and early wake-ups re-check it).
warren::Status wait_fd(int fd, short events, StreamDeadline deadline) {
  for (;;) {
    int ms = remaining_ms(deadline);
    if (ms == 0)
      return warren::Error::from_errno(ETIMEDOUT, "poll");
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return warren::Error::from_errno(errno, "poll");
    if (r == 0)
      continue;
    if (p.revents & POLLNVAL)
      return warren::Error::from_errno(EBADF, "poll");
    return {};  // ready, or an error/hang-up for the next call to report
  }
}

warren::Status set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return warren::Error::from_errno(errno, "fcntl(O_NONBLOCK)");
  return {};
}

}  // namespace

// ---- TcpConnection ---------------------------------------------------------------------------

TcpConnection::TcpConnection(UniqueFd fd) : fd_(std::move(fd)) {
  if (fd_.valid())
    (void)set_nonblocking(fd_.get());  // accepted/connected sockets already are; be sure
}

TcpConnection::TcpConnection(TcpConnection&& o) noexcept {
  std::lock_guard lock(o.close_mutex_);
  fd_ = std::move(o.fd_);
}

TcpConnection& TcpConnection::operator=(TcpConnection&& o) noexcept {
  if (this != &o) {
    std::scoped_lock lock(close_mutex_, o.close_mutex_);
    fd_ = std::move(o.fd_);
  }
  return *this;
}

warren::Status TcpConnection::wait(Ready what, StreamDeadline deadline) {
  return wait_fd(fd_.get(), what == Ready::kRead ? POLLIN : POLLOUT, deadline);
}

warren::Result<std::size_t> TcpConnection::read_some(std::span<char> out, StreamDeadline deadline) {
  for (;;) {
    ssize_t n = ::recv(fd_.get(), out.data(), out.size(), 0);
    if (n >= 0)
      return static_cast<std::size_t>(n);
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return warren::Error::from_errno(errno, "recv");
    if (auto s = wait(Ready::kRead, deadline); !s)
      return s.error();
  }
}

warren::Result<std::string> TcpConnection::read_until(std::string_view terminator,
                                                      std::size_t max_bytes,
                                                      StreamDeadline deadline) {
  std::string s;
  char buf[1024];
  while (s.find(terminator) == std::string::npos && s.size() < max_bytes) {
    auto n = read_some(std::span<char>(buf, std::min(sizeof buf, max_bytes - s.size())), deadline);
    if (!n)
      return n.error();
    if (*n == 0)
      break;
    s.append(buf, *n);
  }
  return s;
}

warren::Status TcpConnection::write_all(std::string_view data, StreamDeadline deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto s = wait(Ready::kWrite, deadline); !s)
        return s;
      continue;
    }
    if (n <= 0)
      return warren::Error::from_errno(n < 0 ? errno : EPIPE, "send");
    off += static_cast<std::size_t>(n);
  }
  return {};
}

void TcpConnection::shutdown() noexcept {
  std::lock_guard lock(close_mutex_);
  if (fd_.valid())
    ::shutdown(fd_.get(), SHUT_RDWR);
}

void TcpConnection::close() noexcept {
  std::lock_guard lock(close_mutex_);
  fd_.reset();
}

// ---- connect ---------------------------------------------------------------------------------

namespace {

std::string address_text(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  return buf;
}

// One connection attempt, bounded by `deadline`.
warren::Result<UniqueFd> connect_one(const addrinfo* ai, StreamDeadline deadline) {
  UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return warren::Error::from_errno(errno, "socket");
  if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      return warren::Error::from_errno(errno, "connect");
    if (auto s = wait_fd(fd.get(), POLLOUT, deadline); !s)
      return s.error();
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
      soerr = errno;
    if (soerr != 0)
      return warren::Error::from_errno(soerr, "connect");
  }
  return fd;
}

}  // namespace

warren::Result<TcpConnection> tcp_connect(std::string_view host, std::uint16_t port,
                                          StreamDeadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string h(host), p = std::to_string(port);
  if (int r = ::getaddrinfo(h.c_str(), p.c_str(), &hints, &res); r != 0)
    return warren::Error(EHOSTUNREACH, "cannot resolve " + h + ": " + ::gai_strerror(r));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
  std::vector<const addrinfo*> addresses;
  for (const addrinfo* ai = res; ai; ai = ai->ai_next)
    addresses.push_back(ai);
  // In getaddrinfo's order (RFC 6724: usually IPv6 first). Each attempt gets an equal share
  // of the time left, so an address that never answers (a published AAAA record without
  // working IPv6 routing: the SYN is dropped) costs its share, not the whole deadline.
  std::string failures;
  int last_code = EADDRNOTAVAIL;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      last_code = ETIMEDOUT;
      failures += (failures.empty() ? "" : "; ") + address_text(addresses[i]->ai_addr) +
                  ": not tried (out of time)";
      continue;
    }
    const auto share = (deadline - now) / static_cast<int>(addresses.size() - i);
    auto fd = connect_one(addresses[i], now + share);
    if (fd) {
      int one = 1;
      ::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return TcpConnection(std::move(*fd));
    }
    last_code = fd.error().code;
    failures += (failures.empty() ? "" : "; ") + address_text(addresses[i]->ai_addr) + ": " +
                fd.error().text();
  }
  return warren::Error(last_code, "cannot connect to " + h + " port " + p + " (" + failures + ")");
}

// ---- listen ----------------------------------------------------------------------------------

TcpListener::TcpListener(UniqueFd listen_fd, UniqueFd wake_read, UniqueFd wake_write,
                         std::uint16_t port)
    : fd_(std::move(listen_fd)),
      wake_read_(std::move(wake_read)),
      wake_write_(std::move(wake_write)),
      port_(port) {}

warren::Result<TcpConnection> TcpListener::accept() {
  for (;;) {
    pollfd p[2] = {{fd_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int r = ::poll(p, 2, -1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return warren::Error::from_errno(errno, "poll");
    if (p[1].revents)
      return warren::Error::from_errno(ECANCELED, "accept");
    int c = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0)
      return TcpConnection(UniqueFd(c));
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
      continue;
    return warren::Error::from_errno(errno, "accept4");
  }
}

warren::Result<AcceptedTcp> TcpListener::try_accept() {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int c =
      ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (c < 0)
    return warren::Error::from_errno(errno == EWOULDBLOCK ? EAGAIN : errno, "accept4");
  AcceptedTcp a{TcpConnection(UniqueFd(c)), {}};
  std::optional<net::IpAddress> peer;
  if (ss.ss_family == AF_INET) {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    peer = net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&s4->sin_addr), 4);
  } else if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    peer = net::IpAddress::from_bytes(s6->sin6_addr.s6_addr, 16);
  }
  if (peer)
    a.peer = peer->unmapped();
  return a;
}

void TcpListener::interrupt() noexcept {
  char c = 1;
  (void)!::write(wake_write_.get(), &c, 1);
}

warren::Result<std::unique_ptr<TcpListener>> tcp_listen(std::string_view listen) {
  auto hp = net::split_host_port(listen);
  std::string host;
  std::uint16_t port = 0;
  if (hp) {
    host = hp->host;
    port = hp->port;
  } else if (listen.ends_with(":0")) {  // a free port (tests); split_host_port refuses port 0
    auto h = listen.substr(0, listen.size() - 2);
    if (h.size() >= 2 && h.front() == '[' && h.back() == ']')
      h = h.substr(1, h.size() - 2);
    host = std::string(h);
  } else {
    return warren::Error(EINVAL, "'" + std::string(listen) + "' is not an address:port");
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
    return warren::Error(EINVAL, "'" + host + "' is not an IP address to listen on");
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd)
    return warren::Error::from_errno(errno, "socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss.ss_family == AF_INET6) {
    // "[::]" means every address of both families, as operators expect from other daemons;
    // a specific IPv6 address is that address only. Set explicitly: the default follows
    // net.ipv6.bindv6only.
    const int v6only = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? 0 : 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return warren::Error::from_errno(errno, "bind");
  // A deep accept queue: while it is full the kernel drops new SYNs, and a dropped SYN costs
  // an honest client a 1 s retransmission. A burst of hundreds of connections from one host
  // (closed at once by the enrollment server's per-source cap) must not fill it. The kernel
  // caps this at net.core.somaxconn (4096 by default).
  if (::listen(fd.get(), 4096) != 0)
    return warren::Error::from_errno(errno, "listen");
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen) != 0)
    return warren::Error::from_errno(errno, "getsockname");
  const std::uint16_t bound_port = bound.ss_family == AF_INET
                                       ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                       : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  int wake[2];
  if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0)
    return warren::Error::from_errno(errno, "pipe2");
  return std::make_unique<TcpListener>(std::move(fd), UniqueFd(wake[0]), UniqueFd(wake[1]),
                                       bound_port);
}

void ignore_sigpipe() {
  static const bool done = [] {
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

}  // namespace warren::platform
