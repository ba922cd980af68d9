// A QUIC connection: ngtcp2 does the transport (packets, loss recovery, congestion control,
// flow control), GnuTLS the TLS 1.3 handshake through libngtcp2_crypto_gnutls; this file
// binds them to warren's types and adds what QUIC leaves to the application:
//
//   receive ─► ngtcp2_conn_read_pkt ─► callbacks: recv_datagram ─► on_datagram
//                                                recv_stream_data ─► rx_ buffer
//                                                acked_stream_data_offset ─► free tx_ chunks
//                                                get_new_connection_id ─► ServerEndpoint's map
//   write ─► [CONNECTION_CLOSE if closing] ─► writev_stream(stream 0 data / FIN)
//         ─► [keep-alive: an empty DATAGRAM when nothing arrived for `keepalive`]
//
// The pin check runs in GnuTLS's verify callback (the handshake fails inside GnuTLS, and
// ngtcp2 reports NGTCP2_ERR_CRYPTO with the alert); ALPN is mandatory on both sides and the
// client checks the selected protocol again when the handshake completes.
//
// ngtcp2 0.12 has no keep-alive of its own (ngtcp2_conn_set_keep_alive_timeout came in 1.x),
// hence the empty DATAGRAM: it is ack-eliciting, so the peer's ACK refreshes both idle timers
// and the NAT mapping, and empty payloads are never WireGuard messages.

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "crypto/random.h"
#include "quic/internal.h"

namespace warren::quic {

namespace internal {

Addr::Addr(const net::Endpoint& e) : Addr() {
  const net::IpAddress a = e.address;
  if (a.is_v4()) {
    auto& in = storage.in;
    in.sin_family = kFamilyV4;
    store_be16(reinterpret_cast<std::uint8_t*>(&in.sin_port), e.port);
    std::memcpy(&in.sin_addr, a.data(), 4);
    addr.addrlen = sizeof(ngtcp2_sockaddr_in);
  } else {
    auto& in6 = storage.in6;
    in6.sin6_family = kFamilyV6;
    store_be16(reinterpret_cast<std::uint8_t*>(&in6.sin6_port), e.port);
    std::memcpy(&in6.sin6_addr, a.data(), 16);
    addr.addrlen = sizeof(ngtcp2_sockaddr_in6);
  }
}

std::optional<net::Endpoint> to_endpoint(const ngtcp2_addr& a) {
  if (a.addr == nullptr)
    return std::nullopt;
  net::Endpoint e;
  if (a.addr->sa_family == kFamilyV4 && a.addrlen >= sizeof(ngtcp2_sockaddr_in)) {
    const auto* in = reinterpret_cast<const ngtcp2_sockaddr_in*>(a.addr);
    e.address =
        *net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&in->sin_addr), 4);
    e.port = load_be16(reinterpret_cast<const std::uint8_t*>(&in->sin_port));
    return e;
  }
  if (a.addr->sa_family == kFamilyV6 && a.addrlen >= sizeof(ngtcp2_sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const ngtcp2_sockaddr_in6*>(a.addr);
    e.address =
        *net::IpAddress::from_bytes(reinterpret_cast<const std::uint8_t*>(&in6->sin6_addr), 16);
    e.port = load_be16(reinterpret_cast<const std::uint8_t*>(&in6->sin6_port));
    return e;
  }
  return std::nullopt;
}

bool reset_token(const Secret<32>& secret, const ngtcp2_cid& cid,
                 std::uint8_t (&token)[NGTCP2_STATELESS_RESET_TOKENLEN]) {
  return ngtcp2_crypto_generate_stateless_reset_token(token, secret.data(), secret.size(), &cid) ==
         0;
}

ngtcp2_cid random_cid(RandomSource& rng, std::size_t len) {
  ngtcp2_cid cid{};
  cid.datalen = std::min<std::size_t>(len, NGTCP2_MAX_CIDLEN);
  rng.fill(std::span<std::uint8_t>(cid.data, cid.datalen));
  return cid;
}

}  // namespace internal

using internal::Addr;

