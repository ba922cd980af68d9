// Datagrams from anyone into the server's QUIC demultiplexer (quic/server_endpoint.h).
//
// The input is a sequence of records: one byte of flags, a 16-bit length, that many bytes.
// flags % 4 picks what happens:
//   0  the bytes as a datagram to the endpoint with Retry on (the default configuration)
//   1  the same to an endpoint with Retry off (so Initials reach TLS and connection state)
//   2  a real client Initial (fresh per input) with the bytes written over it at an offset
//      given by the first two bytes, to both endpoints
//   3  the clock advances by (first byte) × 100 ms; timers run and connections write
// The source address is one of four, chosen by flags >> 2.
//
// Invariants: nothing crashes or leaks; with Retry on no connection is ever created (no
// input can carry a valid token for an address without receiving the Retry); every stateless
// reply is at most three times the datagram it answers (RFC 9000 §8: no amplification);
// every datagram is accounted for exactly once (dropped, replied to, or given to a
// connection); the connection cap holds.

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include <algorithm>
#include <memory>
#include <string>

#include "fuzz_support.h"
#include "quic/connection.h"
#include "quic/server_endpoint.h"

namespace {

using namespace warren;
using namespace warren::quic;

std::shared_ptr<const ServerIdentity> make_identity() {
  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  gnutls_x509_privkey_init(&key);
  gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                               GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
  gnutls_x509_crt_init(&crt);
  gnutls_x509_crt_set_version(crt, 3);
  const unsigned char serial[] = {1};
  gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
  gnutls_x509_crt_set_activation_time(crt, 1700000000);
  gnutls_x509_crt_set_expiration_time(crt, 2000000000);
  gnutls_x509_crt_set_dn(crt, "CN=warren", nullptr);
  gnutls_x509_crt_set_key(crt, key);
  gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
  gnutls_datum_t c{}, k{};
  gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c);
  gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k);
  const std::string cert(reinterpret_cast<char*>(c.data), c.size);
  const std::string pkey(reinterpret_cast<char*>(k.data), k.size);
  gnutls_free(c.data);
  gnutls_free(k.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  auto id = ServerIdentity::from_pem(cert, pkey);
  WARREN_FUZZ_CHECK(id.ok());
  return *id;
}

const std::shared_ptr<const ServerIdentity>& identity() {
  static const auto id = make_identity();
  return id;
}

struct Side {
  std::unique_ptr<ServerEndpoint> ep;
  std::uint64_t fed = 0, replies = 0, to_connection = 0;
};

Side make_side(bool retry) {
  ServerOptions o;
  o.identity = identity();
  o.retry = retry;
  o.max_connections = 4;
  o.on_datagram = [](Connection&, ConstBytes b) { WARREN_FUZZ_CHECK(!b.empty()); };
  auto r = ServerEndpoint::create(std::move(o));
  WARREN_FUZZ_CHECK(r.ok());
  return Side{std::move(*r)};
}

void feed(Side& s, ConstBytes d, const net::Endpoint& from, MonoTime now) {
  static const net::Endpoint local = *net::Endpoint::parse("198.51.100.1:443");
  std::uint8_t reply[kMaxUdpPayload];
  const ServerReceive r = s.ep->receive(d, from, local, now, reply);
  ++s.fed;
  switch (r.kind) {
    case ServerReceive::Kind::kReply:
      ++s.replies;
      WARREN_FUZZ_CHECK(r.reply_bytes > 0 && r.reply_bytes <= 3 * d.size());
      break;
    case ServerReceive::Kind::kConnection:
      ++s.to_connection;
      WARREN_FUZZ_CHECK(r.connection != nullptr);
      break;
    case ServerReceive::Kind::kDrop:
      break;
  }
  WARREN_FUZZ_CHECK(s.ep->size() <= 4);
}

void flush(Side& s, MonoTime now) {
  std::uint8_t buf[kMaxUdpPayload];
  for (Connection* c : s.ep->connections()) {
    for (int i = 0; i < 64; ++i) {
      const Packet p = c->write(now, buf);
      WARREN_FUZZ_CHECK(p.bytes <= kMaxUdpPayload);
      if (p.bytes == 0)
        break;
    }
  }
  (void)s.ep->expire();
}

std::uint64_t accounted(const Side& s) {
  const ServerStats& st = s.ep->stats();
  std::uint64_t drops = 0;
  for (auto d : st.dropped)
    drops += d;
  // A failed handshake's CONNECTION_CLOSE is a reply that is also counted as a drop.
  return drops + s.replies + s.to_connection;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Cursor in(data, size);
  MonoTime now = MonoTime(std::chrono::seconds(1000));
  Side with_retry = make_side(true);
  Side without_retry = make_side(false);

  ClientOptions co;
  co.server = *net::Endpoint::parse("198.51.100.1:443");
  co.local = *net::Endpoint::parse("192.0.2.10:40000");
  auto client = Connection::connect(co, now);
  WARREN_FUZZ_CHECK(client.ok());
  std::uint8_t initial_buf[kMaxUdpPayload];
  const Packet initial = (*client)->write(now, initial_buf);
  WARREN_FUZZ_CHECK(initial.bytes >= 1200);

  static const net::Endpoint sources[4] = {
      *net::Endpoint::parse("192.0.2.10:40000"), *net::Endpoint::parse("192.0.2.11:40000"),
      *net::Endpoint::parse("[2001:db8::1]:443"), *net::Endpoint::parse("203.0.113.7:1")};
  while (!in.empty()) {
    const std::uint8_t flags = in.u8();
    const std::size_t len = in.u16() % 1500;
    const auto bytes = in.take(len);
    const net::Endpoint& from = sources[(flags >> 2) & 3];
    switch (flags % 4) {
      case 0:
        feed(with_retry, bytes, from, now);
        break;
      case 1:
        feed(without_retry, bytes, from, now);
        flush(without_retry, now);
        break;
      case 2: {
        std::vector<std::uint8_t> pkt(initial_buf, initial_buf + initial.bytes);
        if (bytes.size() >= 2) {
          const std::size_t at = ((bytes[0] << 8) | bytes[1]) % pkt.size();
          const auto patch = bytes.subspan(2);
          const std::size_t n = std::min(patch.size(), pkt.size() - at);
          std::copy_n(patch.begin(), n, pkt.begin() + static_cast<std::ptrdiff_t>(at));
        }
        feed(with_retry, pkt, from, now);
        feed(without_retry, pkt, from, now);
        flush(without_retry, now);
        break;
      }
      default:
        now += std::chrono::milliseconds(100) * (bytes.empty() ? 1 : bytes[0]);
        with_retry.ep->on_timer(now);
        without_retry.ep->on_timer(now);
        flush(without_retry, now);
        break;
    }
    WARREN_FUZZ_CHECK(with_retry.ep->size() == 0);
    WARREN_FUZZ_CHECK(with_retry.ep->stats().accepted == 0);
  }
  for (const Side* s : {&with_retry, &without_retry}) {
    const std::uint64_t hs_failed = s->ep->stats().drops(DropReason::kHandshakeFailed);
    const std::uint64_t a = accounted(*s);
    WARREN_FUZZ_CHECK(a >= s->fed && a <= s->fed + hs_failed);
  }
  return 0;
}
