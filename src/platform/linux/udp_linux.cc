// UDP binds on kernel sockets: an AF_INET socket and an IPV6_V6ONLY AF_INET6 socket on one
// port, driven with recvmmsg/sendmmsg over message arrays allocated once per bind.
//
// Port selection follows wireguard-go (conn/bind_std.go): port 0 lets the kernel pick for the
// first family, the second family must get the same number, and a clash restarts the pair (up
// to 100 times). For SO_REUSEPORT groups the port is first probed with sockets that do *not*
// set SO_REUSEPORT: the kernel lets sockets of one user share a reuseport port freely, so
// without the probe a second daemon would silently split our traffic instead of failing with
// EADDRINUSE.
//
// Sticky source: received datagrams carry IP_PKTINFO/IPV6_PKTINFO. On send, the local address
// goes back into the same control message; like the kernel's WireGuard we pin only the source
// address (and the interface only for IPv6 link-local sources), letting routing pick the rest.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "platform/udp.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

constexpr int kPortAttempts = 100;
// How long send() waits in total for socket-buffer space before dropping the rest.
constexpr int kSendWaitBudgetMs = 100;
constexpr std::size_t kControlSpace =
    CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(std::uint16_t));

struct alignas(cmsghdr) ControlBuffer {
  std::uint8_t bytes[kControlSpace];
};

bool is_stale_source_errno(int err) {
  // A non-local IPv4 source makes the route lookup fail with ENETUNREACH; IPv6 says EINVAL.
  return err == EINVAL || err == EADDRNOTAVAIL || err == ENETUNREACH || err == ENODEV ||
         err == ENXIO;
}

Status set_int_option(int fd, int level, int name, int value, const char* op) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return Status::failure(errno, op);
  return {};
}

struct Socket {
  UniqueFd fd;
  int family = 0;
};

Result<Socket> open_socket(int family, std::uint16_t port, const BindOptions& o, bool reuse) {
  using R = Result<Socket>;
  Socket s;
  s.family = family;
  s.fd.reset(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!s.fd)
    return R::failure(errno, "socket(SOCK_DGRAM)");
  const int fd = s.fd.get();
  if (family == AF_INET6) {
    if (Status st = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)");
        !st.ok()) {
      return R::failure(st);
    }
  }
  if (reuse) {
    if (Status st = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)");
        !st.ok()) {
      return R::failure(st);
    }
  }
  if (o.buffer_bytes > 0) {
    // FORCE passes net.core.[rw]mem_max with CAP_NET_ADMIN; otherwise take what we may have.
    if (!set_int_option(fd, SOL_SOCKET, SO_RCVBUFFORCE, o.buffer_bytes, "").ok()) {
      (void)set_int_option(fd, SOL_SOCKET, SO_RCVBUF, o.buffer_bytes, "");
    }
    if (!set_int_option(fd, SOL_SOCKET, SO_SNDBUFFORCE, o.buffer_bytes, "").ok()) {
      (void)set_int_option(fd, SOL_SOCKET, SO_SNDBUF, o.buffer_bytes, "");
    }
  }
  if (family == AF_INET) {
    if (Status st = set_int_option(fd, IPPROTO_IP, IP_PKTINFO, 1, "setsockopt(IP_PKTINFO)");
        !st.ok()) {
      return R::failure(st);
    }
  } else {
    if (Status st =
            set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "setsockopt(IPV6_RECVPKTINFO)");
        !st.ok()) {
      return R::failure(st);
    }
  }
  if (o.fwmark != 0) {
    if (Status st = set_int_option(fd, SOL_SOCKET, SO_MARK, static_cast<int>(o.fwmark),
                                   "setsockopt(SO_MARK)");
        !st.ok()) {
      return R::failure(st);
    }
  }
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_any;
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return R::failure(errno, "bind");
  return R::success(std::move(s));
}

