#include "client/resolve.h"

#include "platform/resolve.h"

namespace warren::client {

std::optional<net::Endpoint> resolve_endpoint(const HostPort& hp, std::string& error) {
  auto r = platform::resolve_udp(hp.host, hp.port);
  if (!r) {
    error = r.message();
    return std::nullopt;
  }
  return *r;
}

}  // namespace warren::client
