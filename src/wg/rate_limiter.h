#pragma once
/// Per-source rate limiting of handshake messages under load (whitepaper §5.3; kernel
/// ratelimiter.c; wireguard-protocol.md §1.11): a token bucket of 20 packets per second with a
/// burst of 5 for each source, IPv4 keyed by address, IPv6 keyed by its /64.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "base/time.h"
#include "net/ip_address.h"

namespace warren::wg {

/// Only sources that already proved they receive at their address (valid mac2, i.e. a cookie
/// bound to that address) should reach the limiter, so its table grows only with real sources.
///
/// Memory is bounded by `max_entries`. When the table is full, a garbage collection is attempted
/// (at most once per kIdleTimeout); if it is still full, sources not yet in the table are
/// refused until entries go idle. That only happens under an attack from very many real sources.
///
/// Time is passed in (`now` is the caller's monotonic clock); the limiter never reads a clock. A
/// `now` earlier than a source's last packet (threads racing) counts as no time elapsed.
///
/// Thread-safety: every member function may be called concurrently; one internal mutex guards
/// the table.
class RateLimiter {
 public:
  static constexpr std::uint32_t kPacketsPerSecond = 20, kPacketsBurstable = 5;
  /// Tokens are measured in time: a packet costs 50 ms and a bucket holds at most 250 ms.
  static constexpr Duration kPacketCost = Duration{std::chrono::seconds{1}} / kPacketsPerSecond;
  static constexpr Duration kTokenMax = kPacketCost * kPacketsBurstable;
  /// collect_garbage drops sources idle for longer than this.
  static constexpr Duration kIdleTimeout = std::chrono::seconds{1};

  /// `hash_seed` perturbs the table's hash so that bucket collisions are not predictable from
  /// addresses alone (pass random bytes; 0 is fine for tests).
  explicit RateLimiter(std::size_t max_entries = 65536, std::uint64_t hash_seed = 0);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  /// Takes one token from `source`'s bucket; false when the bucket is empty or the source is new
  /// and the table is full. A new source starts with a full bucket (so it gets the burst). An
  /// IPv4-mapped IPv6 source counts as its IPv4 address.
  [[nodiscard]] bool allow(const net::IpAddress& source, MonoTime now);
  /// Drops entries idle for more than kIdleTimeout. Forgetting them changes no answer: a bucket
  /// idle that long has refilled completely, exactly like a new one. Call about once a second.
  void collect_garbage(MonoTime now);
  /// Number of sources tracked.
  std::size_t size() const;

 private:
  struct Key {
    std::uint64_t bits = 0;  // IPv4 address, or the first 64 bits of an IPv6 address
    bool v6 = false;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::uint64_t seed = 0;
    std::size_t operator()(const Key& key) const noexcept;
  };
  struct Bucket {
    MonoTime last{};     // time of the last packet seen
    Duration tokens{0};  // in [0, kTokenMax]
  };

  static Key key_of(const net::IpAddress& source) noexcept;
  void collect_garbage_locked(MonoTime now);

  const std::size_t max_entries_;
  mutable std::mutex mutex_;
  std::unordered_map<Key, Bucket, KeyHash> table_;  // guarded by mutex_
  std::optional<MonoTime> last_gc_;                 // guarded by mutex_
};

}  // namespace warren::wg
