// The coordinator's STUN responder; the policy (what gets an answer) is in the header.

#include "server/stun_responder.h"

#include <cerrno>

#include "mesh/stun.h"
#include "platform/log.h"

namespace warren::server {

StunResponder::StunResponder(std::uint64_t hash_seed) : limiter_(65536, hash_seed) {}

void StunResponder::collect_garbage(MonoTime now) {
  limiter_.collect_garbage(now);
  last_gc_ = now;
}

std::optional<std::vector<std::uint8_t>> StunResponder::answer(const net::Endpoint& from,
                                                               ConstBytes datagram, MonoTime now) {
  if (now - last_gc_ >= wg::RateLimiter::kIdleTimeout)
    collect_garbage(now);
  // The cheap format check first: random junk neither costs a token nor a parse.
  if (!mesh::stun::is_stun(datagram) || from.port == 0) {
    ++counters_.malformed;
    return std::nullopt;
  }
  if (!limiter_.allow(from.address, now)) {
    ++counters_.rate_limited;
    return std::nullopt;
  }
  auto id = mesh::stun::parse_binding_request(datagram);
  if (!id.ok()) {
    ++counters_.malformed;
    return std::nullopt;
  }
  // A request with FINGERPRINT parsed above (it was checked); its attribute is the last 8
  // bytes. Answer in kind: a client that did not send one may not understand it.
  const bool fingerprint =
      datagram.size() >= mesh::stun::kHeaderSize + 8 &&
      load_be16(datagram.data() + datagram.size() - 8) == mesh::stun::kAttrFingerprint;
  ++counters_.answered;
  return mesh::stun::build_binding_success(*id, from, fingerprint);
}

StunService::StunService(std::unique_ptr<platform::UdpBind> bind, platform::Clock& clock,
                         std::uint64_t hash_seed)
    : bind_(std::move(bind)), clock_(clock), responder_(hash_seed), memory_(kBatch * kSlot) {
  for (std::size_t i = 0; i < kBatch; ++i)
    views_[i] = Bytes(memory_.data() + i * kSlot, kSlot);
  answers_.resize(kBatch);
}

Result<std::unique_ptr<StunService>> StunService::open(platform::BindFactory& binds,
                                                       platform::Clock& clock, std::uint16_t port,
                                                       std::uint64_t hash_seed) {
  platform::BindOptions o;
  o.port = port;
  o.reuse_port = false;
  o.buffer_bytes = 256 << 10;
  o.gso = false;
  o.gro = false;  // one request per datagram, never coalesced
  auto b = binds.open(o);
  if (!b.ok())
    return Error(b.code(),
                 "cannot open the STUN port " + std::to_string(port) + ": " + b.message());
  return std::unique_ptr<StunService>(new StunService(std::move(*b), clock, hash_seed));
}

void StunService::on_readable(std::size_t socket) {
  platform::BatchResult r = bind_->receive(socket, views_, sizes_, paths_);
  if (r.count == 0)
    return;
  const MonoTime now = clock_.now().mono;
  std::size_t n = 0;
  for (std::size_t i = 0; i < r.count; ++i) {
    if (sizes_[i] == 0) {
      ++responder_.counters().malformed;  // larger than any request of ours
      continue;
    }
    auto a = responder_.answer(paths_[i].remote, views_[i].first(sizes_[i]), now);
    if (!a)
      continue;
    answers_[n] = std::move(*a);
    // paths_[i].local: the answer leaves from the address the request was sent to.
    out_[n] = platform::OutDatagram{ConstBytes(answers_[n]), paths_[i], false};
    ++n;
  }
  if (n == 0)
    return;
  platform::BatchResult s = bind_->send(std::span<platform::OutDatagram>(out_.data(), n));
  if (s.count < n) {
    responder_.counters().send_errors += n - s.count;
    if (platform::log_enabled(platform::LogLevel::kDebug))
      platform::log_debug("STUN: %zu answer(s) not sent: errno %d", n - s.count, s.error);
  }
}

void WireGuardPortStun::on_stun(const net::Path& from, ConstBytes message, Now now) {
  std::optional<std::vector<std::uint8_t>> reply;
  {
    std::lock_guard lock(mutex_);
    reply = responder_.answer(from.remote, message, now.mono);
  }
  // Outside the lock: send_datagram only queues to worker 0, but nothing is called with it held.
  if (reply)
    send_(from.remote, ConstBytes(reply->data(), reply->size()));
}

StunResponderCounters WireGuardPortStun::counters() const {
  std::lock_guard lock(mutex_);
  return responder_.counters();
}

}  // namespace warren::server