Result<std::uint16_t> local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Result<std::uint16_t>::failure(errno, "getsockname");
  }
  std::uint16_t port = ss.ss_family == AF_INET
                           ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                           : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Result<std::uint16_t>::success(port);
}

// Opens one socket per requested family on `port` (0 = kernel's choice for the first family,
// shared by the second). EAFNOSUPPORT for one family (IPv6 disabled) is tolerated.
Result<std::vector<Socket>> open_pair(std::uint16_t port, const BindOptions& o, bool reuse) {
  using R = Result<std::vector<Socket>>;
  std::vector<Socket> out;
  const int families[2] = {AF_INET, AF_INET6};
  int skipped_error = 0;
  for (int family : families) {
    if ((family == AF_INET && !o.ipv4) || (family == AF_INET6 && !o.ipv6))
      continue;
    auto s = open_socket(family, port, o, reuse);
    if (!s.ok()) {
      if (s.error == EAFNOSUPPORT) {
        skipped_error = s.error;
        continue;
      }
      return R::failure(s.error, s.op);
    }
    if (port == 0) {
      auto p = local_port(s.value.fd.get());
      if (!p.ok())
        return R::failure(p.error, p.op);
      port = p.value;
    }
    out.push_back(std::move(s.value));
  }
  if (out.empty())
    return R::failure(skipped_error ? skipped_error : EINVAL, "socket");
  return R::success(std::move(out));
}

net::Endpoint endpoint_from(const sockaddr_storage& ss) {
  net::Endpoint ep;
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    ep.address =
        *net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&sin->sin_addr), 4);
    ep.port = ntohs(sin->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ep.address =
        *net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&sin6->sin6_addr), 16);
    ep.port = ntohs(sin6->sin6_port);
  }
  return ep;
}

bool is_link_local_v6(const net::IpAddress& a) {
  return a.is_v6() && a.data()[0] == 0xfe && (a.data()[1] & 0xc0) == 0x80;
}

class LinuxBind final : public UdpBind {
 public:
  LinuxBind(std::vector<Socket> sockets, std::uint16_t port, std::uint32_t fwmark)
      : sockets_(std::move(sockets)), port_(port), fwmark_(fwmark) {}

  std::uint16_t port() const override { return port_; }
  std::uint32_t fwmark() const override { return fwmark_.load(std::memory_order_relaxed); }

  Status set_fwmark(std::uint32_t mark) override {
    for (const Socket& s : sockets_) {
      if (Status st = set_int_option(s.fd.get(), SOL_SOCKET, SO_MARK, static_cast<int>(mark),
                                     "setsockopt(SO_MARK)");
          !st.ok()) {
        return st;
      }
    }
    fwmark_.store(mark, std::memory_order_relaxed);
    return {};
  }

  std::size_t socket_count() const override { return sockets_.size(); }
  int poll_fd(std::size_t socket) const override { return sockets_[socket].fd.get(); }

