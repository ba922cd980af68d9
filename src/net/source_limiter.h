#pragma once
/// SourceLimiter: how many connections (or bindings) each source holds now, against a cap per
/// source — the per-source admission limit of the enrollment server (src/control/enroll.cc)
/// and of the relay (src/server/relay_service.cc). A source is an IPv4 address or an IPv6 /64
/// (one host or one site; several nodes behind one NAT share it). Pure, thread-compatible.
///
///   key = SourceLimiter::key(peer address)
///   if (limiter.full(key)) refuse;  else { limiter.add(key); ... later limiter.remove(key); }

#include <cstddef>
#include <map>

#include "net/ip_address.h"

namespace warren::net {

class SourceLimiter {
 public:
  explicit SourceLimiter(std::size_t per_source) : per_source_(per_source) {}

  /// The source an address counts against: itself (IPv4) or its /64 (IPv6).
  [[nodiscard]] static IpAddress key(const IpAddress& address) {
    return address.is_v6() ? address.masked(64) : address;
  }
  /// True when `key` holds per_source entries already.
  [[nodiscard]] bool full(const IpAddress& key) const { return count(key) >= per_source_; }
  [[nodiscard]] std::size_t count(const IpAddress& key) const {
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }
  void add(const IpAddress& key) { ++counts_[key]; }
  /// Forgets one entry of `key` (none held: nothing happens); a source at 0 is dropped.
  void remove(const IpAddress& key) {
    if (auto it = counts_.find(key); it != counts_.end() && --it->second == 0)
      counts_.erase(it);
  }
  /// Sources holding at least one entry.
  [[nodiscard]] std::size_t sources() const { return counts_.size(); }

 private:
  std::size_t per_source_;
  std::map<IpAddress, std::size_t> counts_;
};

}  // namespace warren::net