namespace {

// TLS 1.3 only, the AEADs QUIC defines (RFC 9001 §5.3), no middlebox compatibility mode
// (RFC 9001 §8.4 forbids it).
constexpr const char* kPriority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
    "+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "+GROUP-SECP384R1";
constexpr std::size_t kScidLen = 16;
// Short header (1) + packet number (up to 4) + AEAD tag (16) + DATAGRAM type (1) + length
// varint (2 for payloads below 16384); the DCID length is added per connection.
constexpr std::size_t kDatagramOverhead = 1 + 4 + 16 + 1 + 2;

std::size_t varint_len(std::uint64_t v) {
  return v < 64 ? 1 : v < 16384 ? 2 : v < (1u << 30) ? 4 : 8;
}

void fill_random(std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx* ctx) {
  static_cast<RandomSource*>(ctx->native_handle)->fill(std::span<std::uint8_t>(dest, len));
}

}  // namespace

struct Connection::Impl {
  Connection* self = nullptr;
  bool server = false;
  ngtcp2_conn* conn = nullptr;
  gnutls_session_t session = nullptr;
  gnutls_certificate_credentials_t client_cred = nullptr;  // client only (no certificates)
  std::shared_ptr<const ServerIdentity> identity;          // server only: keeps cred alive
  ngtcp2_crypto_conn_ref conn_ref{};
  RandomSource* rng = nullptr;
  ConnectionOptions options;
  DatagramHandler on_datagram;
  std::function<void(ConstBytes, bool)> cid_hook;
  std::optional<Secret<32>> reset_secret;  // server only: derives our CIDs' reset tokens
  bool got_stateless_reset = false;        // set by on_stateless_reset inside read_pkt
  Fingerprint pin{};
  std::string alpn;
  Addr local;

  enum class State : std::uint8_t { kOpen, kClosePending, kClosed };
  State state = State::kOpen;
  std::string reason;
  std::string tls_reason;  // set by a callback that fails the handshake
  ngtcp2_connection_close_error ccerr{};
  std::string close_reason_text;  // storage for ccerr.reason

  bool confirmed = false;  // RFC 9001 §4.1.2: both ends know the handshake finished
  MonoTime last_rx{};
  MonoTime last_keepalive{};
  bool keepalive_due = false;

  // Stream 0. ngtcp2 keeps pointers into sent data until it is acknowledged (it may have to
  // retransmit), so chunks stay here until acked_stream_data_offset frees them.
  std::int64_t stream_id = -1;
  std::deque<std::vector<std::uint8_t>> tx;
  std::uint64_t tx_base = 0;   // stream offset of tx.front()[0]
  std::uint64_t tx_sent = 0;   // stream offset up to which data was handed to ngtcp2
  std::uint64_t tx_end = 0;    // stream offset after the last queued byte
  std::uint64_t tx_acked = 0;  // stream offset up to which the peer acknowledged
  bool fin_wanted = false;
  bool fin_sent = false;
  std::vector<std::uint8_t> rx;
  bool peer_fin = false;
  bool reset = false;

  ~Impl() {
    if (conn != nullptr)
      ngtcp2_conn_del(conn);
    if (session != nullptr)
      gnutls_deinit(session);
    if (client_cred != nullptr)
      gnutls_certificate_free_credentials(client_cred);
  }

  void die(std::string why) {
    if (state == State::kOpen)
      reason = std::move(why);
    state = State::kClosed;
  }
  // A local error: CONNECTION_CLOSE goes out with the next write().
  void fail(std::string why) {
    if (state != State::kOpen)
      return;
    reason = std::move(why);
    state = State::kClosePending;
  }
  void fail_liberr(int rv, std::string why) {
    if (rv == NGTCP2_ERR_CRYPTO) {
      ngtcp2_connection_close_error_set_transport_error_tls_alert(
          &ccerr, ngtcp2_conn_get_tls_alert(conn), nullptr, 0);
    } else {
      ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rv, nullptr, 0);
    }
    fail(!tls_reason.empty() ? tls_reason : std::move(why));
  }

  std::string peer_close_reason() {
    ngtcp2_connection_close_error e{};
    ngtcp2_conn_get_connection_close_error(conn, &e);
    std::string text(reinterpret_cast<const char*>(e.reason), e.reasonlen);
    std::string out = "closed by peer (";
    if (e.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
      out += "code " + std::to_string(e.error_code) + ")";
    } else if (e.error_code >= 0x100 && e.error_code <= 0x1ff) {
      out += "TLS alert " + std::to_string(e.error_code - 0x100) + ")";
    } else {
      out += "transport error " + std::to_string(e.error_code) + ")";
    }
    if (!text.empty())
      out += ": " + text;
    return out;
  }

  bool has_unsent_stream_data() const { return tx_sent < tx_end; }

  // The contiguous unsent bytes starting at tx_sent.
  ngtcp2_vec unsent() const {
    std::uint64_t off = tx_base;
    for (const auto& c : tx) {
      if (tx_sent < off + c.size()) {
        const std::size_t skip = static_cast<std::size_t>(tx_sent - off);
        return ngtcp2_vec{const_cast<std::uint8_t*>(c.data()) + skip, c.size() - skip};
      }
      off += c.size();
    }
    return ngtcp2_vec{nullptr, 0};
  }

  void acked(std::uint64_t offset, std::uint64_t len) {
    tx_acked = std::max(tx_acked, offset + len);
    while (!tx.empty() && tx_base + tx.front().size() <= tx_acked) {
      tx_base += tx.front().size();
      tx.pop_front();
    }
  }
};