  BatchResult receive(std::size_t socket, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                      std::span<net::Path> paths) override {
    BatchResult result;
    const std::size_t n = std::min({bufs.size(), sizes.size(), paths.size(), kMaxBatch});
    if (n == 0)
      return result;
    for (std::size_t i = 0; i < n; ++i) {
      iovs_[i] = iovec{bufs[i].data(), bufs[i].size()};
      msghdr& h = msgs_[i].msg_hdr;
      h = msghdr{};
      h.msg_name = &names_[i];
      h.msg_namelen = sizeof(names_[i]);
      h.msg_iov = &iovs_[i];
      h.msg_iovlen = 1;
      h.msg_control = controls_[i].bytes;
      h.msg_controllen = sizeof(controls_[i].bytes);
      msgs_[i].msg_len = 0;
    }
    int r;
    do {
      r = ::recvmmsg(sockets_[socket].fd.get(), msgs_.data(), static_cast<unsigned>(n),
                     MSG_DONTWAIT, nullptr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
      result.error = errno;
      return result;
    }
    for (int i = 0; i < r; ++i) {
      const msghdr& h = msgs_[i].msg_hdr;
      sizes[i] = (h.msg_flags & MSG_TRUNC) ? 0 : msgs_[i].msg_len;
      net::Path& path = paths[i];
      path = net::Path{};
      path.remote = endpoint_from(names_[i]);
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
          in_pktinfo info;
          std::memcpy(&info, CMSG_DATA(c), sizeof(info));
          path.local = net::IpAddress::from_bytes(
              reinterpret_cast<const std::uint8_t*>(&info.ipi_spec_dst), 4);
          path.ifindex = static_cast<std::uint32_t>(info.ipi_ifindex);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
          in6_pktinfo info;
          std::memcpy(&info, CMSG_DATA(c), sizeof(info));
          path.local = net::IpAddress::from_bytes(
              reinterpret_cast<const std::uint8_t*>(&info.ipi6_addr), 16);
          path.ifindex = info.ipi6_ifindex;
        }
      }
    }
    result.count = static_cast<std::size_t>(r);
    return result;
  }

  BatchResult send(std::span<OutDatagram> datagrams) override {
    BatchResult total;
    for (const Socket& s : sockets_) {
      std::size_t next = 0;
      while (next < datagrams.size()) {
        next = send_family(s, datagrams, next, total);
      }
    }
    // Datagrams whose family has no socket were never attempted.
    for (const OutDatagram& d : datagrams) {
      if (!has_family(d.path.remote.address.is_v4() ? AF_INET : AF_INET6)) {
        total.error = EAFNOSUPPORT;
      }
    }
    return total;
  }

 private:
  bool has_family(int family) const {
    return std::any_of(sockets_.begin(), sockets_.end(),
                       [&](const Socket& s) { return s.family == family; });
  }

  // Fills the message arrays with up to kMaxBatch datagrams of `s.family`, starting at
  // `from`, sends them, and returns the index to continue from.
  std::size_t send_family(const Socket& s, std::span<OutDatagram> datagrams, std::size_t from,
                          BatchResult& total) {
    std::size_t m = 0;
    std::size_t i = from;
    for (; i < datagrams.size() && m < kMaxBatch; ++i) {
      OutDatagram& d = datagrams[i];
      const net::IpAddress& addr = d.path.remote.address;
      if ((s.family == AF_INET) != addr.is_v4())
        continue;
      d.source_dropped = false;
      fill_message(m, s.family, d);
      index_[m++] = i;
    }
    std::size_t done = 0;
    int waited_ms = 0;
    while (done < m) {
      int r = ::sendmmsg(s.fd.get(), msgs_.data() + done, static_cast<unsigned>(m - done),
                         MSG_DONTWAIT);
      if (r > 0) {
        done += static_cast<std::size_t>(r);
        total.count += static_cast<std::size_t>(r);
        continue;
      }
      const int err = errno;
      if (r < 0 && err == EINTR)
        continue;
      if (r < 0 && (err == EAGAIN || err == EWOULDBLOCK)) {
        // Back-pressure: the socket buffer is full. Wait a little; past the budget, drop.
        if (waited_ms >= kSendWaitBudgetMs) {
          total.error = err;
          break;
        }
        pollfd p{s.fd.get(), POLLOUT, 0};
        auto start = std::chrono::steady_clock::now();
        ::poll(&p, 1, kSendWaitBudgetMs - waited_ms);
        waited_ms += static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count()) +
                     1;
        continue;
      }
      msghdr& h = msgs_[done].msg_hdr;
      if (r < 0 && h.msg_controllen != 0 && is_stale_source_errno(err)) {
        // The sticky source address is gone (or moved): retry once letting routing choose.
        h.msg_control = nullptr;
        h.msg_controllen = 0;
        datagrams[index_[done]].source_dropped = true;
        continue;
      }
      total.error = r < 0 ? err : EIO;
      ++done;  // drop this datagram, keep going with the rest
    }
    return i;
  }

  void fill_message(std::size_t m, int family, const OutDatagram& d) {
    const net::Endpoint& to = d.path.remote;
    iovs_[m] = iovec{const_cast<std::uint8_t*>(d.data.data()), d.data.size()};
    msghdr& h = msgs_[m].msg_hdr;
    h = msghdr{};
    names_[m] = sockaddr_storage{};
    if (family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&names_[m]);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(to.port);
      std::memcpy(&sin->sin_addr, to.address.data(), 4);
      h.msg_namelen = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&names_[m]);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(to.port);
      std::memcpy(&sin6->sin6_addr, to.address.data(), 16);
      if (is_link_local_v6(to.address))
        sin6->sin6_scope_id = d.path.ifindex;
      h.msg_namelen = sizeof(sockaddr_in6);
    }
    h.msg_name = &names_[m];
    h.msg_iov = &iovs_[m];
    h.msg_iovlen = 1;
    const auto& local = d.path.local;
    if (local && !local->is_unspecified() && local->is_v4() == (family == AF_INET)) {
      std::memset(controls_[m].bytes, 0, sizeof(controls_[m].bytes));
      h.msg_control = controls_[m].bytes;
      if (family == AF_INET) {
        h.msg_controllen = CMSG_SPACE(sizeof(in_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        std::memcpy(&info.ipi_spec_dst, local->data(), 4);
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
      } else {
        h.msg_controllen = CMSG_SPACE(sizeof(in6_pktinfo));
        cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo info{};
        std::memcpy(&info.ipi6_addr, local->data(), 16);
        if (is_link_local_v6(*local))
          info.ipi6_ifindex = d.path.ifindex;
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
      }
    }
    msgs_[m].msg_len = 0;
  }

  std::vector<Socket> sockets_;
  std::uint16_t port_;
  std::atomic<std::uint32_t> fwmark_;
  std::array<mmsghdr, kMaxBatch> msgs_{};
  std::array<iovec, kMaxBatch> iovs_{};
  std::array<sockaddr_storage, kMaxBatch> names_{};
  std::array<ControlBuffer, kMaxBatch> controls_{};
  std::array<std::size_t, kMaxBatch> index_{};
};

