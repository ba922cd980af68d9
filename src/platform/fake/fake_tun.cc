#include "platform/fake/fake_tun.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "net/ip_header.h"

namespace warren::platform::fake {
namespace {

// What the kernel's TUN answers once the interface is deleted.
BatchResult gone() {
  BatchResult r;
  r.error = EBADFD;
  r.gone = true;
  return r;
}

}  // namespace

FakeTun::FakeTun(std::string name, std::size_t queues, std::uint32_t mtu, std::uint32_t ifindex)
    : name_(std::move(name)), ifindex_(ifindex), mtu_(mtu) {
  for (std::size_t i = 0; i < std::max<std::size_t>(queues, 1); ++i) {
    queues_.push_back(std::make_unique<Queue>());
  }
}

Result<std::uint32_t> FakeTun::mtu() const {
  std::lock_guard lock(mutex_);
  return mtu_;
}

Status FakeTun::set_mtu(std::uint32_t mtu) {
  std::lock_guard lock(mutex_);
  if (removed_)
    return Error::from_errno(ENODEV, "set_mtu");
  mtu_ = mtu;
  return {};
}

void FakeTun::set_offloads(TunOffloadState state) {
  std::lock_guard lock(mutex_);
  offloads_ = state;
  offloads_.tso = offloads_.tso && offloads_.vnet_hdr;
  offloads_.uso = offloads_.uso && offloads_.tso;
  for (auto& q : queues_) {
    q->gro = std::make_unique<net::GroCoalescer>(
        net::GroOptions{.tcp = offloads_.tso, .udp = offloads_.uso});
  }
}

bool FakeTun::vnet_hdr() const {
  std::lock_guard lock(mutex_);
  return offloads_.vnet_hdr;
}

TunOffloadState FakeTun::offloads() const {
  std::lock_guard lock(mutex_);
  return offloads_;
}

TunOffloadStats FakeTun::offload_stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void FakeTun::inject_frame(std::size_t queue, ConstBytes frame) {
  Queue& q = *queues_[queue];
  std::lock_guard lock(q.mutex);
  q.inbound.emplace_back(frame.begin(), frame.end());
  q.ready.set();
}

std::vector<Packet> FakeTun::take_written_frames() {
  std::lock_guard lock(mutex_);
  std::vector<Packet> out(std::make_move_iterator(written_frames_.begin()),
                          std::make_move_iterator(written_frames_.end()));
  written_frames_.clear();
  return out;
}

BatchResult FakeTun::read_vnet(Queue& q, std::span<const Bytes> bufs, std::span<std::size_t> sizes,
                               std::size_t offset) {
  BatchResult result;
  const std::size_t n = std::min({bufs.size(), sizes.size(), kMaxBatch});
  while (result.count < n) {
    if (q.split.pending) {
      if (!q.split.drain(bufs, sizes, offset, n, result))
        break;
      continue;
    }
    if (q.inbound.empty())
      break;
    q.current = std::move(q.inbound.front());
    q.inbound.pop_front();
    net::GsoParse parse = net::parse_gso_frame(q.current);
    std::lock_guard lock(mutex_);
    if (!parse.ok()) {
      ++stats_.malformed_dropped;
      continue;
    }
    if (parse.frame.gso) {
      ++stats_.super_packets_read;
      stats_.segments_read += parse.frame.segments;
    }
    q.split.start(parse.frame);
  }
  if (q.inbound.empty() && !q.split.pending)
    q.ready.clear();
  if (result.count == 0 && result.error == 0)
    result.error = EAGAIN;
  return result;
}

BatchResult FakeTun::read(std::size_t queue, std::span<const Bytes> bufs,
                          std::span<std::size_t> sizes, std::size_t offset) {
  BatchResult result;
  if (!exists())
    return gone();
  Queue& q = *queues_[queue];
  std::lock_guard lock(q.mutex);
  if (vnet_hdr())
    return read_vnet(q, bufs, sizes, offset);
  const std::size_t n = std::min({bufs.size(), sizes.size(), kMaxBatch});
  while (result.count < n && !q.inbound.empty()) {
    const Packet& p = q.inbound.front();
    Bytes buf = bufs[result.count];
    const std::size_t room = buf.size() > offset ? buf.size() - offset : 0;
    const std::size_t len = std::min(room, p.size());
    std::memcpy(buf.data() + offset, p.data(), len);
    sizes[result.count++] = len;
    q.inbound.pop_front();
  }
  if (q.inbound.empty())
    q.ready.clear();
  if (result.count == 0)
    result.error = EAGAIN;
  return result;
}

BatchResult FakeTun::write(std::size_t queue, std::span<const ConstBytes> packets) {
  BatchResult result;
  std::lock_guard lock(mutex_);
  if (removed_)
    return gone();
  if (offloads_.vnet_hdr) {
    net::GroCoalescer& gro = *queues_[queue]->gro;
    const std::size_t frames = gro.coalesce(packets);
    for (std::size_t i = 0; i < frames; ++i) {
      const net::GroCoalescer::Frame f = gro.frame(i);
      Packet frame(net::kVirtioNetHdrSize + f.size());
      frame.resize(gro.flatten(i, frame));
      const std::size_t ip_len = frame.size() - net::kVirtioNetHdrSize;
      // The kernel refuses what is not IP (for a plain frame) or a frame it cannot parse.
      net::GsoParse parse = net::parse_gso_frame(frame);
      if (!parse.ok() || ip_len == 0 ||
          !net::parse_ip_header(ConstBytes(frame).subspan(net::kVirtioNetHdrSize))) {
        result.error = EINVAL;
        continue;
      }
      for (std::size_t s = 0; s < parse.frame.segments; ++s) {
        Packet seg(net::segment_size(parse.frame, s));
        if (parse.frame.gso)
          seg.resize(net::split_segment(parse.frame, s, seg));
        else
          std::copy(parse.frame.packet.begin(), parse.frame.packet.end(), seg.begin());
        written_.push_back(std::move(seg));
      }
      if (f.packets > 1) {
        ++stats_.super_packets_written;
        stats_.segments_written += f.packets;
      }
      written_frames_.push_back(std::move(frame));
      result.count += f.packets;
    }
    written_cv_.notify_all();
    return result;
  }
  for (ConstBytes p : packets) {
    if (p.empty() || !net::parse_ip_header(p)) {
      result.error = EINVAL;  // the kernel rejects what is not an IP packet
      continue;
    }
    written_.emplace_back(p.begin(), p.end());
    ++result.count;
  }
  written_cv_.notify_all();
  return result;
}

void FakeTun::inject(ConstBytes packet) {
  std::size_t queue = 0;
  if (queues_.size() > 1) {
    std::uint64_t h = 1469598103934665603ull;
    if (auto hdr = net::parse_ip_header(packet)) {
      for (const net::IpAddress* a : {&hdr->source, &hdr->destination}) {
        for (std::size_t i = 0; i < a->size(); ++i)
          h = (h ^ a->data()[i]) * 1099511628211ull;
      }
    }
    queue = h % queues_.size();
  }
  inject(queue, packet);
}

void FakeTun::inject(std::size_t queue, ConstBytes packet) {
  Queue& q = *queues_[queue];
  const bool vnet = vnet_hdr();
  std::lock_guard lock(q.mutex);
  Packet& p = q.inbound.emplace_back();
  if (vnet)
    p.resize(net::kVirtioNetHdrSize, 0);  // an all-zero virtio header: a plain packet
  p.insert(p.end(), packet.begin(), packet.end());
  q.ready.set();
}

std::vector<Packet> FakeTun::take_written() {
  std::lock_guard lock(mutex_);
  std::vector<Packet> out(std::make_move_iterator(written_.begin()),
                          std::make_move_iterator(written_.end()));
  written_.clear();
  return out;
}

std::size_t FakeTun::written_count() const {
  std::lock_guard lock(mutex_);
  return written_.size();
}

bool FakeTun::wait_written(std::size_t count, Duration timeout) {
  std::unique_lock lock(mutex_);
  return written_cv_.wait_for(lock, timeout, [&] { return written_.size() >= count; });
}

std::size_t FakeTun::pending() const {
  std::size_t n = 0;
  for (const auto& q : queues_) {
    std::lock_guard lock(q->mutex);
    n += q->inbound.size();
  }
  return n;
}

void FakeTun::remove() {
  {
    std::lock_guard lock(mutex_);
    removed_ = true;
  }
  for (auto& q : queues_)
    q->ready.set();
}

bool FakeTun::exists() const {
  std::lock_guard lock(mutex_);
  return !removed_;
}

}  // namespace warren::platform::fake
