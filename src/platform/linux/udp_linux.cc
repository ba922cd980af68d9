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
// Offloads (see udp.h): GSO runs are sent as one message whose iovecs are the run's datagrams
// (no copy; the kernel gathers them) plus a UDP_SEGMENT control message; GRO datagrams are
// received into a per-socket scratch area and copied out segment by segment.
//
// Sticky source: received datagrams carry IP_PKTINFO/IPV6_PKTINFO. On send, the local address
// goes back into the same control message; like the kernel's WireGuard we pin only the source
// address (and the interface only for IPv6 link-local sources), letting routing pick the rest.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "platform/linux/udp_control.h"
#include "platform/log.h"
#include "platform/udp.h"
#include "platform/unique_fd.h"

namespace warren::platform {

void parse_udp_control(const msghdr& h, net::Path& path, std::size_t& gso_size) {
  gso_size = 0;
  if (h.msg_control == nullptr || h.msg_controllen < sizeof(cmsghdr))
    return;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
    const auto* begin = static_cast<const std::uint8_t*>(h.msg_control);
    const auto* at = reinterpret_cast<const std::uint8_t*>(c);
    if (c->cmsg_len < CMSG_LEN(0) ||
        c->cmsg_len > h.msg_controllen - static_cast<std::size_t>(at - begin)) {
      break;  // malformed (too short, or runs past the buffer): the walk cannot go on safely
    }
    const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
        data_len >= sizeof(in_pktinfo)) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      path.local =
          net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&info.ipi_spec_dst), 4);
      path.ifindex = static_cast<std::uint32_t>(info.ipi_ifindex);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               data_len >= sizeof(in6_pktinfo)) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof(info));
      path.local =
          net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&info.ipi6_addr), 16);
      path.ifindex = info.ipi6_ifindex;
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      // The kernel writes an int; accept a u16 too. Nonsense (<= 0) means "not coalesced".
      if (data_len >= sizeof(int)) {
        int v;
        std::memcpy(&v, CMSG_DATA(c), sizeof(v));
        gso_size = v > 0 ? static_cast<std::size_t>(v) : 0;
      } else if (data_len >= sizeof(std::uint16_t)) {
        std::uint16_t v;
        std::memcpy(&v, CMSG_DATA(c), sizeof(v));
        gso_size = v;
      }
    }
  }
}

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
    return Error::from_errno(errno, op);
  return {};
}

struct Socket {
  UniqueFd fd;
  int family = 0;
};

Result<Socket> open_socket(int family, std::uint16_t port, const BindOptions& o, bool reuse) {
  Socket s;
  s.family = family;
  s.fd.reset(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP));
  if (!s.fd)
    return Error::from_errno(errno, "socket(SOCK_DGRAM)");
  const int fd = s.fd.get();
  if (family == AF_INET6) {
    if (Status st = set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "setsockopt(IPV6_V6ONLY)");
        !st.ok()) {
      return st.error();
    }
  }
  if (reuse) {
    if (Status st = set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)");
        !st.ok()) {
      return st.error();
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
      return st.error();
    }
  } else {
    if (Status st =
            set_int_option(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "setsockopt(IPV6_RECVPKTINFO)");
        !st.ok()) {
      return st.error();
    }
  }
  if (o.fwmark != 0) {
    if (Status st = set_int_option(fd, SOL_SOCKET, SO_MARK, static_cast<int>(o.fwmark),
                                   "setsockopt(SO_MARK)");
        !st.ok()) {
      return st.error();
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
    return Error::from_errno(errno, "bind");
  return s;
}

Result<std::uint16_t> local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return Error::from_errno(errno, "getsockname");
  }
  std::uint16_t port = ss.ss_family == AF_INET
                           ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                           : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return port;
}

