#pragma once
/// Reading the control messages of a received UDP datagram (internal to the Linux bind; a
/// header of its own so that tests can feed it hand-made, malformed input).

#include <sys/socket.h>

#include <cstddef>

#include "net/ip_address.h"

namespace warren::platform {

/// Fills path.local / path.ifindex from IP_PKTINFO or IPV6_PKTINFO and `gso_size` from UDP_GRO
/// (0 = not coalesced). Control messages that are too short, of unknown type, or that run past
/// msg_controllen are ignored; a cmsg_len shorter than a header ends the walk. Never reads
/// outside [msg_control, msg_control + msg_controllen).
void parse_udp_control(const msghdr& h, net::Path& path, std::size_t& gso_size);

}  // namespace warren::platform
