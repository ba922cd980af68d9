#pragma once
/// Private to src/quic: the one place that includes ngtcp2 and converts warren's value types
/// (net::Endpoint, MonoTime) to ngtcp2's. Not for use outside the module.
///
/// ngtcp2.h includes <sys/socket.h> and <netinet/in.h> for its sockaddr types unless
/// NGTCP2_USE_GENERIC_SOCKADDR is defined, in which case it declares structs of its own. We
/// define it: ngtcp2 uses addresses here only as opaque path identities (compared, hashed
/// into Retry tokens), never for a system call, so no OS header is needed. The generic
/// structs have the same layout as Linux's (static_asserts below), which matters because
/// libngtcp2 itself was compiled against the real ones. One difference: without <sys/socket.h>
/// ngtcp2.h falls back to NGTCP2_AF_INET6 = 23 (Windows' value); the library compares
/// families with Linux's AF_INET6 = 10, so we write kFamilyV6 below and never that macro.

#define NGTCP2_USE_GENERIC_SOCKADDR 1
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/secure.h"
#include "base/time.h"
#include "net/ip_address.h"
#include "quic/connection.h"

namespace warren::quic::internal {

/// Linux's address family numbers (AF_INET, AF_INET6), as libngtcp2 was built with them.
inline constexpr std::uint16_t kFamilyV4 = 2;
inline constexpr std::uint16_t kFamilyV6 = 10;
static_assert(sizeof(ngtcp2_sockaddr_in) == 16, "layout of struct sockaddr_in");
static_assert(sizeof(ngtcp2_sockaddr_in6) == 28, "layout of struct sockaddr_in6");
static_assert(sizeof(ngtcp2_sockaddr_storage) == 128, "layout of struct sockaddr_storage");
static_assert(sizeof(ngtcp2_socklen) == 4, "socklen_t");

/// An ngtcp2_addr with its own storage.
struct Addr {
  ngtcp2_sockaddr_union storage{};
  ngtcp2_addr addr{};

  Addr() { addr.addr = &storage.sa; }
  explicit Addr(const net::Endpoint& e);
  Addr(const Addr& o) : storage(o.storage) {
    addr.addr = &storage.sa;
    addr.addrlen = o.addr.addrlen;
  }
  Addr& operator=(const Addr& o) {
    storage = o.storage;
    addr.addr = &storage.sa;
    addr.addrlen = o.addr.addrlen;
    return *this;
  }
};

/// The endpoint an ngtcp2_addr names; nullopt for an unknown family or length.
std::optional<net::Endpoint> to_endpoint(const ngtcp2_addr& a);

/// ngtcp2 counts nanoseconds on a clock of the caller's choice: ours is MonoTime's.
inline ngtcp2_tstamp to_ts(MonoTime t) {
  const auto n = t.time_since_epoch().count();
  return n < 0 ? 0 : static_cast<ngtcp2_tstamp>(n);
}
inline MonoTime from_ts(ngtcp2_tstamp ts) {
  if (ts == UINT64_MAX || ts > static_cast<ngtcp2_tstamp>(INT64_MAX))
    return kNoDeadline;
  return MonoTime(Duration(static_cast<Duration::rep>(ts)));
}
inline ngtcp2_duration to_duration(Duration d) {
  return d.count() <= 0 ? 0 : static_cast<ngtcp2_duration>(d.count());
}

/// What ServerEndpoint knows when it accepts a client's Initial.
struct ServerConnectionParams {
  std::shared_ptr<const ServerIdentity> identity;
  std::string alpn;
  ConnectionOptions options;
  DatagramHandler on_datagram;
  RandomSource* random = nullptr;
  ngtcp2_cid client_scid{};  ///< our DCID
  ngtcp2_cid client_dcid{};  ///< the DCID of the accepted Initial (routes the client's Initials)
  ngtcp2_cid our_scid{};     ///< our first SCID
  std::optional<ngtcp2_cid> retried_odcid;  ///< the first Initial's DCID when a Retry came first
  std::uint32_t version = NGTCP2_PROTO_VER_V1;
  net::Endpoint local;
  net::Endpoint remote;
  /// Told of each connection ID the connection starts (true) or stops (false) using.
  std::function<void(ConstBytes cid, bool added)> cid_hook;
  /// ServerOptions::reset_secret: when set, our_scid's token (transport parameter) and every
  /// NEW_CONNECTION_ID token is reset_token(secret, cid); otherwise they are random.
  std::optional<Secret<32>> reset_secret;
};
[[nodiscard]] Result<std::unique_ptr<Connection>> make_server_connection(
    ServerConnectionParams params, MonoTime now);

/// The Stateless Reset token of `cid` under `secret` (RFC 9000 §10.3.2: a function of the
/// connection ID and a static key, so a restarted server recomputes it). False on a library
/// failure (the caller must then not use `token`).
[[nodiscard]] bool reset_token(const Secret<32>& secret, const ngtcp2_cid& cid,
                               std::uint8_t (&token)[NGTCP2_STATELESS_RESET_TOKENLEN]);

/// A random connection ID of `len` bytes.
ngtcp2_cid random_cid(RandomSource& rng, std::size_t len);

}  // namespace warren::quic::internal
