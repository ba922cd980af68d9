#pragma once
/// EndpointBook: the set of remote addresses that are some peer's current endpoint, counted
/// (several peers may sit behind one address). The Device keeps it in step with every endpoint
/// change so that handshake triage (Device::lane_of) can tell, without the device lock or any
/// cryptography, whether a handshake message comes from where an authenticated peer last was.
///
/// Thread-safety: all members may be called concurrently; lookups take a shared lock.

#include <cstdint>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "net/ip_address.h"

namespace warren::wg {

class EndpointBook {
 public:
  /// One more peer at `address`.
  void add(const net::IpAddress& address) {
    std::unique_lock lock(mu_);
    ++counts_[address.unmapped()];
  }

  /// One peer fewer at `address` (a no-op for an address that is not in the book).
  void remove(const net::IpAddress& address) {
    std::unique_lock lock(mu_);
    auto it = counts_.find(address.unmapped());
    if (it != counts_.end() && --it->second == 0)
      counts_.erase(it);
  }

  bool contains(const net::IpAddress& address) const {
    std::shared_lock lock(mu_);
    return counts_.count(address.unmapped()) != 0;
  }

  std::size_t size() const {
    std::shared_lock lock(mu_);
    return counts_.size();
  }

 private:
  mutable std::shared_mutex mu_;
  std::map<net::IpAddress, std::uint32_t> counts_;  // guarded
};

}  // namespace warren::wg
