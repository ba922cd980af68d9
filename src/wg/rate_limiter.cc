#include "wg/rate_limiter.h"

#include <algorithm>
#include <new>

namespace warren::wg {

std::size_t RateLimiter::KeyHash::operator()(const Key& key) const noexcept {
  // splitmix64's finaliser over the seeded key: cheap, and every input bit reaches every output
  // bit, so /64s that differ in one bit land in unrelated buckets.
  std::uint64_t x = key.bits ^ seed ^ (key.v6 ? 0x9e3779b97f4a7c15ULL : 0);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<std::size_t>(x);
}

RateLimiter::RateLimiter(std::size_t max_entries, std::uint64_t hash_seed)
    : max_entries_(max_entries), table_(0, KeyHash{hash_seed}) {}

RateLimiter::Key RateLimiter::key_of(const net::IpAddress& source) noexcept {
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; keyed by /64 they would all share
  // one bucket, so one noisy IPv4 source could starve every other.
  const net::IpAddress address = source.unmapped();
  const std::uint8_t* p = address.data();
  Key key;
  key.v6 = address.is_v6();
  const std::size_t bytes = key.v6 ? 8 : 4;  // an IPv6 host usually owns its whole /64
  for (std::size_t i = 0; i < bytes; ++i) {
    key.bits = (key.bits << 8) | p[i];
  }
  return key;
}

bool RateLimiter::allow(const net::IpAddress& source, MonoTime now) {
  const Key key = key_of(source);
  std::lock_guard lock(mutex_);
  if (auto it = table_.find(key); it != table_.end()) {
    Bucket& bucket = it->second;
    // Clamp before adding so a long idle period cannot overflow the sum.
    const Duration elapsed = now > bucket.last ? now - bucket.last : Duration{0};
    bucket.last = std::max(bucket.last, now);
    const Duration tokens = std::min(kTokenMax, bucket.tokens + std::min(elapsed, kTokenMax));
    if (tokens < kPacketCost) {
      bucket.tokens = tokens;
      return false;
    }
    bucket.tokens = tokens - kPacketCost;
    return true;
  }

  if (table_.size() >= max_entries_) {
    // A full sweep is O(table); bounding it to once per idle period keeps a flood of new sources
    // from turning every refused packet into one. Entries cannot go idle faster than that anyway.
    if (!last_gc_ || now - *last_gc_ >= kIdleTimeout) {
      collect_garbage_locked(now);
    }
    if (table_.size() >= max_entries_) {
      return false;
    }
  }
  try {
    table_.emplace(key, Bucket{now, kTokenMax - kPacketCost});
  } catch (const std::bad_alloc&) {
    return false;  // refusing a handshake is the safe answer when memory runs out
  }
  return true;
}

void RateLimiter::collect_garbage(MonoTime now) {
  std::lock_guard lock(mutex_);
  collect_garbage_locked(now);
}

void RateLimiter::collect_garbage_locked(MonoTime now) {
  last_gc_ = now;
  std::erase_if(table_,
                [now](const auto& entry) { return now - entry.second.last > kIdleTimeout; });
}

std::size_t RateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return table_.size();
}

}  // namespace warren::wg
