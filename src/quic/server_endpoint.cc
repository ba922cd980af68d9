// The server's demultiplexer (diagram in the header). Everything before "new Connection" is
// stateless: ngtcp2_pkt_decode_version_cid and ngtcp2_accept only parse, and the Retry token
// (ngtcp2_crypto_generate_retry_token: AEAD-sealed client address, original DCID and time
// under a per-endpoint random secret) carries what a stateful server would have remembered.
// A Stateless Reset is stateless by construction: its token is HKDF(reset_secret, DCID),
// recomputed from the packet alone.

#include "quic/server_endpoint.h"

#include <algorithm>
#include <cstring>

#include "crypto/random.h"
#include "quic/internal.h"

namespace warren::quic {

namespace {
constexpr std::size_t kScidLen = 16;
// RFC 9000 §14.1: a client's Initial datagram is at least 1200 bytes; a server sends Version
// Negotiation only in answer to one that large (§6), so it cannot amplify.
constexpr std::size_t kMinInitialSize = 1200;

std::string key_of(ConstBytes cid) {
  return std::string(reinterpret_cast<const char*>(cid.data()), cid.size());
}
std::string key_of(const ngtcp2_cid& cid) {
  return key_of(ConstBytes(cid.data, cid.datalen));
}
}  // namespace

const char* to_string(DropReason r) {
  switch (r) {
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kUnknownConnection:
      return "unknown_connection";
    case DropReason::kTooManyConnections:
      return "too_many_connections";
    case DropReason::kBadToken:
      return "bad_token";
    case DropReason::kHandshakeFailed:
      return "handshake_failed";
    case DropReason::kCount:
      break;
  }
  return "?";
}

ServerEndpoint::ServerEndpoint(ServerOptions opts)
    : opts_(std::move(opts)),
      rng_(opts_.random != nullptr ? opts_.random : &crypto::SystemRandom::instance()) {
  rng_->fill(token_secret_.span());
}

ServerEndpoint::~ServerEndpoint() = default;

Result<std::unique_ptr<ServerEndpoint>> ServerEndpoint::create(ServerOptions opts) {
  if (!opts.identity)
    return Error(EINVAL, "quic: a server needs a certificate and key");
  return std::unique_ptr<ServerEndpoint>(new ServerEndpoint(std::move(opts)));
}

ServerReceive ServerEndpoint::drop(DropReason r) {
  ++stats_.dropped[static_cast<std::size_t>(r)];
  ServerReceive out;
  out.kind = ServerReceive::Kind::kDrop;
  out.drop = r;
  return out;
}

ServerReceive ServerEndpoint::receive(ConstBytes payload, const net::Endpoint& from,
                                      const net::Endpoint& local, MonoTime now, Bytes reply_buf) {
  if (payload.empty())  // ngtcp2_pkt_decode_version_cid asserts a non-empty packet
    return drop(DropReason::kMalformed);
  ngtcp2_version_cid vc{};
  const int vrv = ngtcp2_pkt_decode_version_cid(&vc, payload.data(), payload.size(), kScidLen);
  if (vrv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    if (payload.size() < kMinInitialSize)
      return drop(DropReason::kMalformed);
    std::uint8_t unused = 0;
    rng_->fill(std::span<std::uint8_t>(&unused, 1));
    const std::uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
    const ngtcp2_ssize n =
        ngtcp2_pkt_write_version_negotiation(reply_buf.data(), reply_buf.size(), unused, vc.scid,
                                             vc.scidlen, vc.dcid, vc.dcidlen, versions, 1);
    if (n <= 0)
      return drop(DropReason::kMalformed);
    ++stats_.version_negotiations;
    ServerReceive out;
    out.kind = ServerReceive::Kind::kReply;
    out.reply_bytes = static_cast<std::size_t>(n);
    return out;
  }
  if (vrv != 0)
    return drop(DropReason::kMalformed);

  if (auto it = by_cid_.find(key_of(ConstBytes(vc.dcid, vc.dcidlen))); it != by_cid_.end()) {
    Connection* c = it->second;
    (void)c->receive(payload, from, now);  // a failure shows as c->closed()
    ServerReceive out;
    out.kind = ServerReceive::Kind::kConnection;
    out.connection = c;
    return out;
  }

  // A short header (form bit clear) for no connection of ours: perhaps one from before a
  // restart, which a reset ends at once.
  if ((payload[0] & 0x80) == 0 && opts_.reset_secret)
    return stateless_reset(payload, ConstBytes(vc.dcid, vc.dcidlen), now, reply_buf);

  // A new connection must start with a client Initial (ngtcp2_accept checks the type, the
  // 1200-byte minimum and the DCID length).
  ngtcp2_pkt_hd hd{};
  if (ngtcp2_accept(&hd, payload.data(), payload.size()) != 0 || hd.type != NGTCP2_PKT_INITIAL)
    return drop(DropReason::kUnknownConnection);
  if (conns_.size() >= opts_.max_connections)
    return drop(DropReason::kTooManyConnections);

  const internal::Addr remote(from);
  std::optional<ngtcp2_cid> odcid;
  if (opts_.retry) {
    if (hd.token.len == 0) {
      const ngtcp2_cid retry_scid = internal::random_cid(*rng_, kScidLen);
      std::uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
      const ngtcp2_ssize tlen = ngtcp2_crypto_generate_retry_token(
          token, token_secret_.data(), token_secret_.size(), hd.version, remote.addr.addr,
          remote.addr.addrlen, &retry_scid, &hd.dcid, internal::to_ts(now));
      if (tlen < 0)
        return drop(DropReason::kMalformed);
      const ngtcp2_ssize n =
          ngtcp2_crypto_write_retry(reply_buf.data(), reply_buf.size(), hd.version, &hd.scid,
                                    &retry_scid, &hd.dcid, token, static_cast<std::size_t>(tlen));
      if (n <= 0)
        return drop(DropReason::kMalformed);
      ++stats_.retries;
      ServerReceive out;
      out.kind = ServerReceive::Kind::kReply;
      out.reply_bytes = static_cast<std::size_t>(n);
      return out;
    }
    // We never send NEW_TOKEN, so only Retry tokens are valid.
    ngtcp2_cid original{};
    if (hd.token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY ||
        ngtcp2_crypto_verify_retry_token(
            &original, hd.token.base, hd.token.len, token_secret_.data(), token_secret_.size(),
            hd.version, remote.addr.addr, remote.addr.addrlen, &hd.dcid,
            internal::to_duration(opts_.token_lifetime), internal::to_ts(now)) != 0)
      return drop(DropReason::kBadToken);
    odcid = original;
  }

  // The hook learns the Connection's address once it exists (CIDs issued later, by
  // get_new_connection_id, go through it).
  auto slot = std::make_shared<Connection*>(nullptr);
  internal::ServerConnectionParams p;
  p.identity = opts_.identity;
  p.alpn = opts_.alpn;
  p.options = opts_.options;
  p.on_datagram = opts_.on_datagram;
  p.random = rng_;
  p.client_scid = hd.scid;
  p.client_dcid = hd.dcid;
  const ngtcp2_cid our_scid = internal::random_cid(*rng_, kScidLen);
  p.our_scid = our_scid;
  p.retried_odcid = odcid;
  p.version = hd.version;
  p.local = local;
  p.remote = from;
  p.reset_secret = opts_.reset_secret;
  p.cid_hook = [this, slot](ConstBytes cid, bool added) {
    if (*slot == nullptr)
      return;
    if (added) {
      by_cid_[key_of(cid)] = *slot;
    } else if (auto it = by_cid_.find(key_of(cid)); it != by_cid_.end() && it->second == *slot) {
      by_cid_.erase(it);
    }
  };
  auto made = internal::make_server_connection(std::move(p), now);
  if (!made)
    return drop(DropReason::kHandshakeFailed);
  std::unique_ptr<Connection> conn = std::move(*made);
  *slot = conn.get();
  if (!conn->receive(payload, from, now) || conn->closed()) {
    // Tell the client why (e.g. no ALPN in common) instead of leaving it to time out: one
    // CONNECTION_CLOSE in answer to a 1200-byte Initial amplifies nothing.
    ServerReceive out = drop(DropReason::kHandshakeFailed);
    const Packet close = conn->write(now, reply_buf);
    if (close.bytes > 0) {
      out.kind = ServerReceive::Kind::kReply;
      out.reply_bytes = close.bytes;
    }
    return out;
  }

  Connection* c = conn.get();
  by_cid_[key_of(hd.dcid)] = c;
  by_cid_[key_of(our_scid)] = c;
  conns_.push_back(std::move(conn));
  ++stats_.accepted;
  ServerReceive out;
  out.kind = ServerReceive::Kind::kConnection;
  out.connection = c;
  out.created = true;
  return out;
}

ServerReceive ServerEndpoint::stateless_reset(ConstBytes payload, ConstBytes dcid, MonoTime now,
                                              Bytes reply_buf) {
  // RFC 9000 §10.3: the reply must be shorter than what triggered it, so that two endpoints
  // that both think the other's connection is gone cannot bounce resets forever (each one is
  // a byte shorter until it falls below the minimum), and no reset amplifies anything.
  if (payload.size() < kMinResetTrigger)
    return drop(DropReason::kUnknownConnection);
  if (now >= reset_window_start_ + std::chrono::seconds(1) || now < reset_window_start_) {
    reset_window_start_ = now;
    resets_in_window_ = 0;
  }
  if (resets_in_window_ >= opts_.max_resets_per_second) {
    ++stats_.stateless_resets_withheld;
    return drop(DropReason::kUnknownConnection);
  }

  ngtcp2_cid cid{};
  cid.datalen = dcid.size();
  std::memcpy(cid.data, dcid.data(), dcid.size());
  std::uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  if (!internal::reset_token(*opts_.reset_secret, cid, token))
    return drop(DropReason::kUnknownConnection);
  // One byte shorter than the trigger (at most kMaxUdpPayload), so it looks like an ordinary
  // short-header packet of about the size the client sends (the random part includes the first
  // byte, whose form and fixed bits ngtcp2 sets).
  const std::size_t len = std::min({payload.size() - 1, reply_buf.size(), kMaxUdpPayload});
  if (len < NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
    return drop(DropReason::kUnknownConnection);  // only a reply_buf below contract
  std::uint8_t rand[kMaxUdpPayload];
  const std::size_t randlen = len - NGTCP2_STATELESS_RESET_TOKENLEN;
  rng_->fill(std::span<std::uint8_t>(rand, randlen));
  const ngtcp2_ssize n =
      ngtcp2_pkt_write_stateless_reset(reply_buf.data(), len, token, rand, randlen);
  if (n <= 0)
    return drop(DropReason::kUnknownConnection);
  ++resets_in_window_;
  ++stats_.stateless_resets;
  ServerReceive out;
  out.kind = ServerReceive::Kind::kReply;
  out.reply_bytes = static_cast<std::size_t>(n);
  return out;
}

MonoTime ServerEndpoint::deadline() const {
  MonoTime d = kNoDeadline;
  for (const auto& c : conns_)
    d = std::min(d, c->deadline());
  return d;
}

void ServerEndpoint::on_timer(MonoTime now) {
  for (const auto& c : conns_) {
    if (c->deadline() <= now)
      (void)c->on_timer(now);  // a failure shows as c->closed()
  }
}

std::vector<std::unique_ptr<Connection>> ServerEndpoint::expire() {
  std::vector<std::unique_ptr<Connection>> gone;
  for (auto it = conns_.begin(); it != conns_.end();) {
    if ((*it)->closed()) {
      Connection* c = it->get();
      std::erase_if(by_cid_, [c](const auto& kv) { return kv.second == c; });
      gone.push_back(std::move(*it));
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

std::vector<Connection*> ServerEndpoint::connections() const {
  std::vector<Connection*> out;
  out.reserve(conns_.size());
  for (const auto& c : conns_)
    out.push_back(c.get());
  return out;
}

}  // namespace warren::quic