namespace {

using Impl = Connection::Impl;
Impl* impl_of(void* user_data) {
  return static_cast<Impl*>(user_data);
}

ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) {
  return static_cast<Impl*>(ref->user_data)->conn;
}

int on_recv_datagram(ngtcp2_conn*, std::uint32_t, const std::uint8_t* data, std::size_t len,
                     void* user_data) {
  Impl* c = impl_of(user_data);
  if (len == 0 || !c->on_datagram)
    return 0;  // an empty DATAGRAM is a keep-alive
  c->on_datagram(*c->self, ConstBytes(data, len));
  return 0;
}

int on_recv_stream_data(ngtcp2_conn*, std::uint32_t flags, std::int64_t stream_id, std::uint64_t,
                        const std::uint8_t* data, std::size_t len, void* user_data, void*) {
  Impl* c = impl_of(user_data);
  if (stream_id != c->stream_id)
    return 0;
  c->rx.insert(c->rx.end(), data, data + len);
  if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
    c->peer_fin = true;
  return 0;
}

int on_acked_stream_data(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t offset,
                         std::uint64_t len, void* user_data, void*) {
  Impl* c = impl_of(user_data);
  if (stream_id == c->stream_id)
    c->acked(offset, len);
  return 0;
}

int on_stream_open(ngtcp2_conn*, std::int64_t stream_id, void* user_data) {
  Impl* c = impl_of(user_data);
  // Transport parameters allow the client one bidirectional stream and nothing else, so this
  // is stream 0; the check keeps that assumption local.
  if (c->server && c->stream_id < 0 && stream_id == 0)
    c->stream_id = stream_id;
  return 0;
}

int on_stream_close(ngtcp2_conn*, std::uint32_t flags, std::int64_t stream_id, std::uint64_t,
                    void* user_data, void*) {
  Impl* c = impl_of(user_data);
  if (stream_id == c->stream_id && (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) &&
      !c->peer_fin)
    c->reset = true;
  return 0;
}

int on_stream_reset(ngtcp2_conn*, std::int64_t stream_id, std::uint64_t, std::uint64_t,
                    void* user_data, void*) {
  Impl* c = impl_of(user_data);
  if (stream_id == c->stream_id)
    c->reset = true;
  return 0;
}

int on_new_cid(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen,
               void* user_data) {
  Impl* c = impl_of(user_data);
  *cid = internal::random_cid(*c->rng, cidlen);
  if (c->reset_secret) {
    // A restarted ServerEndpoint with the same secret recomputes this token from the CID.
    std::uint8_t t[NGTCP2_STATELESS_RESET_TOKENLEN];
    if (!internal::reset_token(*c->reset_secret, *cid, t))
      return NGTCP2_ERR_CALLBACK_FAILURE;
    std::memcpy(token, t, sizeof t);
  } else {
    // No resets are sent for this connection (and clients never send any), so the token only
    // has to be unguessable.
    c->rng->fill(std::span<std::uint8_t>(token, NGTCP2_STATELESS_RESET_TOKENLEN));
  }
  if (c->cid_hook)
    c->cid_hook(ConstBytes(cid->data, cid->datalen), true);
  return 0;
}

int on_remove_cid(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
  Impl* c = impl_of(user_data);
  if (c->cid_hook)
    c->cid_hook(ConstBytes(cid->data, cid->datalen), false);
  return 0;
}

