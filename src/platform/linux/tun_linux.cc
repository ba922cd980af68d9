// TUN on /dev/net/tun. Each queue is its own descriptor attached with TUNSETIFF to the same
// name (IFF_MULTI_QUEUE); the kernel then steers each flow to one queue by its hash.
//
// Interface deletion shows up on every queue: poll reports an error and read/write fail with
// EBADFD ("file descriptor in bad state": the tun_file has no device any more). That errno is
// reported as BatchResult::gone. EIO on write means the interface is down, which is transient.
//
// Offloads (vnet_hdr): every queue is opened with IFF_VNET_HDR and a 10-byte virtio_net_hdr
// (TUNSETVNETHDRSZ), and TUNSETOFFLOAD tells the kernel it may hand us TSO (and USO) super-
// packets and partial checksums. Each queue then reads one frame at a time into its own 64 KiB
// scratch buffer and splits it into the caller's buffers (net/gso); a remainder that did not
// fit waits there. Because a level-triggered poller must see such a remainder, poll_fd() is
// then a per-queue epoll descriptor over the TUN descriptor and a "pending" eventfd, so it is
// readable while either has something. Writes go through a per-queue GroCoalescer and leave
// with one writev() per frame (virtio header, rewritten headers, the members' payloads), so
// coalescing copies no payload in userspace.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "net/gso.h"
#include "platform/log.h"
#include "platform/notifier.h"
#include "platform/tun_device.h"
#include "platform/unique_fd.h"
#include "platform/vnet_split.h"

// Linux 6.2 (not in every distribution's headers yet).
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

namespace warren::platform {
namespace {

bool is_gone_errno(int err) {
  return err == EBADFD || err == ENODEV || err == ENXIO;
}

Status attach_queue(const std::string& name, short flags, UniqueFd& out, std::string& actual) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd)
    return Error::from_errno(errno, "open(/dev/net/tun)");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof(ifr.ifr_name) - 1));
  ifr.ifr_flags = flags;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    return Error::from_errno(errno, "ioctl(TUNSETIFF)");
  actual.assign(ifr.ifr_name, ::strnlen(ifr.ifr_name, sizeof(ifr.ifr_name)));
  out = std::move(fd);
  return {};
}

// The offload state of one queue: owned by the queue's reader/writer thread.
struct VnetQueue {
  static constexpr std::size_t kScratch = net::kVirtioNetHdrSize + kMaxPacketSize;

  explicit VnetQueue(const net::GroOptions& gro_options)
      : scratch(new std::uint8_t[kScratch]), gro(gro_options) {
    iov.reserve(2 + gro_options.max_segments);
  }

  UniqueFd poll;  // epoll over the TUN fd and `pending_signal`
  Notifier pending_signal;
  std::unique_ptr<std::uint8_t[]> scratch;
  PendingFrame split;      // the frame in `scratch` being handed out
  bool signalled = false;  // pending_signal is set
  net::GroCoalescer gro;
  std::vector<iovec> iov;
  std::atomic<std::uint64_t> super_read{0}, segments_read{0}, malformed{0}, super_written{0},
      segments_written{0}, refused{0};
};

class LinuxTun final : public TunDevice {
 public:
  LinuxTun(std::string name, std::vector<UniqueFd> queues, TunOffloadState offloads)
      : name_(std::move(name)), queues_(std::move(queues)), offloads_(offloads) {
    ifindex_ = ::if_nametoindex(name_.c_str());
  }