class SystemBindFactory final : public BindFactory {
 public:
  Result<std::unique_ptr<UdpBind>> open(const BindOptions& o) override {
    using R = Result<std::unique_ptr<UdpBind>>;
    if (!o.ipv4 && !o.ipv6)
      return R::failure(EINVAL, "bind: no address family");
    int last_error = EADDRINUSE;
    const char* last_op = "bind";
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
      std::uint16_t port = o.port;
      if (o.reuse_port && o.exclusive) {
        // Probe: plain sockets fail with EADDRINUSE if anyone, reuseport or not, holds it.
        BindOptions probe_options = o;
        probe_options.fwmark = 0;
        probe_options.buffer_bytes = 0;
        auto probe = open_pair(port, probe_options, /*reuse=*/false);
        if (!probe.ok()) {
          last_error = probe.error;
          last_op = probe.op;
          if (probe.error == EADDRINUSE && o.port == 0)
            continue;
          return R::failure(probe.error, probe.op);
        }
        auto p = local_port(probe.value.front().fd.get());
        if (!p.ok())
          return R::failure(p.error, p.op);
        port = p.value;
      }
      auto pair = open_pair(port, o, o.reuse_port);
      if (!pair.ok()) {
        last_error = pair.error;
        last_op = pair.op;
        if (pair.error == EADDRINUSE && o.port == 0)
          continue;
        return R::failure(pair.error, pair.op);
      }
      auto p = local_port(pair.value.front().fd.get());
      if (!p.ok())
        return R::failure(p.error, p.op);
      return R::success(std::make_unique<LinuxBind>(std::move(pair.value), p.value, o.fwmark));
    }
    return R::failure(last_error, last_op);
  }
};

}  // namespace

std::unique_ptr<BindFactory> make_system_bind_factory() {
  return std::make_unique<SystemBindFactory>();
}

}  // namespace warren::platform