int on_handshake_completed(ngtcp2_conn*, void* user_data) {
  Impl* c = impl_of(user_data);
  gnutls_datum_t proto{};
  if (gnutls_alpn_get_selected_protocol(c->session, &proto) != 0 ||
      std::string_view(reinterpret_cast<const char*>(proto.data), proto.size) != c->alpn) {
    c->tls_reason = "TLS: the peer did not select ALPN \"" + c->alpn + "\"";
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

// ngtcp2 calls this only for a reset whose token matches one the peer gave us for the path it
// came on; it then returns NGTCP2_ERR_DRAINING from read_pkt, which alone would look like a
// CONNECTION_CLOSE from the peer.
int on_stateless_reset(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*, void* user_data) {
  impl_of(user_data)->got_stateless_reset = true;
  return 0;
}

int on_handshake_confirmed(ngtcp2_conn*, void* user_data) {
  impl_of(user_data)->confirmed = true;
  return 0;
}

// GnuTLS's certificate check on the client: the pin, nothing else (no CA, no host name).
int verify_pin(gnutls_session_t session) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
  Impl* c = static_cast<Impl*>(ref->user_data);
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
  if (certs == nullptr || n == 0) {
    c->tls_reason = "TLS: the server sent no certificate";
    return -1;
  }
  const Fingerprint got = sha256(ConstBytes(certs[0].data, certs[0].size));
  if (!constant_time_equal(got, c->pin)) {
    c->tls_reason = "TLS: server certificate does not match the pinned fingerprint";
    return -1;
  }
  return 0;
}

ngtcp2_callbacks make_callbacks(bool server) {
  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = fill_random;
  cb.get_new_connection_id = on_new_cid;
  cb.remove_connection_id = on_remove_cid;
  cb.handshake_completed = on_handshake_completed;
  cb.handshake_confirmed = on_handshake_confirmed;
  cb.recv_stateless_reset = on_stateless_reset;
  cb.recv_datagram = on_recv_datagram;
  cb.recv_stream_data = on_recv_stream_data;
  cb.acked_stream_data_offset = on_acked_stream_data;
  cb.stream_open = on_stream_open;
  cb.stream_close = on_stream_close;
  cb.stream_reset = on_stream_reset;
  return cb;
}

void fill_settings(ngtcp2_settings& s, const ConnectionOptions& o, RandomSource* rng,
                   MonoTime now) {
  ngtcp2_settings_default(&s);
  s.initial_ts = internal::to_ts(now);
  s.max_tx_udp_payload_size = kMaxUdpPayload;
  s.handshake_timeout = internal::to_duration(o.handshake_timeout);
  // A fixed window: the stream carries a few small control messages, not bulk data.
  s.max_window = o.stream_window;
  s.max_stream_window = o.stream_window;
  s.rand_ctx.native_handle = rng;
}

void fill_params(ngtcp2_transport_params& p, const ConnectionOptions& o, bool server) {
  ngtcp2_transport_params_default(&p);
  p.initial_max_data = o.stream_window;
  p.initial_max_stream_data_bidi_local = o.stream_window;
  p.initial_max_stream_data_bidi_remote = o.stream_window;
  p.initial_max_stream_data_uni = 0;
  p.initial_max_streams_bidi = server ? 1 : 0;  // the client opens the one stream
  p.initial_max_streams_uni = 0;
  p.max_idle_timeout = internal::to_duration(o.idle_timeout);
  p.max_datagram_frame_size = kMaxDatagramFrameSize;
}

Status setup_tls(Impl& c, bool server, gnutls_certificate_credentials_t cred) {
  const unsigned flags = server ? GNUTLS_SERVER : GNUTLS_CLIENT;
  if (gnutls_init(&c.session, flags) != GNUTLS_E_SUCCESS)
    return Error(ENOMEM, "quic: gnutls_init failed");
  const char* err = nullptr;
  if (gnutls_priority_set_direct(c.session, kPriority, &err) != GNUTLS_E_SUCCESS)
    return Error(EINVAL, "quic: TLS priority string rejected");
  const int rv = server ? ngtcp2_crypto_gnutls_configure_server_session(c.session)
                        : ngtcp2_crypto_gnutls_configure_client_session(c.session);
  if (rv != 0)
    return Error(EINVAL, "quic: cannot configure the TLS session for QUIC");
  c.conn_ref.get_conn = get_conn;
  c.conn_ref.user_data = &c;
  gnutls_session_set_ptr(c.session, &c.conn_ref);
  if (gnutls_credentials_set(c.session, GNUTLS_CRD_CERTIFICATE, cred) != GNUTLS_E_SUCCESS)
    return Error(EINVAL, "quic: cannot set TLS credentials");
  gnutls_datum_t alpn{reinterpret_cast<unsigned char*>(c.alpn.data()),
                      static_cast<unsigned>(c.alpn.size())};
  if (gnutls_alpn_set_protocols(c.session, &alpn, 1, GNUTLS_ALPN_MANDATORY) != GNUTLS_E_SUCCESS)
    return Error(EINVAL, "quic: cannot set ALPN");
  if (!server)
    gnutls_session_set_verify_function(c.session, verify_pin);
  return ok();
}

}  // namespace

