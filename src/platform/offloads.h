#pragma once
/// Which kernel offloads the data plane may use, and the one place they are switched off.
///
/// Every offload is on by default and falls back by itself when the kernel or the path refuses
/// it. For debugging (and for CI, which runs the whole suite once with offloads off) they can be
/// switched off with the environment variable WARREN_OFFLOADS:
///
///   WARREN_OFFLOADS=all|on|""     everything the kernel accepts (the default)
///   WARREN_OFFLOADS=off|none      no offload at all (one packet per TUN/UDP buffer)
///   WARREN_OFFLOADS=tun,gso,gro   only the ones named (comma-separated, any order)
///
///   tun  TUN IFF_VNET_HDR + TUNSETOFFLOAD: TSO/USO super-packets split on read, GRO on write
///   gso  UDP_SEGMENT on send
///   gro  UDP_GRO on receive
///
/// An unknown word is a start-up error naming it (nothing is half-applied).

#include <string>
#include <string_view>

#include "base/result.h"

namespace warren::platform {

struct Offloads {
  bool tun = true;
  bool udp_gso = true;
  bool udp_gro = true;

  static Offloads none() { return Offloads{false, false, false}; }
  /// "tun,gso,gro", "off" when none are on.
  std::string to_string() const;
};

/// Parses a WARREN_OFFLOADS value: "" / "all" / "on" (everything), "off" / "none", or a
/// comma-separated list of tun, gso, gro. An unknown word is an EINVAL error naming it.
Result<Offloads> parse_offloads(std::string_view spec);

}  // namespace warren::platform
