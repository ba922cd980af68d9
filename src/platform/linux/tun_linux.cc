// TUN on /dev/net/tun. Each queue is its own descriptor attached with TUNSETIFF to the same
// name (IFF_MULTI_QUEUE); the kernel then steers each flow to one queue by its hash.
//
// Interface deletion shows up on every queue: poll reports an error and read/write fail with
// EBADFD ("file descriptor in bad state": the tun_file has no device any more). That errno is
// reported as BatchResult::gone. EIO on write means the interface is down, which is transient.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "platform/tun_device.h"
#include "platform/unique_fd.h"

namespace warren::platform {
namespace {

bool is_gone_errno(int err) {
  return err == EBADFD || err == ENODEV || err == ENXIO;
}

Status attach_queue(const std::string& name, short flags, UniqueFd& out, std::string& actual) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd)
    return Status::failure(errno, "open(/dev/net/tun)");
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof(ifr.ifr_name) - 1));
  ifr.ifr_flags = flags;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0)
    return Status::failure(errno, "ioctl(TUNSETIFF)");
  actual.assign(ifr.ifr_name, ::strnlen(ifr.ifr_name, sizeof(ifr.ifr_name)));
  out = std::move(fd);
  return {};
}

class LinuxTun final : public TunDevice {
 public:
  LinuxTun(std::string name, std::vector<UniqueFd> queues, bool vnet)
      : name_(std::move(name)), queues_(std::move(queues)), vnet_hdr_(vnet) {
    ifindex_ = ::if_nametoindex(name_.c_str());
  }

  const std::string& name() const override { return name_; }
  std::uint32_t ifindex() const override { return ifindex_; }
  std::size_t queue_count() const override { return queues_.size(); }
  int poll_fd(std::size_t queue) const override { return queues_[queue].get(); }
  bool vnet_hdr() const override { return vnet_hdr_; }

  bool exists() const override {
    // TUNGETIFF answers EBADFD once the device behind the fd is gone, wherever it lives.
    struct ifreq ifr {};
    return ::ioctl(queues_[0].get(), TUNGETIFF, &ifr) == 0 || errno != EBADFD;
  }

  Result<std::uint32_t> mtu() const override {
    ifreq ifr{};
    if (Status s = control_ioctl(SIOCGIFMTU, ifr, "ioctl(SIOCGIFMTU)"); !s.ok()) {
      return Result<std::uint32_t>::failure(s);
    }
    return Result<std::uint32_t>::success(static_cast<std::uint32_t>(ifr.ifr_mtu));
  }

  Status set_mtu(std::uint32_t mtu) override {
    ifreq ifr{};
    ifr.ifr_mtu = static_cast<int>(mtu);
    return control_ioctl(SIOCSIFMTU, ifr, "ioctl(SIOCSIFMTU)");
  }

  BatchResult read(std::size_t queue, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                   std::size_t offset) override {
    BatchResult result;
    const int fd = queues_[queue].get();
    const std::size_t n = std::min({bufs.size(), sizes.size(), kMaxBatch});
    // One read() per packet for now; IFF_VNET_HDR (issue 4) will turn one read into a whole
    // TSO super-packet split into these buffers.
    while (result.count < n) {
      Bytes buf = bufs[result.count];
      if (buf.size() <= offset) {
        result.error = ENOBUFS;
        break;
      }
      ssize_t r = ::read(fd, buf.data() + offset, buf.size() - offset);
      if (r < 0) {
        int err = errno;
        if (err == EINTR)
          continue;
        if (is_gone_errno(err))
          result.gone = true;
        // Errors after some packets are reported by the next call; EAGAIN ends a batch.
        if (result.count == 0 || result.gone)
          result.error = err;
        break;
      }
      sizes[result.count++] = static_cast<std::size_t>(r);
    }
    return result;
  }

  BatchResult write(std::size_t queue, std::span<const ConstBytes> packets) override {
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
  // MTU ioctls go through any socket and name the interface; look the name up by index each
  // time so a renamed interface keeps working.
  Status control_ioctl(unsigned long request, ifreq& ifr, const char* op) const {
    char name[IF_NAMESIZE] = {};
    const char* current = ::if_indextoname(ifindex_, name) ? name : name_.c_str();
    std::memcpy(ifr.ifr_name, current, ::strnlen(current, sizeof(ifr.ifr_name) - 1));
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock)
      return Status::failure(errno, "socket");
    if (::ioctl(sock.get(), request, &ifr) != 0)
      return Status::failure(errno, op);
    return {};
  }

  std::string name_;
  std::vector<UniqueFd> queues_;
  bool vnet_hdr_;
  std::uint32_t ifindex_ = 0;
};

}  // namespace

Result<std::unique_ptr<TunDevice>> create_tun(const TunOptions& options) {
  using R = Result<std::unique_ptr<TunDevice>>;
  if (options.name.size() >= IFNAMSIZ)
    return R::failure(ENAMETOOLONG, "tun name");
  if (options.vnet_hdr)
    return R::failure(EOPNOTSUPP, "IFF_VNET_HDR");
  const std::size_t want = std::max<std::size_t>(options.queues, 1);
  short flags = IFF_TUN | IFF_NO_PI;
  if (want > 1)
    flags |= IFF_MULTI_QUEUE;

  std::vector<UniqueFd> queues;
  std::string name = options.name;
  UniqueFd first;
  Status s = attach_queue(name, flags, first, name);
  if (!s.ok() && s.error == EINVAL && want > 1) {
    // An existing single-queue device of that name: attach to it with one queue.
    flags &= ~IFF_MULTI_QUEUE;
    s = attach_queue(name, flags, first, name);
    if (s.ok())
      queues.push_back(std::move(first));
  } else if (s.ok()) {
    queues.push_back(std::move(first));
    while (queues.size() < want) {
      UniqueFd q;
      std::string same;
      if (Status qs = attach_queue(name, flags, q, same); !qs.ok())
        return R::failure(qs);
      queues.push_back(std::move(q));
    }
  }
  if (!s.ok())
    return R::failure(s);

  auto tun = std::make_unique<LinuxTun>(name, std::move(queues), false);
  if (tun->ifindex() == 0)
    return R::failure(ENODEV, "if_nametoindex");
  if (options.mtu != 0) {
    if (Status ms = tun->set_mtu(options.mtu); !ms.ok())
      return R::failure(ms);
  }
  return R::success(std::move(tun));
}

}  // namespace warren::platform