// ---- creation -----------------------------------------------------------------------------

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  impl_->self = this;
}
Connection::~Connection() = default;

Result<std::unique_ptr<Connection>> Connection::connect(ClientOptions opts, MonoTime now) {
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.rng = opts.random != nullptr ? opts.random : &crypto::SystemRandom::instance();
  c.options = opts.options;
  c.on_datagram = std::move(opts.on_datagram);
  c.pin = opts.pin;
  c.alpn = opts.alpn;
  c.local = Addr(opts.local);
  c.last_rx = now;
  c.last_keepalive = now;
  ngtcp2_connection_close_error_default(&c.ccerr);

  if (gnutls_certificate_allocate_credentials(&c.client_cred) != GNUTLS_E_SUCCESS)
    return Error(ENOMEM, "quic: cannot allocate TLS credentials");
  if (Status s = setup_tls(c, false, c.client_cred); !s)
    return s.error();

  const ngtcp2_cid dcid = internal::random_cid(*c.rng, kScidLen);
  const ngtcp2_cid scid = internal::random_cid(*c.rng, kScidLen);
  Addr remote(opts.server);
  ngtcp2_path path{c.local.addr, remote.addr, nullptr};
  ngtcp2_settings settings;
  fill_settings(settings, c.options, c.rng, now);
  ngtcp2_transport_params params;
  fill_params(params, c.options, false);
  const ngtcp2_callbacks cb = make_callbacks(false);
  if (ngtcp2_conn_client_new(&c.conn, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings,
                             &params, nullptr, &c) != 0)
    return Error(ENOMEM, "quic: cannot create the connection");
  ngtcp2_conn_set_tls_native_handle(c.conn, c.session);
  return std::make_unique<Connection>(std::move(impl));
}

namespace internal {

Result<std::unique_ptr<Connection>> make_server_connection(ServerConnectionParams p, MonoTime now) {
  auto impl = std::make_unique<Impl>();
  Impl& c = *impl;
  c.server = true;
  c.rng = p.random != nullptr ? p.random : &crypto::SystemRandom::instance();
  c.options = p.options;
  c.on_datagram = std::move(p.on_datagram);
  c.cid_hook = std::move(p.cid_hook);
  c.reset_secret = p.reset_secret;
  c.identity = p.identity;
  c.alpn = p.alpn;
  c.local = Addr(p.local);
  c.last_rx = now;
  c.last_keepalive = now;
  ngtcp2_connection_close_error_default(&c.ccerr);

  if (Status s = setup_tls(
          c, true, static_cast<gnutls_certificate_credentials_t>(p.identity->credentials()));
      !s)
    return s.error();

  Addr remote(p.remote);
  ngtcp2_path path{c.local.addr, remote.addr, nullptr};
  ngtcp2_settings settings;
  fill_settings(settings, c.options, c.rng, now);
  ngtcp2_transport_params params;
  fill_params(params, c.options, true);
  if (c.reset_secret) {
    // The token of our first SCID travels in the transport parameters (RFC 9000 §18.2); the
    // others come with NEW_CONNECTION_ID (on_new_cid).
    std::uint8_t t[NGTCP2_STATELESS_RESET_TOKENLEN];
    if (!internal::reset_token(*c.reset_secret, p.our_scid, t))
      return Error(EIO, "quic: cannot derive the stateless reset token");
    std::memcpy(params.stateless_reset_token, t, sizeof t);
    params.stateless_reset_token_present = 1;
  }
  if (p.retried_odcid) {
    params.original_dcid = *p.retried_odcid;
    params.retry_scid = p.client_dcid;
    params.retry_scid_present = 1;
  } else {
    params.original_dcid = p.client_dcid;
  }
  const ngtcp2_callbacks cb = make_callbacks(true);
  if (ngtcp2_conn_server_new(&c.conn, &p.client_scid, &p.our_scid, &path, p.version, &cb, &settings,
                             &params, nullptr, &c) != 0)
    return Error(ENOMEM, "quic: cannot create the connection");
  ngtcp2_conn_set_tls_native_handle(c.conn, c.session);
  return std::make_unique<Connection>(std::move(impl));
}

}  // namespace internal