// Opens one socket per requested family on `port` (0 = kernel's choice for the first family,
// shared by the second). EAFNOSUPPORT for one family (IPv6 disabled) is tolerated.
Result<std::vector<Socket>> open_pair(std::uint16_t port, const BindOptions& o, bool reuse) {
  std::vector<Socket> out;
  const int families[2] = {AF_INET, AF_INET6};
  int skipped_error = 0;
  for (int family : families) {
    if ((family == AF_INET && !o.ipv4) || (family == AF_INET6 && !o.ipv6))
      continue;
    auto s = open_socket(family, port, o, reuse);
    if (!s.ok()) {
      if (s.code() == EAFNOSUPPORT) {
        skipped_error = s.code();
        continue;
      }
      return s.error();
    }
    if (port == 0) {
      auto p = local_port(s->fd.get());
      if (!p.ok())
        return p.error();
      port = *p;
    }
    out.push_back(std::move(*s));
  }
  if (out.empty())
    return Error::from_errno(skipped_error ? skipped_error : EINVAL, "socket");
  return out;
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

// GRO receive state of one socket: coalesced datagrams land in `scratch` (one 64 KiB slot per
// message) and are handed out segment by segment; `next`/`offset` is where the next call goes
// on. `ready` is an epoll fd over the socket and `event`, an eventfd that is kept readable
// while segments are kept, so the owner's level-triggered poll comes back for them.
constexpr std::size_t kGroMessages = 8;
constexpr std::size_t kGroSlot = 65536;

struct GroMessage {
  std::size_t length = 0;
  std::size_t gso_size = 0;
  bool truncated = false;
  net::Path path;
};

struct GroState {
  std::unique_ptr<std::uint8_t[]> scratch;
  std::array<GroMessage, kGroMessages> messages{};
  std::size_t count = 0;
  std::size_t next = 0;
  std::size_t offset = 0;
  UniqueFd ready;
  UniqueFd event;
  bool signalled = false;
  bool pending() const { return next < count; }
};

// Control space for a send: pktinfo plus UDP_SEGMENT.
constexpr std::size_t kSendControlNeeded =
    CMSG_SPACE(sizeof(in6_pktinfo)) + CMSG_SPACE(sizeof(std::uint16_t));
static_assert(kSendControlNeeded <= kControlSpace);

bool is_gso_refusal(int err) {
  return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

class LinuxBind final : public UdpBind {
 public:
  LinuxBind(std::vector<Socket> sockets, std::uint16_t port, const BindOptions& o)
      : sockets_(std::move(sockets)), port_(port), fwmark_(o.fwmark) {
    gso_.assign(sockets_.size(), false);
    inject_.assign(sockets_.size(), o.inject_gso_error);
    gro_.resize(sockets_.size());
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      const int fd = sockets_[i].fd.get();
      // UDP_SEGMENT 0 = no default segmentation; success says the kernel knows the option.
      if (o.gso && ::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &kZero, sizeof(kZero)) == 0)
        gso_[i] = true;
      if (o.gro)
        enable_gro(i);
    }
  }

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
  int poll_fd(std::size_t socket) const override {
    const GroState* g = gro_[socket].get();
    return g ? g->ready.get() : sockets_[socket].fd.get();
  }

  BindOffloadState offload_state(std::size_t socket) const override {
    return BindOffloadState{gso_[socket], gro_[socket] != nullptr};
  }

  BatchResult receive(std::size_t socket, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                      std::span<net::Path> paths) override {
    const std::size_t n = std::min({bufs.size(), sizes.size(), paths.size(), kMaxBatch});
    if (n == 0)
      return {};
    if (GroState* g = gro_[socket].get())
      return receive_gro(socket, *g, bufs, sizes, paths, n);
    BatchResult result;
    for (std::size_t i = 0; i < n; ++i)
      prepare_receive(i, bufs[i].data(), bufs[i].size());
    const int r = recv_batch(socket, n);
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
      std::size_t gso_size;
      parse_udp_control(h, path, gso_size);
    }
    result.count = static_cast<std::size_t>(r);
    return result;
  }

  BatchResult send(std::span<OutDatagram> datagrams) override {
    BatchResult total;
    for (std::size_t s = 0; s < sockets_.size(); ++s) {
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
  static constexpr int kZero = 0;

  void enable_gro(std::size_t i) {
    const int fd = sockets_[i].fd.get();
    const int one = 1;
    if (::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) != 0)
      return;
    auto g = std::make_unique<GroState>();
    g->ready.reset(::epoll_create1(EPOLL_CLOEXEC));
    g->event.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    bool ok = g->ready && g->event;
    for (int watched : {fd, g->event.get()}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = watched;
      ok = ok && ::epoll_ctl(g->ready.get(), EPOLL_CTL_ADD, watched, &ev) == 0;
    }
    if (!ok) {
      // Without a readiness fd we could not keep segments safely: no GRO on this socket.
      const int zero = 0;
      (void)::setsockopt(fd, SOL_UDP, UDP_GRO, &zero, sizeof(zero));
      return;
    }
    // Uninitialised: only the bytes datagrams touch are ever paged in.
    g->scratch.reset(new std::uint8_t[kGroMessages * kGroSlot]);
    gro_[i] = std::move(g);
  }

  void prepare_receive(std::size_t i, std::uint8_t* data, std::size_t size) {
    iovs_[i] = iovec{data, size};
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

  int recv_batch(std::size_t socket, std::size_t n) {
    int r;
    do {
      r = ::recvmmsg(sockets_[socket].fd.get(), msgs_.data(), static_cast<unsigned>(n),
                     MSG_DONTWAIT, nullptr);
    } while (r < 0 && errno == EINTR);
    return r;
  }

  BatchResult receive_gro(std::size_t socket, GroState& g, std::span<const Bytes> bufs,
                          std::span<std::size_t> sizes, std::span<net::Path> paths, std::size_t n) {
    BatchResult result;
    std::size_t out = hand_out(g, bufs, sizes, paths, 0, n);
    // The scratch area holds kGroMessages messages; small datagrams that did not coalesce
    // (many sources: a flood) would then come 8 per call, and a socket read that slowly
    // overflows. So refill until the caller's buffers are full or the socket is empty.
    while (out < n && !g.pending()) {
      const std::size_t want = std::min(kGroMessages, n - out);
      for (std::size_t i = 0; i < want; ++i)
        prepare_receive(i, g.scratch.get() + i * kGroSlot, kGroSlot);
      const int r = recv_batch(socket, want);
      if (r < 0) {
        // Segments handed out already are this call's result; the error (EAGAIN) waits.
        if (out == 0)
          result.error = errno;
        break;
      }
      {
        g.count = static_cast<std::size_t>(r);
        g.next = 0;
        g.offset = 0;
        for (std::size_t i = 0; i < g.count; ++i) {
          GroMessage& m = g.messages[i];
          const msghdr& h = msgs_[i].msg_hdr;
          m.length = msgs_[i].msg_len;
          m.truncated = (h.msg_flags & MSG_TRUNC) != 0;
          m.path = net::Path{};
          m.path.remote = endpoint_from(names_[i]);
          parse_udp_control(h, m.path, m.gso_size);
        }
        out = hand_out(g, bufs, sizes, paths, out, n);
      }
      if (static_cast<std::size_t>(r) < want)
        break;  // the socket is empty now: no second syscall to learn it
    }
    update_readiness(g);
    result.count = out;
    return result;
  }

  // Copies kept segments into bufs[out, n); returns the new `out`.
  static std::size_t hand_out(GroState& g, std::span<const Bytes> bufs,
                              std::span<std::size_t> sizes, std::span<net::Path> paths,
                              std::size_t out, std::size_t n) {
    while (out < n && g.pending()) {
      const GroMessage& m = g.messages[g.next];
      const std::uint8_t* base = g.scratch.get() + g.next * kGroSlot;
      paths[out] = m.path;
      if (m.truncated) {
        sizes[out++] = 0;
        ++g.next;
        g.offset = 0;
        continue;
      }
      const std::size_t segment = (m.gso_size > 0 && m.gso_size < m.length) ? m.gso_size : m.length;
      const std::size_t take = std::min(segment, m.length - g.offset);
      if (take <= bufs[out].size()) {
        std::memcpy(bufs[out].data(), base + g.offset, take);
        sizes[out] = take;
      } else {
        sizes[out] = 0;  // does not fit the caller's buffer: dropped, like MSG_TRUNC
      }
      ++out;
      g.offset += take;
      if (g.offset >= m.length) {
        ++g.next;
        g.offset = 0;
      }
    }
    return out;
  }

  static void update_readiness(GroState& g) {
    const bool want = g.pending();
    if (want == g.signalled)
      return;
    std::uint64_t v = 1;
    ssize_t r = want ? ::write(g.event.get(), &v, sizeof(v)) : ::read(g.event.get(), &v, sizeof(v));
    if (r == static_cast<ssize_t>(sizeof(v)))
      g.signalled = want;
  }

  bool has_family(int family) const {
    return std::any_of(sockets_.begin(), sockets_.end(),
                       [&](const Socket& s) { return s.family == family; });
  }

  // Fills the message arrays from up to kMaxBatch datagrams of socket `si`'s family, starting
  // at `from` (runs of equal-size datagrams to one path become one GSO message), sends them,
  // and returns the index to continue from.
  std::size_t send_family(std::size_t si, std::span<OutDatagram> datagrams, std::size_t from,
                          BatchResult& total) {
    const Socket& s = sockets_[si];
    const bool v4 = s.family == AF_INET;
    std::size_t m = 0;     // messages
    std::size_t used = 0;  // iovecs (one per datagram)
    std::size_t i = from;
    while (i < datagrams.size() && used < kMaxBatch) {
      OutDatagram& d = datagrams[i];
      if (v4 != d.path.remote.address.is_v4()) {
        ++i;
        continue;
      }
      d.source_dropped = false;
      const std::size_t segment = d.data.size();
      iovs_[used] = iovec{const_cast<std::uint8_t*>(d.data.data()), segment};
      std::size_t segments = 1;
      std::size_t bytes = segment;
      std::size_t j = i + 1;
      if (gso_[si] && segment > 0) {
        while (j < datagrams.size() && segments < kGsoMaxSegments && used + segments < kMaxBatch) {
          const OutDatagram& e = datagrams[j];
          const std::size_t size = e.data.size();
          if (size == 0 || size > segment || bytes + size > kGsoMaxBytes || !(e.path == d.path))
            break;
          datagrams[j].source_dropped = false;
          iovs_[used + segments] = iovec{const_cast<std::uint8_t*>(e.data.data()), size};
          ++segments;
          bytes += size;
          ++j;
          if (size < segment)
            break;  // a shorter datagram ends the run
        }
      }
      first_[m] = i;
      segments_[m] = segments;
      fill_message(m, s.family, d, used, segments, segments > 1 ? segment : 0);
      ++m;
      used += segments;
      i = j;
    }
    std::size_t done = 0;
    int waited_ms = 0;
    while (done < m) {
      int r;
      int err = 0;
      if (inject_[si] != 0 && segments_[done] > 1) {
        r = -1;
        err = inject_[si];
        inject_[si] = 0;
      } else {
        r = ::sendmmsg(s.fd.get(), msgs_.data() + done, static_cast<unsigned>(m - done),
                       MSG_DONTWAIT);
        err = errno;
      }
      if (r > 0) {
        for (int k = 0; k < r; ++k)
          total.count += segments_[done + static_cast<std::size_t>(k)];
        done += static_cast<std::size_t>(r);
        continue;
      }
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
      OutDatagram& d = datagrams[first_[done]];
      if (r < 0 && has_source_[done] && is_stale_source_errno(err)) {
        // The sticky source address is gone (or moved): retry once letting routing choose.
        rebuild_control(done, s.family, d, false);
        for (std::size_t k = 0; k < segments_[done]; ++k)
          datagrams[first_[done] + k].source_dropped = true;
        continue;
      }
      if (r < 0 && segments_[done] > 1 && is_gso_refusal(err)) {
        // The kernel or the path refuses segmentation offload: resend from this run on
        // without it, and never use it on this socket again.
        gso_[si] = false;
        if (!gso_logged_) {
          gso_logged_ = true;
          platform::log_verbose("UDP GSO disabled on a socket (%s); sending datagram by datagram",
                                std::strerror(err));
        }
        return first_[done];
      }
      total.error = r < 0 ? err : EIO;
      ++done;  // drop this message, keep going with the rest
    }
    return i;
  }

  void fill_message(std::size_t m, int family, const OutDatagram& d, std::size_t iov,
                    std::size_t iov_count, std::size_t gso_size) {
    const net::Endpoint& to = d.path.remote;
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
    h.msg_iov = &iovs_[iov];
    h.msg_iovlen = iov_count;
    gso_sizes_[m] = gso_size;
    rebuild_control(m, family, d, true);
    msgs_[m].msg_len = 0;
  }

  // Writes message m's control messages: the sticky source (if `with_source` and the path has
  // one of this family) and UDP_SEGMENT (if the message is a GSO run).
  void rebuild_control(std::size_t m, int family, const OutDatagram& d, bool with_source) {
    msghdr& h = msgs_[m].msg_hdr;
    std::memset(controls_[m].bytes, 0, kSendControlNeeded);
    h.msg_control = controls_[m].bytes;
    h.msg_controllen = kSendControlNeeded;
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    std::size_t used = 0;
    const auto& local = d.path.local;
    has_source_[m] =
        with_source && local && !local->is_unspecified() && local->is_v4() == (family == AF_INET);
    if (has_source_[m]) {
      if (family == AF_INET) {
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo info{};
        std::memcpy(&info.ipi_spec_dst, local->data(), 4);
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
        used += CMSG_SPACE(sizeof(in_pktinfo));
      } else {
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
        in6_pktinfo info{};
        std::memcpy(&info.ipi6_addr, local->data(), 16);
        if (is_link_local_v6(*local))
          info.ipi6_ifindex = d.path.ifindex;
        std::memcpy(CMSG_DATA(c), &info, sizeof(info));
        used += CMSG_SPACE(sizeof(in6_pktinfo));
      }
      c = CMSG_NXTHDR(&h, c);
    }
    if (gso_sizes_[m] > 0 && c) {
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      const auto size = static_cast<std::uint16_t>(gso_sizes_[m]);
      std::memcpy(CMSG_DATA(c), &size, sizeof(size));
      used += CMSG_SPACE(sizeof(std::uint16_t));
    }
    h.msg_controllen = used;
    if (used == 0)
      h.msg_control = nullptr;
  }

  std::vector<Socket> sockets_;
  std::uint16_t port_;
  std::atomic<std::uint32_t> fwmark_;
  std::vector<bool> gso_;
  std::vector<int> inject_;
  bool gso_logged_ = false;
  std::vector<std::unique_ptr<GroState>> gro_;
  std::array<mmsghdr, kMaxBatch> msgs_{};
  std::array<iovec, kMaxBatch> iovs_{};
  std::array<sockaddr_storage, kMaxBatch> names_{};
  std::array<ControlBuffer, kMaxBatch> controls_{};
  std::array<std::size_t, kMaxBatch> first_{};     // first datagram of each message
  std::array<std::size_t, kMaxBatch> segments_{};  // datagrams in each message
  std::array<std::size_t, kMaxBatch> gso_sizes_{};
  std::array<bool, kMaxBatch> has_source_{};
};

class SystemBindFactory final : public BindFactory {
 public:
  Result<std::unique_ptr<UdpBind>> open(const BindOptions& o) override {
    using R = Result<std::unique_ptr<UdpBind>>;
    if (!o.ipv4 && !o.ipv6)
      return Error::from_errno(EINVAL, "bind: no address family");
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
          last_error = probe.code();
          last_op = probe.error().op;
          if (probe.code() == EADDRINUSE && o.port == 0)
            continue;
          return probe.error();
        }
        auto p = local_port(probe->front().fd.get());
        if (!p.ok())
          return p.error();
        port = *p;
      }
      auto pair = open_pair(port, o, o.reuse_port);
      if (!pair.ok()) {
        last_error = pair.code();
        last_op = pair.error().op;
        if (pair.code() == EADDRINUSE && o.port == 0)
          continue;
        return pair.error();
      }
      auto p = local_port(pair->front().fd.get());
      if (!p.ok())
        return p.error();
      return R(std::make_unique<LinuxBind>(std::move(*pair), *p, o));
    }
    return Error::from_errno(last_error, last_op);
  }
};

}  // namespace

std::unique_ptr<BindFactory> make_system_bind_factory() {
  return std::make_unique<SystemBindFactory>();
}

}  // namespace warren::platform
