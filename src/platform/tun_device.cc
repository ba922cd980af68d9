#include "platform/tun_device.h"

namespace warren::platform {

std::string TunOffloadState::to_string() const {
  if (!vnet_hdr || !tso)
    return "off";
  return uso ? "tso,uso" : "tso";
}

}  // namespace warren::platform