// ---- packets in ----------------------------------------------------------------------------

Status Connection::receive(ConstBytes payload, const net::Endpoint& from, MonoTime now) {
  Impl& c = *impl_;
  if (c.state != Impl::State::kOpen)
    return Error(ENOTCONN, c.reason);
  Addr remote(from);
  ngtcp2_path path{c.local.addr, remote.addr, nullptr};
  ngtcp2_pkt_info pi{};
  const int rv = ngtcp2_conn_read_pkt(c.conn, &path, &pi, payload.data(), payload.size(),
                                      internal::to_ts(now));
  if (rv == 0) {
    c.last_rx = now;
    return ok();
  }
  switch (rv) {
    case NGTCP2_ERR_DISCARD_PKT:
      return ok();  // not for us after all (ngtcp2 drops it; nothing changed)
    case NGTCP2_ERR_DRAINING:
      // A Stateless Reset also ends in DRAINING (there is no CONNECTION_CLOSE to read then).
      c.die(c.got_stateless_reset ? std::string(c.server ? "stateless reset from the client"
                                                         : "stateless reset from the server")
                                  : c.peer_close_reason());
      break;
    case NGTCP2_ERR_DROP_CONN:
      // ngtcp2 0.12 returns this on a server whose first Initial could not be used (it
      // drops the state rather than risk a corrupted SCID); resets come as DRAINING above.
      c.die("dropped (the first Initial could not be processed)");
      break;
    case NGTCP2_ERR_CRYPTO:
      c.fail_liberr(rv, "TLS handshake failed (alert " +
                            std::to_string(ngtcp2_conn_get_tls_alert(c.conn)) + ")");
      break;
    default:
      c.fail_liberr(rv, std::string("quic: ") + ngtcp2_strerror(rv));
      break;
  }
  return Error(ECONNABORTED, c.reason);
}

// ---- packets out ---------------------------------------------------------------------------

Packet Connection::write(MonoTime now, Bytes buf) {
  Impl& c = *impl_;
  const ngtcp2_tstamp ts = internal::to_ts(now);
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  if (c.state == Impl::State::kClosed)
    return {};
  if (c.state == Impl::State::kClosePending) {
    c.state = Impl::State::kClosed;
    const ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c.conn, &ps.path, &pi, buf.data(),
                                                              buf.size(), &c.ccerr, ts);
    if (n <= 0)
      return {};
    return Packet{static_cast<std::size_t>(n),
                  internal::to_endpoint(ps.path.remote).value_or(net::Endpoint{})};
  }

  // The client opens stream 0 once the handshake gave it the server's stream limit.
  if (!c.server && c.stream_id < 0 && ngtcp2_conn_get_handshake_completed(c.conn)) {
    std::int64_t id = -1;
    if (ngtcp2_conn_open_bidi_stream(c.conn, &id, nullptr) == 0)
      c.stream_id = id;
  }

  bool stream_blocked = false;
  for (;;) {
    std::int64_t sid = -1;
    ngtcp2_vec v{};
    std::size_t vcnt = 0;
    std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
    if (c.stream_id >= 0 && !stream_blocked) {
      if (c.has_unsent_stream_data()) {
        v = c.unsent();
        vcnt = 1;
        sid = c.stream_id;
      }
      // FIN goes with the last chunk (or alone).
      const bool last = vcnt == 0 || c.tx_sent + v.len == c.tx_end;
      if (c.fin_wanted && !c.fin_sent && last) {
        sid = c.stream_id;
        flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
    }
    ngtcp2_ssize datalen = -1;
    const ngtcp2_ssize n =
        ngtcp2_conn_writev_stream(c.conn, &ps.path, &pi, buf.data(), buf.size(), &datalen, flags,
                                  sid, vcnt != 0 ? &v : nullptr, vcnt, ts);
    if (n < 0) {
      if (sid >= 0 && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR ||
                       n == NGTCP2_ERR_STREAM_NOT_FOUND)) {
        stream_blocked = true;  // flow control: send everything else
        continue;
      }
      c.fail_liberr(static_cast<int>(n),
                    std::string("quic: ") + ngtcp2_strerror(static_cast<int>(n)));
      return write(now, buf);  // emits the CONNECTION_CLOSE
    }
    if (datalen >= 0) {
      c.tx_sent += static_cast<std::uint64_t>(datalen);
      if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && c.tx_sent == c.tx_end)
        c.fin_sent = true;
    }
    if (n > 0)
      return Packet{static_cast<std::size_t>(n),
                    internal::to_endpoint(ps.path.remote).value_or(net::Endpoint{})};
    break;
  }

  if (c.keepalive_due && ngtcp2_conn_get_handshake_completed(c.conn)) {
    int accepted = 0;
    const ngtcp2_ssize n =
        ngtcp2_conn_writev_datagram(c.conn, &ps.path, &pi, buf.data(), buf.size(), &accepted,
                                    NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, nullptr, 0, ts);
    if (n > 0 && accepted) {
      c.keepalive_due = false;
      c.last_keepalive = now;
    }
    if (n > 0)
      return Packet{static_cast<std::size_t>(n),
                    internal::to_endpoint(ps.path.remote).value_or(net::Endpoint{})};
  }
  return {};
}

