// UdpProbe: the QUIC fallback's test of plain UDP to the server's WireGuard port (header).

#include "runtime/udp_probe.h"

#include "platform/log.h"

namespace warren::runtime {

void UdpProbe::send(dataplane::Engine& engine, const net::Endpoint& to) {
  const mesh::stun::TransactionId id = mesh::stun::new_transaction_id(random_);
  {
    std::lock_guard lock(mutex_);
    outstanding_ = id;
    target_ = to;
  }
  const std::vector<std::uint8_t> request = mesh::stun::build_binding_request(id);
  engine.send_datagram(to, ConstBytes(request.data(), request.size()));
}

std::optional<MonoTime> UdpProbe::answered_at() const {
  std::lock_guard lock(mutex_);
  return answered_at_;
}

std::uint64_t UdpProbe::answers() const {
  std::lock_guard lock(mutex_);
  return answers_;
}

void UdpProbe::on_stun(const net::Path& from, ConstBytes message, Now now) {
  std::lock_guard lock(mutex_);
  if (!outstanding_ || !(from.remote == target_))
    return;
  if (!mesh::stun::parse_binding_success(message, *outstanding_).ok())
    return;
  outstanding_.reset();  // one answer per request: a duplicate does not count twice
  answered_at_ = now.mono;
  ++answers_;
  platform::log_verbose("transport: UDP probe answered by %s (arrived on %s)",
                        from.remote.to_string().c_str(),
                        from.local ? from.local->to_string().c_str() : "?");
}

}  // namespace warren::runtime
