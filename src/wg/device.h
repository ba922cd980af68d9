#pragma once
/// wg::Device: the WireGuard protocol for one interface, with no I/O.
///
///   TUN ──ip packet──► encapsulate() ──datagram──► (caller sends)      verdict kToNetwork
///   UDP ──datagram──►  decapsulate() ──ip packet──► (caller writes TUN) verdict kToTun
///   clock ───now────►  tick()        ──datagrams──► Outbox (handshakes, keepalives)
///
/// Bytes and time go in; verdicts and datagrams come out. Handshake traffic and anything a
/// call produces besides its own verdict (responses, cookie replies, keepalives, packets that
/// were staged while no session existed) is appended to the caller's Outbox (wg/outbox.h), in
/// the order it would go on the wire; the caller sends it after the call returned.
///
/// Thread-safety: encapsulate/decapsulate/tick may run concurrently on any number of threads,
/// each with its own Outbox. apply() and snapshot() may run concurrently with them too (they
/// take the device's write / read lock). The Device never calls out of a call (it holds its
/// locks only while appending to the Outbox), so whatever the caller does with the outputs
/// afterwards, calling back into the Device included (forget_source), is safe.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/bytes.h"
#include "base/random.h"
#include "base/result.h"
#include "base/time.h"
#include "net/ip_address.h"
#include "wg/config.h"
#include "wg/constants.h"
#include "wg/outbox.h"

namespace warren::wg {

enum class Verdict : std::uint8_t {
  kDrop,       ///< nothing to do (see the Drop reason; kNone for consumed handshake traffic)
  kToNetwork,  ///< send buf[0, length) to `to`
  kToTun,      ///< write buf[offset, offset + length) to the TUN device
  kQueued,     ///< staged until a session exists; a handshake was started if allowed
};

/// Why a packet was dropped; each has a device counter.
enum class Drop : std::uint8_t {
  kNone = 0,
  kTooShort,
  kUnknownType,  ///< includes non-zero reserved bytes
  kBadSize,      ///< handshake message of the wrong length
  kBadMac1,
  kCookieSent,  ///< under load without a valid mac2: a cookie reply was sent instead
  kRateLimited,
  kNoPrivateKey,
  kUnknownPeer,
  kHandshakeFailed,  ///< decryption or DH failed during a handshake
  kReplayedTimestamp,
  kInitiationFlood,  ///< initiations from one peer less than 20 ms apart
  kUnknownIndex,
  kBadCookieReply,
  kDecryptFailed,
  kExpiredKeypair,
  kReplayedCounter,
  kBadInnerPacket,
  kAllowedIpsMismatch,
  kNoRoute,     ///< no peer's allowed IPs contain the destination
  kNoEndpoint,  ///< the peer has no known endpoint
  kTooLarge,
  kRoutingLoop,   ///< a packet for a peer's own endpoint routed into that peer's tunnel
  kPeerIsolated,  ///< isolate_peers: a decrypted packet addressed to another peer
  /// The peer's initiation crossed ours and ours wins (the lower public key): ours was sent
  /// again instead of an answer (docs/ARCHITECTURE.md, "Crossing initiations").
  kSimultaneousInitiation,
  kCount
};

const char* drop_name(Drop d);

struct SendResult {
  Verdict verdict = Verdict::kDrop;
  Drop drop = Drop::kNone;
  std::size_t length = 0;  ///< datagram length from buf[0] when kToNetwork
  net::Path to;            ///< destination when kToNetwork
};

struct RecvResult {
  Verdict verdict = Verdict::kDrop;
  Drop drop = Drop::kNone;
  std::size_t offset = 0;  ///< plaintext IP packet at buf[offset, offset + length) when kToTun
  std::size_t length = 0;
};

/// Handshake triage, for a caller that defers handshake work to bounded queues (the engine;
/// wireguard-go's handshake queue, the kernel's MAX_QUEUED_INCOMING_HANDSHAKES). Data and
/// cookie replies are cheap and go straight to decapsulate(); a handshake message costs a cookie
/// reply under load or a Diffie-Hellman otherwise, so under a flood only some can be answered.
/// The lanes say which to keep first, cheapest test first and without cryptography:
enum class Lane : std::uint8_t {
  kKnownEndpoint,  ///< from the address of some peer's current endpoint (a re-handshake)
  kWithMac2,       ///< carries a mac2 valid under our current cookie secret for its source:
                   ///< its sender holds one of our cookies (it receives at that address)
  kOther,          ///< any other handshake message (first contact, and floods)
  kDirect,         ///< not a well-sized handshake message: decapsulate() at once
};
inline constexpr std::size_t kHandshakeLanes = 3;  ///< the lanes before kDirect, best first

/// "known_endpoint", "with_mac2", "other", "direct".
const char* lane_name(Lane l);

struct DeviceOptions {
  /// Handshake messages per second (all peers) above which the device is under load and
  /// demands cookies (whitepaper §5.3); sticky for kUnderLoadAfterTime.
  std::uint32_t under_load_handshakes_per_second = 1000;
  /// Cap on the tunnel MTU used for padding (padding never exceeds it).
  std::uint32_t mtu = kDefaultMtu;
  /// Drops decrypted packets whose destination is another peer's allowed IP (a server whose
  /// clients must not reach each other through it), counted as Drop::kPeerIsolated.
  bool isolate_peers = false;
  /// Reference mode for differential tests: tick() visits every peer and next_deadline()
  /// scans every peer, as before the timer heap (O(peers) per call). Never set in production.
  bool tick_visits_every_peer = false;
};


class Device {
 public:
  explicit Device(RandomSource& rng, DeviceOptions options = {});
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// Applies a whole configuration delta or none of it. Peer removal, key changes and
  /// allowed-IPs moves follow wireguard-go; enabling persistent keepalive sends one at once.
  [[nodiscard]] Status apply(const ConfigDelta& delta, Now now, Outbox& outbox);
  DeviceSnapshot snapshot() const;

