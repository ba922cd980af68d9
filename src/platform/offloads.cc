#include "platform/offloads.h"

#include <cstdlib>

namespace warren::platform {

std::string Offloads::to_string() const {
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (!on)
      return;
    if (!s.empty())
      s += ',';
    s += name;
  };
  add(tun, "tun");
  add(udp_gso, "gso");
  add(udp_gro, "gro");
  return s.empty() ? "off" : s;
}

OffloadsParse parse_offloads(std::string_view spec) {
  OffloadsParse r;
  if (spec.empty() || spec == "all" || spec == "on")
    return r;
  r.offloads = Offloads::none();
  if (spec == "off" || spec == "none")
    return r;
  for (bool more = true; more;) {
    std::size_t comma = spec.find(',');
    more = comma != std::string_view::npos;
    std::string_view word = spec.substr(0, comma);
    spec = more ? spec.substr(comma + 1) : std::string_view{};
    if (word == "tun") {
      r.offloads.tun = true;
    } else if (word == "gso") {
      r.offloads.udp_gso = true;
    } else if (word == "gro") {
      r.offloads.udp_gro = true;
    } else {
      r.ok = false;
      r.bad_word = std::string(word);
      r.offloads = Offloads{};
      return r;
    }
  }
  return r;
}

OffloadsParse offloads_from_environment() {
  const char* v = std::getenv("WARREN_OFFLOADS");
  return parse_offloads(v ? std::string_view(v) : std::string_view{});
}

}  // namespace warren::platform
