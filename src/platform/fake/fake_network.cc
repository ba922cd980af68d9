#include "platform/fake/fake_network.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>

#include "platform/notifier.h"

namespace warren::platform::fake {

struct FakeNetwork::InFlight {
  std::vector<std::uint8_t> data;
  net::Endpoint source;
  net::Endpoint destination;
};

class FakeBind final : public UdpBind {
 public:
  FakeBind(FakeHost& host, std::uint16_t port, const BindOptions& o)
      : host_(host), port_(port), reuse_(o.reuse_port), fwmark_(o.fwmark) {
    if (o.ipv4)
      sockets_.push_back(std::make_unique<Socket>(net::Family::kV4));
    if (o.ipv6)
      sockets_.push_back(std::make_unique<Socket>(net::Family::kV6));
  }

  ~FakeBind() override {
    std::lock_guard lock(host_.net_.mutex_);
    auto& group = host_.ports_[port_];
    group.erase(std::remove(group.begin(), group.end(), this), group.end());
    if (group.empty())
      host_.ports_.erase(port_);
  }

  std::uint16_t port() const override { return port_; }
  std::uint32_t fwmark() const override { return fwmark_.load(); }
  Status set_fwmark(std::uint32_t mark) override {
    fwmark_.store(mark);
    return {};
  }
  std::size_t socket_count() const override { return sockets_.size(); }
  int poll_fd(std::size_t socket) const override { return sockets_[socket]->ready.fd(); }

  BatchResult receive(std::size_t socket, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                      std::span<net::Path> paths) override {
    BatchResult result;
    Socket& s = *sockets_[socket];
    std::lock_guard lock(s.mutex);
    const std::size_t n = std::min({bufs.size(), sizes.size(), paths.size(), kMaxBatch});
    while (result.count < n && !s.queue.empty()) {
      auto& [data, path] = s.queue.front();
      Bytes buf = bufs[result.count];
      if (data.size() > buf.size()) {
        sizes[result.count] = 0;  // truncated: reported as dropped, like MSG_TRUNC
      } else {
        std::memcpy(buf.data(), data.data(), data.size());
        sizes[result.count] = data.size();
      }
      paths[result.count] = path;
      ++result.count;
      s.queue.pop_front();
    }
    if (s.queue.empty())
      s.ready.clear();
    if (result.count == 0)
      result.error = EAGAIN;
    return result;
  }

  BatchResult send(std::span<OutDatagram> datagrams) override {
    BatchResult result;
    for (OutDatagram& d : datagrams) {
      d.source_dropped = false;
      const net::Family f = d.path.remote.address.family();
      if (!has_family(f)) {
        result.error = EAFNOSUPPORT;
        continue;
      }
      int error = 0;
      host_.net_.transmit(host_, port_, d, error);
      if (error) {
        result.error = error;
        continue;
      }
      ++result.count;
    }
    return result;
  }

  // Called with the network mutex held.
  void enqueue(std::vector<std::uint8_t> data, const net::Path& path) {
    for (auto& s : sockets_) {
      if (s->family != path.remote.address.family())
        continue;
      std::lock_guard lock(s->mutex);
      s->queue.emplace_back(std::move(data), path);
      s->ready.set();
      return;
    }
  }

  bool has_family(net::Family f) const {
    return std::any_of(sockets_.begin(), sockets_.end(),
                       [&](const auto& s) { return s->family == f; });
  }
  bool reuse() const { return reuse_; }

 private:
  struct Socket {
    explicit Socket(net::Family f) : family(f) {}
    net::Family family;
    std::mutex mutex;
    std::deque<std::pair<std::vector<std::uint8_t>, net::Path>> queue;
    Notifier ready;
  };