Result<DatagramWrite> Connection::write_datagram(ConstBytes payload, MonoTime now, Bytes buf) {
  Impl& c = *impl_;
  if (c.state != Impl::State::kOpen)
    return Error(ENOTCONN, c.reason);
  if (!ngtcp2_conn_get_handshake_completed(c.conn))
    return Error(ENOTCONN, "quic: handshake not completed");
  DatagramWrite out;
  if (payload.size() > max_datagram_payload()) {
    out.status = DatagramStatus::kTooBig;
    return out;
  }
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  ngtcp2_vec v{const_cast<std::uint8_t*>(payload.data()), payload.size()};
  int accepted = 0;
  const ngtcp2_ssize n =
      ngtcp2_conn_writev_datagram(c.conn, &ps.path, &pi, buf.data(), buf.size(), &accepted,
                                  NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, &v, 1, internal::to_ts(now));
  if (n < 0) {
    if (n == NGTCP2_ERR_INVALID_ARGUMENT) {  // larger than the peer's frame limit
      out.status = DatagramStatus::kTooBig;
      return out;
    }
    c.fail_liberr(static_cast<int>(n),
                  std::string("quic: ") + ngtcp2_strerror(static_cast<int>(n)));
    return Error(ECONNABORTED, c.reason);
  }
  out.status = accepted ? DatagramStatus::kSent : DatagramStatus::kBlocked;
  out.packet.bytes = static_cast<std::size_t>(n);
  if (n > 0)
    out.packet.to = internal::to_endpoint(ps.path.remote).value_or(net::Endpoint{});
  return out;
}

std::size_t Connection::max_datagram_payload() const {
  const Impl& c = *impl_;
  if (c.state != Impl::State::kOpen || !ngtcp2_conn_get_handshake_completed(c.conn))
    return 0;
  const ngtcp2_transport_params* rp = ngtcp2_conn_get_remote_transport_params(c.conn);
  if (rp == nullptr || rp->max_datagram_frame_size == 0)
    return 0;
  // The frame: type (1) + length varint + payload must fit the peer's limit.
  std::uint64_t frame_limit = rp->max_datagram_frame_size;
  std::uint64_t by_frame = frame_limit > 9 ? frame_limit - 9 : 0;
  while (by_frame + 1 + varint_len(by_frame) < frame_limit)
    ++by_frame;
  const std::size_t path_max = ngtcp2_conn_get_path_max_tx_udp_payload_size(c.conn);
  const std::size_t overhead = kDatagramOverhead + ngtcp2_conn_get_dcid(c.conn)->datalen;
  const std::size_t by_packet = path_max > overhead ? path_max - overhead : 0;
  return static_cast<std::size_t>(std::min<std::uint64_t>(by_frame, by_packet));
}

// ---- stream 0 ------------------------------------------------------------------------------

void Connection::stream_send(ConstBytes bytes) {
  Impl& c = *impl_;
  if (bytes.empty() || c.fin_wanted)
    return;
  c.tx.emplace_back(bytes.begin(), bytes.end());
  c.tx_end += bytes.size();
}

