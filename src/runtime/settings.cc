#include "runtime/settings.h"

#include <cstdlib>
#include <thread>

#include "wg/constants.h"

namespace warren::runtime {

Environment Environment::current() {
  Environment e;
  if (const char* v = std::getenv("WARREN_WORKERS"))
    e.workers = v;
  if (const char* v = std::getenv("WARREN_OFFLOADS"))
    e.offloads = v;
  if (const char* v = std::getenv("WARREN_RELAY"))
    e.relay = v;
  if (const char* v = std::getenv("WARREN_RELAY_PIN"))
    e.relay_pin = v;
  if (const char* v = std::getenv("WARREN_RELAY_DIRECT_RETRY"))
    e.relay_direct_retry = v;
  e.cpus = std::thread::hardware_concurrency();
  return e;
}

Result<std::size_t> parse_worker_count(const std::optional<std::string>& value, unsigned cpus) {
  if (!value || value->empty())
    return cpus == 0 ? std::size_t{1} : static_cast<std::size_t>(cpus);
  std::size_t n = 0;
  bool digits = value->size() <= 3;
  for (char c : *value) {
    if (c < '0' || c > '9') {
      digits = false;
      break;
    }
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (!digits || n < 1 || n > kMaxWorkers)
    return Error(EINVAL, "invalid WARREN_WORKERS: \"" + *value + "\" (use a number from 1 to " +
                             std::to_string(kMaxWorkers) + ")");
  return n;
}

Result<Settings> assemble(const Options& options, const Environment& env) {
  auto offloads = platform::parse_offloads(env.offloads.value_or(""));
  if (!offloads)
    return offloads.error().with_context("invalid WARREN_OFFLOADS");
  auto workers = parse_worker_count(env.workers, env.cpus);
  if (!workers)
    return workers.error();
  auto relay = parse_relay_settings(env.relay, env.relay_pin, env.relay_direct_retry);
  if (!relay)
    return relay.error();
  Settings s;
  s.offloads = *offloads;
  s.relay = *relay ? std::move(*relay) : options.relay;
  s.stun_servers = options.stun_servers;
  s.tun = platform::TunOptions{.name = options.interface,
                               .queues = *workers,
                               .vnet_hdr = offloads->tun,
                               .mtu = options.mtu == 0 ? wg::kDefaultMtu : options.mtu};
  s.engine = options.engine;
  s.engine.offloads = *offloads;
  return s;
}

}  // namespace warren::runtime