  FakeHost& host_;
  std::uint16_t port_;
  bool reuse_;
  std::atomic<std::uint32_t> fwmark_;
  std::vector<std::unique_ptr<Socket>> sockets_;
};

std::vector<BindOptions> FakeHost::opened_options() const {
  std::lock_guard lock(net_.mutex_);
  return opened_options_;
}

Result<std::unique_ptr<UdpBind>> FakeHost::open(const BindOptions& o) {
  using R = Result<std::unique_ptr<UdpBind>>;
  if (!o.ipv4 && !o.ipv6)
    return Error::from_errno(EINVAL, "bind");
  std::lock_guard lock(net_.mutex_);
  opened_options_.push_back(o);
  // Same rules as the kernel: a port is shared only by reuseport binds, and an exclusive
  // request (the first of a reuseport group) wants it free.
  auto usable = [&](std::uint16_t port) {
    auto it = ports_.find(port);
    if (it == ports_.end() || it->second.empty())
      return true;
    if (!o.reuse_port || o.exclusive)
      return false;
    return std::all_of(it->second.begin(), it->second.end(),
                       [](const FakeBind* b) { return b->reuse(); });
  };
  std::uint16_t port = o.port;
  if (port == 0) {
    for (int i = 0; i < 20000 && !usable(next_port_); ++i) {
      next_port_ = next_port_ >= 60000 ? 40000 : next_port_ + 1;
    }
    port = next_port_;
    next_port_ = next_port_ >= 60000 ? 40000 : next_port_ + 1;
  }
  if (!usable(port))
    return Error::from_errno(EADDRINUSE, "bind");
  auto bind = std::make_unique<FakeBind>(*this, port, o);
  ports_[port].push_back(bind.get());
  return R(std::move(bind));
}

void FakeHost::add_address(const net::IpAddress& a) {
  std::lock_guard lock(net_.mutex_);
  addresses_.push_back(a);
}

void FakeHost::remove_address(const net::IpAddress& a) {
  std::lock_guard lock(net_.mutex_);
  addresses_.erase(std::remove(addresses_.begin(), addresses_.end(), a), addresses_.end());
}

FakeNetwork::FakeNetwork(Impairments impairments)
    : impairments_(impairments), rng_(impairments.seed) {}

FakeNetwork::~FakeNetwork() = default;

FakeHost& FakeNetwork::add_host(std::vector<net::IpAddress> addresses) {
  std::lock_guard lock(mutex_);
  const auto ifindex = static_cast<std::uint32_t>(hosts_.size() + 1);
  hosts_.push_back(std::unique_ptr<FakeHost>(new FakeHost(*this, std::move(addresses), ifindex)));
  return *hosts_.back();
}

void FakeNetwork::set_impairments(const Impairments& impairments) {
  std::lock_guard lock(mutex_);
  impairments_ = impairments;
  rng_.seed(impairments.seed);
}

void FakeNetwork::flush() {
  std::lock_guard lock(mutex_);
  if (held_) {
    auto f = std::move(held_);
    deliver_locked(*f);
  }
}

std::uint64_t FakeNetwork::delivered() const {
  std::lock_guard lock(mutex_);
  return delivered_;
}

std::uint64_t FakeNetwork::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void FakeNetwork::transmit(FakeHost& from, std::uint16_t from_port, OutDatagram& d, int& error) {
  std::lock_guard lock(mutex_);
  const net::IpAddress& dst = d.path.remote.address;
  auto owns = [&](const net::IpAddress& a) {
    return std::find(from.addresses_.begin(), from.addresses_.end(), a) != from.addresses_.end();
  };
  std::optional<net::IpAddress> source;
  if (d.path.local && !d.path.local->is_unspecified() && d.path.local->family() == dst.family()) {
    if (owns(*d.path.local)) {
      source = d.path.local;
    } else {
      d.source_dropped = true;  // stale sticky source: retried without it
    }
  }
  if (!source) {
    for (const auto& a : from.addresses_) {
      if (a.family() == dst.family()) {
        source = a;
        break;
      }
    }
  }
  if (!source) {
    error = ENETUNREACH;
    return;
  }
  InFlight f{std::vector<std::uint8_t>(d.data.begin(), d.data.end()),
             net::Endpoint{*source, from_port}, d.path.remote};

  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (impairments_.loss > 0 && coin(rng_) < impairments_.loss) {
    ++dropped_;
    return;
  }
  const bool duplicate = impairments_.duplicate > 0 && coin(rng_) < impairments_.duplicate;
  if (!held_ && impairments_.reorder > 0 && coin(rng_) < impairments_.reorder) {
    held_ = std::make_unique<InFlight>(std::move(f));
    return;
  }
  deliver_locked(f);
  if (duplicate)
    deliver_locked(f);
  if (held_) {
    auto h = std::move(held_);
    deliver_locked(*h);
  }
}

void FakeNetwork::deliver_locked(const InFlight& f) {
  for (auto& host : hosts_) {
    if (std::find(host->addresses_.begin(), host->addresses_.end(), f.destination.address) ==
        host->addresses_.end()) {
      continue;
    }
    auto it = host->ports_.find(f.destination.port);
    if (it == host->ports_.end() || it->second.empty())
      break;
    // Reuseport groups: a stable hash of the sender picks the member, like the kernel's.
    std::uint64_t h = f.source.port * 0x9e3779b97f4a7c15ull;
    for (std::size_t i = 0; i < f.source.address.size(); ++i) {
      h = (h ^ f.source.address.data()[i]) * 1099511628211ull;
    }
    std::vector<FakeBind*> members;
    for (FakeBind* b : it->second) {
      if (b->has_family(f.destination.address.family()))
        members.push_back(b);
    }
    if (members.empty())
      break;
    FakeBind* target = members[h % members.size()];
    net::Path path{f.source, f.destination.address, host->ifindex_};
    target->enqueue(f.data, path);
    ++delivered_;
    return;
  }
  ++dropped_;
}

}  // namespace warren::platform::fake