void Connection::stream_finish() {
  impl_->fin_wanted = true;
}

std::vector<std::uint8_t> Connection::take_stream_bytes() {
  Impl& c = *impl_;
  std::vector<std::uint8_t> out;
  out.swap(c.rx);
  if (!out.empty() && c.state == Impl::State::kOpen && c.stream_id >= 0) {
    // The bytes are consumed: reopen both flow-control windows by as much.
    ngtcp2_conn_extend_max_stream_offset(c.conn, c.stream_id, out.size());
    ngtcp2_conn_extend_max_offset(c.conn, out.size());
  }
  return out;
}

bool Connection::stream_peer_finished() const {
  return impl_->peer_fin;
}
bool Connection::stream_reset() const {
  return impl_->reset;
}

// ---- TLS exporter --------------------------------------------------------------------------

Result<Secret<32>> Connection::exporter(std::string_view label) const {
  const Impl& c = *impl_;
  if (!ngtcp2_conn_get_handshake_completed(c.conn))
    return Error(ENOTCONN, "quic: handshake not completed");
  Secret<32> out;
  const int rv = gnutls_prf_rfc5705(c.session, label.size(), label.data(), 0, nullptr, out.size(),
                                    reinterpret_cast<char*>(out.data()));
  if (rv < 0)
    return Error(EIO, std::string("quic: TLS exporter: ") + gnutls_strerror(rv));
  return out;
}

// ---- timers and state ----------------------------------------------------------------------

MonoTime Connection::deadline() const {
  const Impl& c = *impl_;
  if (c.state == Impl::State::kClosed)
    return kNoDeadline;
  if (c.state == Impl::State::kClosePending)
    return MonoTime::min();  // write() has a CONNECTION_CLOSE to send now
  MonoTime d = internal::from_ts(ngtcp2_conn_get_expiry(c.conn));
  // A keep-alive already due waits for write() (congestion may hold it back); counting it
  // here would make the deadline stay in the past and the caller spin.
  if (c.options.keepalive > Duration::zero() && !c.keepalive_due &&
      ngtcp2_conn_get_handshake_completed(c.conn))
    d = std::min(d, std::max(c.last_rx, c.last_keepalive) + c.options.keepalive);
  return d;
}

Status Connection::on_timer(MonoTime now) {
  Impl& c = *impl_;
  if (c.state != Impl::State::kOpen)
    return c.state == Impl::State::kClosed ? Status(Error(ENOTCONN, c.reason)) : ok();
  if (c.options.keepalive > Duration::zero() && ngtcp2_conn_get_handshake_completed(c.conn) &&
      now >= std::max(c.last_rx, c.last_keepalive) + c.options.keepalive)
    c.keepalive_due = true;
  const int rv = ngtcp2_conn_handle_expiry(c.conn, internal::to_ts(now));
  if (rv == 0)
    return ok();
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    c.die("idle timeout");
  } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    c.die("handshake timed out");
  } else {
    c.fail_liberr(rv, std::string("quic: ") + ngtcp2_strerror(rv));
  }
  return Error(ETIMEDOUT, c.reason);
}

void Connection::close(std::uint64_t error_code, std::string_view reason) {
  Impl& c = *impl_;
  if (c.state != Impl::State::kOpen)
    return;
  c.close_reason_text = std::string(reason);
  ngtcp2_connection_close_error_set_application_error(
      &c.ccerr, error_code, reinterpret_cast<const std::uint8_t*>(c.close_reason_text.data()),
      c.close_reason_text.size());
  c.fail("closed locally: " + c.close_reason_text);
}

bool Connection::established() const {
  // ngtcp2 0.12 calls handshake_confirmed on the client only; a server's handshake is
  // confirmed when it completes (RFC 9001 §4.1.2).
  const Impl& c = *impl_;
  return c.state == Impl::State::kOpen &&
         (c.server ? ngtcp2_conn_get_handshake_completed(c.conn) != 0 : c.confirmed);
}
bool Connection::closed() const {
  return impl_->state != Impl::State::kOpen;
}
const std::string& Connection::reason() const {
  return impl_->reason;
}
net::Endpoint Connection::remote() const {
  const ngtcp2_path* p = ngtcp2_conn_get_path(impl_->conn);
  return internal::to_endpoint(p->remote).value_or(net::Endpoint{});
}
bool Connection::is_server() const {
  return impl_->server;
}

}  // namespace warren::quic
