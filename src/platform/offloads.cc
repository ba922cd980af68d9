#include "platform/offloads.h"


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

Result<Offloads> parse_offloads(std::string_view spec) {
  if (spec.empty() || spec == "all" || spec == "on")
    return Offloads{};
  Offloads o = Offloads::none();
  if (spec == "off" || spec == "none")
    return o;
  for (bool more = true; more;) {
    std::size_t comma = spec.find(',');
    more = comma != std::string_view::npos;
    std::string_view word = spec.substr(0, comma);
    spec = more ? spec.substr(comma + 1) : std::string_view{};
    if (word == "tun") {
      o.tun = true;
    } else if (word == "gso") {
      o.udp_gso = true;
    } else if (word == "gro") {
      o.udp_gro = true;
    } else {
      return Error(EINVAL, "unknown offload \"" + std::string(word) +
                               "\" (use all, off, or a comma-separated list of tun, gso, gro)");
    }
  }
  return o;
}

}  // namespace warren::platform