  /// `buf` holds an IP packet at [kSendHeadroom, kSendHeadroom + packet_len) and has at least
  /// kSendTailroom bytes after it. On kToNetwork the datagram is buf[0, length).
  [[nodiscard]] SendResult encapsulate(Bytes buf, std::size_t packet_len, Now now, Outbox& outbox);

  /// `datagram` is modified in place (decryption). On kToTun the IP packet is at
  /// datagram[offset, offset + length).
  [[nodiscard]] RecvResult decapsulate(const net::Path& from, Bytes datagram, Now now,
                                       Outbox& outbox);

  /// The lane of a received datagram (see Lane), at `now` (the cookie secret's age). Changes
  /// no state. The known-endpoint test is a lookup; a non-zero mac2 is checked against the
  /// cookie for the source (two keyed BLAKE2s, only while a cookie secret younger than
  /// kCookieRefreshTime exists, i.e. during and just after load), so a flood of forged mac2s
  /// lands in kOther and cannot crowd out a sender that really holds a cookie. A spoofed
  /// known-endpoint source only changes the order in which a message waits: decapsulate()
  /// still checks mac1, mac2 and the rate limit of everything that waited.
  Lane lane_of(const net::Path& from, ConstBytes datagram, MonoTime now) const;

  /// Runs due timers: retransmissions, keepalives, rekeys, key zeroing, staged-packet expiry,
  /// rate-limiter garbage collection. Visits only the peers with a timer due at `now`.
  void tick(Now now, Outbox& outbox);
  /// Monotonic time at which tick() next has work, or kNoDeadline. Never later than the next due
  /// timer; may be earlier (tick() then finds nothing to do). Lock-free: an atomic load, cheap
  /// enough to compare after every batch. A call on any thread (a packet, apply()) may make it
  /// earlier; the caller that sleeps until it must be woken then (see dataplane/engine.cc).
  MonoTime next_deadline() const;
  /// Peers tick() has visited, in total (tests: only due peers are visited).
  std::uint64_t timer_visits() const;

  /// The local source address of `path` no longer works (the kernel refused it): peers whose
  /// endpoint uses it send from the routing default until a packet tells us better
  /// (wireguard-go ClearSrc).
  void forget_source(const net::Path& path);
  /// Routes changed: every peer's sticky source is forgotten.
  void forget_all_sources();

  void set_mtu(std::uint32_t mtu);
  std::uint32_t mtu() const;
  /// DeviceOptions::isolate_peers from now on (a server's reload of client_to_client); packets
  /// being decrypted meanwhile see either value.
  void set_isolate_peers(bool on);
  /// Forces under-load mode on or off (tests and operators); nullopt restores automatic mode.
  void force_under_load(std::optional<bool> on);

  std::uint64_t drop_count(Drop d) const;
  std::size_t peer_count() const;
  /// The device's public key, if it has a private key.
  std::optional<crypto::PublicKey> public_key() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace warren::wg