  // Sets up the per-queue offload state (start-up; throws std::system_error).
  Status init_vnet() {
    if (!offloads_.vnet_hdr)
      return {};
    net::GroOptions opt;
    opt.tcp = offloads_.tso;
    opt.udp = offloads_.uso;
    for (const UniqueFd& fd : queues_) {
      auto q = std::make_unique<VnetQueue>(opt);
      q->poll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
      if (!q->poll)
        return Error::from_errno(errno, "epoll_create1");
      for (int watched : {fd.get(), q->pending_signal.fd()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = watched;
        if (::epoll_ctl(q->poll.get(), EPOLL_CTL_ADD, watched, &ev) != 0)
          return Error::from_errno(errno, "epoll_ctl");
      }
      vnet_.push_back(std::move(q));
    }
    return {};
  }

  const std::string& name() const override { return name_; }
  std::uint32_t ifindex() const override { return ifindex_; }
  std::size_t queue_count() const override { return queues_.size(); }
  int poll_fd(std::size_t queue) const override {
    return vnet_.empty() ? queues_[queue].get() : vnet_[queue]->poll.get();
  }
  bool vnet_hdr() const override { return offloads_.vnet_hdr; }
  TunOffloadState offloads() const override { return offloads_; }

  TunOffloadStats offload_stats() const override {
    TunOffloadStats st;
    for (const auto& q : vnet_) {
      st.super_packets_read += q->super_read.load(std::memory_order_relaxed);
      st.segments_read += q->segments_read.load(std::memory_order_relaxed);
      st.malformed_dropped += q->malformed.load(std::memory_order_relaxed);
      st.super_packets_written += q->super_written.load(std::memory_order_relaxed);
      st.segments_written += q->segments_written.load(std::memory_order_relaxed);
      st.super_packets_refused += q->refused.load(std::memory_order_relaxed);
    }
    return st;
  }

  bool exists() const override {
    // TUNGETIFF answers EBADFD once the device behind the fd is gone, wherever it lives.
    struct ifreq ifr {};
    return ::ioctl(queues_[0].get(), TUNGETIFF, &ifr) == 0 || errno != EBADFD;
  }

  Result<std::uint32_t> mtu() const override {
    ifreq ifr{};
    if (Status s = control_ioctl(SIOCGIFMTU, ifr, "ioctl(SIOCGIFMTU)"); !s.ok()) {
      return s.error();
    }
    return static_cast<std::uint32_t>(ifr.ifr_mtu);
  }

  Status set_mtu(std::uint32_t mtu) override {
    ifreq ifr{};
    ifr.ifr_mtu = static_cast<int>(mtu);
    return control_ioctl(SIOCSIFMTU, ifr, "ioctl(SIOCSIFMTU)");
  }

  BatchResult read(std::size_t queue, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                   std::size_t offset) override {
    if (!vnet_.empty())
      return read_vnet(queue, bufs, sizes, offset);
    BatchResult result;
    const int fd = queues_[queue].get();
    const std::size_t n = std::min({bufs.size(), sizes.size(), kMaxBatch});
    while (result.count < n) {
      Bytes buf = bufs[result.count];
      if (buf.size() <= offset) {
        result.error = ENOBUFS;
        break;
      }
      ssize_t r = ::read(fd, buf.data() + offset, buf.size() - offset);
      if (r < 0) {
        if (!read_error(errno, result))
          continue;
        break;
      }
      sizes[result.count++] = static_cast<std::size_t>(r);
    }
    return result;
  }

  BatchResult write(std::size_t queue, std::span<const ConstBytes> packets) override {
    if (!vnet_.empty())
      return write_vnet(queue, packets);
    BatchResult result;
    const int fd = queues_[queue].get();
    for (ConstBytes p : packets) {
      ssize_t w;
      do {
        w = ::write(fd, p.data(), p.size());
      } while (w < 0 && errno == EINTR);
      if (w < 0) {
        result.error = errno;
        if (is_gone_errno(result.error)) {
          result.gone = true;
          break;
        }
        continue;  // a rejected packet (or a down link) drops only that packet
      }
      ++result.count;
    }
    return result;
  }

 private:
  // Records a read errno in `result`; false for EINTR (retry), true when the batch ends.
  static bool read_error(int err, BatchResult& result) {
    if (err == EINTR)
      return false;
    if (is_gone_errno(err))
      result.gone = true;
    // Errors after some packets are reported by the next call; EAGAIN ends a batch.
    if (result.count == 0 || result.gone)
      result.error = err;
    return true;
  }

  BatchResult read_vnet(std::size_t queue, std::span<const Bytes> bufs,
                        std::span<std::size_t> sizes, std::size_t offset) {
    BatchResult result;
    VnetQueue& q = *vnet_[queue];
    const int fd = queues_[queue].get();
    const std::size_t n = std::min({bufs.size(), sizes.size(), kMaxBatch});
    while (result.count < n) {
      if (q.split.pending) {
        // Hand out what is left of the current frame first.
        if (!q.split.drain(bufs, sizes, offset, n, result))
          break;
        continue;
      }
      const ssize_t r = ::read(fd, q.scratch.get(), VnetQueue::kScratch);
      if (r < 0) {
        if (!read_error(errno, result))
          continue;
        break;
      }
      net::GsoParse parse =
          net::parse_gso_frame(ConstBytes(q.scratch.get(), static_cast<std::size_t>(r)));
      if (!parse.ok()) {
        q.malformed.fetch_add(1, std::memory_order_relaxed);
        if (log_enabled(LogLevel::kDebug))
          log_debug("TUN %s: dropped a frame: %s", name_.c_str(), net::to_string(parse.error));
        continue;
      }
      if (parse.frame.gso) {
        q.super_read.fetch_add(1, std::memory_order_relaxed);
        q.segments_read.fetch_add(parse.frame.segments, std::memory_order_relaxed);
      }
      q.split.start(parse.frame);
    }
    if (q.split.pending != q.signalled) {
      if (q.split.pending)
        q.pending_signal.set();
      else
        q.pending_signal.clear();
      q.signalled = q.split.pending;
    }
    if (result.count > 0 && result.error == ENOBUFS)
      result.error = 0;
    return result;
  }

  BatchResult write_vnet(std::size_t queue, std::span<const ConstBytes> packets) {
    BatchResult result;
    VnetQueue& q = *vnet_[queue];
    const int fd = queues_[queue].get();
    const std::size_t frames = q.gro.coalesce(packets);
    for (std::size_t i = 0; i < frames; ++i) {
      const net::GroCoalescer::Frame f = q.gro.frame(i);
      q.iov.clear();
      auto add = [&q](ConstBytes b) {
        if (!b.empty())
          q.iov.push_back(iovec{const_cast<std::uint8_t*>(b.data()), b.size()});
      };
      add(f.vnet_hdr);
      add(f.header);
      for (ConstBytes p : f.payloads)
        add(p);
      ssize_t w;
      do {
        w = ::writev(fd, q.iov.data(), static_cast<int>(q.iov.size()));
      } while (w < 0 && errno == EINTR);
      if (w < 0 && errno == EINVAL && f.packets > 1) {
        // The kernel refused the super-packet (it should not): send its members one by one.
        q.refused.fetch_add(1, std::memory_order_relaxed);
        result.count += write_members(fd, f, result);
        continue;
      }
      if (w < 0) {
        result.error = errno;
        if (is_gone_errno(result.error)) {
          result.gone = true;
          break;
        }
        continue;  // the kernel refused this frame: its packets are dropped
      }
      result.count += f.packets;
      if (f.packets > 1) {
        q.super_written.fetch_add(1, std::memory_order_relaxed);
        q.segments_written.fetch_add(f.packets, std::memory_order_relaxed);
      }
    }
    return result;
  }

  // Writes each member of a coalesced frame as a plain packet; returns how many went out.
  static std::size_t write_members(int fd, const net::GroCoalescer::Frame& f, BatchResult& result) {
    static const std::uint8_t kZero[net::kVirtioNetHdrSize] = {};
    const std::size_t hdr = f.header.size();
    std::size_t sent = 0;
    for (ConstBytes payload : f.payloads) {
      // Each payload span is the tail of its original packet, whose headers precede it.
      iovec iov[2] = {{const_cast<std::uint8_t*>(kZero), sizeof(kZero)},
                      {const_cast<std::uint8_t*>(payload.data() - hdr), hdr + payload.size()}};
      ssize_t w;
      do {
        w = ::writev(fd, iov, 2);
      } while (w < 0 && errno == EINTR);
      if (w < 0) {
        result.error = errno;
        result.gone = result.gone || is_gone_errno(errno);
        if (result.gone)
          break;
        continue;
      }
      ++sent;
    }
    return sent;
  }

  // MTU ioctls go through any socket and name the interface; look the name up by index each
  // time so a renamed interface keeps working.
  Status control_ioctl(unsigned long request, ifreq& ifr, const char* op) const {
    char name[IF_NAMESIZE] = {};
    const char* current = ::if_indextoname(ifindex_, name) ? name : name_.c_str();
    std::memcpy(ifr.ifr_name, current, ::strnlen(current, sizeof(ifr.ifr_name) - 1));
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock)
      return Error::from_errno(errno, "socket");
    if (::ioctl(sock.get(), request, &ifr) != 0)
      return Error::from_errno(errno, op);
    return {};
  }

