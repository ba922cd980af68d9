#include "runtime/relay_settings.h"

#include "net/host_port.h"

namespace warren::runtime {

Result<std::optional<RelaySettings>> parse_relay_settings(
    const std::optional<std::string>& relay_at, const std::optional<std::string>& pin,
    const std::optional<std::string>& direct_retry) {
  if (!relay_at || relay_at->empty())
    return std::optional<RelaySettings>{};
  RelaySettings s;
  auto hp = net::split_host_port(*relay_at);
  if (!hp)
    return Error(EINVAL, "invalid WARREN_RELAY: \"" + *relay_at + "\" (use HOST:PORT)");
  s.host = hp->host;
  s.port = hp->port;
  if (!pin || pin->empty())
    return Error(EINVAL,
                 "WARREN_RELAY is set but WARREN_RELAY_PIN is not (the SHA-256 of the "
                 "relay's TLS certificate, 64 hex digits, as in an invite)");
  auto fp = control::fingerprint_from_hex(*pin);
  if (!fp || pin->size() != 64)
    return Error(EINVAL, "invalid WARREN_RELAY_PIN: \"" + *pin + "\" (use 64 hex digits)");
  s.pin = *fp;
  if (direct_retry && !direct_retry->empty()) {
    unsigned n = 0;
    bool ok = direct_retry->size() <= 4;
    for (char c : *direct_retry) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || n < 1 || n > 3600)
      return Error(EINVAL, "invalid WARREN_RELAY_DIRECT_RETRY: \"" + *direct_retry +
                               "\" (use seconds from 1 to 3600)");
    s.direct_retry = std::chrono::seconds(n);
  }
  return std::optional<RelaySettings>{std::move(s)};
}

}  // namespace warren::runtime
