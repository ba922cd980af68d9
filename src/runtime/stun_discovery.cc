// Glue between the pure STUN client and the engine's shared socket; see the header.

#include "runtime/stun_discovery.h"

#include <chrono>

#include "platform/log.h"

namespace warren::runtime {

Result<std::vector<net::Endpoint>> parse_stun_servers(std::string_view value) {
  std::vector<net::Endpoint> out;
  while (true) {
    const std::size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    auto ep = net::Endpoint::parse(item);
    if (!ep || !ep->valid()) {
      return Error(EINVAL, "invalid WARREN_STUN: \"" + std::string(item) +
                               "\" is not address:port (e.g. 198.51.100.1:3478)");
    }
    out.push_back(*ep);
    if (comma == std::string_view::npos)
      break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

StunDiscovery::StunDiscovery(std::vector<net::Endpoint> servers, RandomSource& random,
                             platform::Clock& clock, mesh::StunClientOptions options)
    : clock_(clock), client_(std::move(servers), random, options) {}

void StunDiscovery::attach(dataplane::Engine& engine) {
  engine_ = &engine;
  port_ = engine.port();
  engine.set_stun_sink(this);
}

void StunDiscovery::tick() {
  const Now now = clock_.now();
  const std::uint16_t port = engine_ != nullptr ? engine_->port() : port_;
  {
    std::lock_guard lock(mutex_);
    if (port != port_) {
      platform::log_verbose("STUN: UDP port changed to %u; asking again",
                            static_cast<unsigned>(port));
      port_ = port;
      client_.restart();
    }
    if (now.mono < client_.next_deadline())
      return;
    out_.clear();
    const std::uint64_t timeouts = client_.counters().timeouts;
    client_.tick(now, out_);
    if (client_.counters().timeouts != timeouts)
      platform::log_verbose("STUN: no answer from a server (status shows which); retrying later");
  }
  // out_ is touched only here (the runtime's thread).
  if (engine_ != nullptr) {
    for (const auto& r : out_)
      engine_->send_datagram(r.to, r.datagram);
  }
}

void StunDiscovery::on_stun(const net::Path& from, ConstBytes message, Now now) {
  std::lock_guard lock(mutex_);
  const mesh::MappingKind before = client_.mapping();
  const mesh::StunVerdict v = client_.on_datagram(from.remote, message, now);
  if (v == mesh::StunVerdict::kAccepted) {
    for (const auto& r : client_.results()) {
      if (r.server.address == from.remote.address.unmapped() && r.server.port == from.remote.port) {
        platform::log_verbose(
            "STUN: reflexive endpoint %s via %s (rtt %lld ms)", r.reflexive->to_string().c_str(),
            r.server.to_string().c_str(),
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(r.rtt).count()));
      }
    }
    if (const mesh::MappingKind after = client_.mapping(); after != before)
      platform::log_verbose("STUN: NAT mapping %s", mesh::mapping_kind_name(after));
  } else if (platform::log_enabled(platform::LogLevel::kDebug)) {
    platform::log_debug("STUN: dropped a message from %s (verdict %d)",
                        from.remote.to_string().c_str(), static_cast<int>(v));
  }
}

control::StunStatus StunDiscovery::status() const {
  std::lock_guard lock(mutex_);
  control::StunStatus s;
  s.mapping = mesh::mapping_kind_name(client_.mapping());
  for (const auto& r : client_.results()) {
    control::StunServerStatus v;
    v.server = r.server.to_string();
    v.state = mesh::stun_state_name(r.state);
    if (r.reflexive) {
      v.reflexive = r.reflexive->to_string();
      v.learned_at =
          std::chrono::duration_cast<std::chrono::seconds>(r.learned_at.time_since_epoch()).count();
      v.rtt_ms = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(r.rtt).count());
    }
    s.servers.push_back(std::move(v));
  }
  return s;
}

mesh::StunClientCounters StunDiscovery::counters() const {
  std::lock_guard lock(mutex_);
  return client_.counters();
}

}  // namespace warren::runtime