  std::string name_;
  std::vector<UniqueFd> queues_;
  TunOffloadState offloads_;
  std::vector<std::unique_ptr<VnetQueue>> vnet_;  // empty without vnet_hdr
  std::uint32_t ifindex_ = 0;
};

// Attaches `want` queues of `name` with `flags`, falling back to one queue when an existing
// device is single-queue.
Status attach_queues(std::string& name, short flags, std::size_t want,
                     std::vector<UniqueFd>& queues) {
  UniqueFd first;
  Status s = attach_queue(name, flags, first, name);
  if (!s.ok() && s.code() == EINVAL && want > 1 && (flags & IFF_MULTI_QUEUE)) {
    // An existing single-queue device of that name: attach to it with one queue.
    flags &= ~IFF_MULTI_QUEUE;
    s = attach_queue(name, flags, first, name);
    if (s.ok())
      queues.push_back(std::move(first));
    return s;
  }
  if (!s.ok())
    return s;
  queues.push_back(std::move(first));
  while (queues.size() < want) {
    UniqueFd q;
    std::string same;
    if (Status qs = attach_queue(name, flags, q, same); !qs.ok())
      return qs;
    queues.push_back(std::move(q));
  }
  return {};
}

// Sets the virtio header size on every queue and negotiates offloads: TSO with USO, then TSO
// alone. False when even TSO is refused.
bool negotiate_offloads(const std::vector<UniqueFd>& queues, TunOffloadState& state) {
  int size = static_cast<int>(net::kVirtioNetHdrSize);
  for (const UniqueFd& fd : queues) {
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &size) != 0) {
      log_verbose("TUN offloads off: TUNSETVNETHDRSZ: %s", std::strerror(errno));
      return false;
    }
  }
  const unsigned tso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
  const unsigned uso = TUN_F_USO4 | TUN_F_USO6;
  if (::ioctl(queues[0].get(), TUNSETOFFLOAD, static_cast<unsigned long>(tso | uso)) == 0) {
    state = {true, true, true};
    return true;
  }
  if (::ioctl(queues[0].get(), TUNSETOFFLOAD, static_cast<unsigned long>(tso)) == 0) {
    state = {true, true, false};
    return true;
  }
  log_verbose("TUN offloads off: TUNSETOFFLOAD: %s", std::strerror(errno));
  return false;
}

}  // namespace

