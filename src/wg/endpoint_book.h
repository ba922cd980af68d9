#pragma once
/// EndpointBook: the set of remote addresses that are some peer's current endpoint, counted
/// (several peers may sit behind one address). The Device keeps it in step with every endpoint
/// change so that handshake triage (Device::lane_of) can tell, without the device lock or any
/// cryptography, whether a handshake message comes from where an authenticated peer last was.
/// An address is qualified by its path's transport tag (net::Path::transport, opaque here): the
/// same address over another transport is another address.
///
/// Thread-safety: all members may be called concurrently; lookups take a shared lock.

#include <cstdint>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "net/ip_address.h"

namespace warren::wg {

class EndpointBook {
 public:
  /// One more peer at `address` (over `transport`).
  void add(const net::IpAddress& address, std::uint8_t transport = 0) {
    std::unique_lock lock(mu_);
    ++counts_[Key{transport, address.unmapped()}];
  }

  /// One peer fewer at `address` (a no-op for an address that is not in the book).
  void remove(const net::IpAddress& address, std::uint8_t transport = 0) {
    std::unique_lock lock(mu_);
    auto it = counts_.find(Key{transport, address.unmapped()});
    if (it != counts_.end() && --it->second == 0)
      counts_.erase(it);
  }

  bool contains(const net::IpAddress& address, std::uint8_t transport = 0) const {
    std::shared_lock lock(mu_);
    return counts_.count(Key{transport, address.unmapped()}) != 0;
  }

  std::size_t size() const {
    std::shared_lock lock(mu_);
    return counts_.size();
  }

 private:
  mutable std::shared_mutex mu_;
  using Key = std::pair<std::uint8_t, net::IpAddress>;  // (transport, address)
  std::map<Key, std::uint32_t> counts_;                 // guarded
};

}  // namespace warren::wg