Result<std::unique_ptr<TunDevice>> create_tun(const TunOptions& options) {
  using R = Result<std::unique_ptr<TunDevice>>;
  if (options.name.size() >= IFNAMSIZ)
    return Error::from_errno(ENAMETOOLONG, "tun name");
  const std::size_t want = std::max<std::size_t>(options.queues, 1);
  short flags = IFF_TUN | IFF_NO_PI;
  if (want > 1)
    flags |= IFF_MULTI_QUEUE;

  std::vector<UniqueFd> queues;
  std::string name = options.name;
  TunOffloadState offloads;
  if (options.vnet_hdr) {
    Status s = attach_queues(name, static_cast<short>(flags | IFF_VNET_HDR), want, queues);
    if (s.ok() && !negotiate_offloads(queues, offloads)) {
      // Offloads refused: start over without the virtio header (closing these queues first,
      // so that a device we created with them goes away).
      queues.clear();
      name = options.name;
    } else if (!s.ok()) {
      if (s.code() != EINVAL)
        return s.error();
      log_verbose("TUN offloads off: IFF_VNET_HDR: %s", std::strerror(s.code()));
      queues.clear();
    }
  }
  if (queues.empty()) {
    if (Status s = attach_queues(name, flags, want, queues); !s.ok())
      return s.error();
  }

  auto tun = std::make_unique<LinuxTun>(name, std::move(queues), offloads);
  if (tun->ifindex() == 0)
    return Error::from_errno(ENODEV, "if_nametoindex");
  try {
    if (Status vs = tun->init_vnet(); !vs.ok())
      return vs.error();
  } catch (const std::system_error& e) {
    return Error::from_errno(e.code().value(), "eventfd");
  }
  if (options.mtu != 0) {
    if (Status ms = tun->set_mtu(options.mtu); !ms.ok())
      return ms.error();
  }
  return R(std::move(tun));
}

}  // namespace warren::platform
