// A client and a ServerEndpoint over the in-memory network of quic_harness.h.

#include "quic/connection.h"

#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "quic/server_endpoint.h"
#include "quic_harness.h"

namespace warren::quic::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::uint8_t>(seed + i * 7);
  return v;
}

Connection* server_conn(Net& net) {
  const auto conns = net.server->connections();
  return conns.size() == 1 ? conns[0] : nullptr;
}

TEST(QuicIdentity, FingerprintIsSha256OfTheDerCertificate) {
  gnutls_x509_crt_t crt = nullptr;
  ASSERT_EQ(gnutls_x509_crt_init(&crt), 0);
  std::string pem = test_pem().cert;
  gnutls_datum_t d{reinterpret_cast<unsigned char*>(pem.data()), static_cast<unsigned>(pem.size())};
  ASSERT_EQ(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
  gnutls_datum_t der{};
  ASSERT_EQ(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
  EXPECT_EQ(test_identity()->fingerprint(), sha256(ConstBytes(der.data, der.size)));
  EXPECT_NE(test_identity()->fingerprint(), Fingerprint{});
  gnutls_free(der.data);
  gnutls_x509_crt_deinit(crt);
}

TEST(QuicIdentity, RejectsGarbageAndMismatchedKeys) {
  EXPECT_FALSE(ServerIdentity::from_pem("not a certificate", test_pem().key).ok());
  EXPECT_FALSE(ServerIdentity::from_pem(test_pem().cert, "not a key").ok());
  const Pem other = make_self_signed();
  auto r = ServerIdentity::from_pem(test_pem().cert, other.key);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
}

TEST(QuicConnection, HandshakeCompletesAfterRetry) {
  Net net;
  Connection* c = net.connect();
  EXPECT_FALSE(c->established());
  EXPECT_EQ(c->max_datagram_payload(), 0u);
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  EXPECT_EQ(net.server->stats().retries, 1u);
  EXPECT_EQ(net.server->stats().accepted, 1u);
  EXPECT_EQ(net.server->size(), 1u);
  EXPECT_FALSE(c->closed());
  EXPECT_EQ(c->remote(), net.server_addr);
  EXPECT_EQ(server_conn(net)->remote(), net.client_local[0]);
  EXPECT_TRUE(server_conn(net)->is_server());
  EXPECT_FALSE(c->is_server());
  EXPECT_TRUE(c->reason().empty());
}

TEST(QuicConnection, HandshakeWithoutRetryWhenDisabled) {
  ServerOptions o;
  o.retry = false;
  Net net(o);
  net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  EXPECT_EQ(net.server->stats().retries, 0u);
}

TEST(QuicConnection, WrongPinFailsOnTheClient) {
  Net net;
  ClientOptions o;
  o.pin.fill(0x42);
  Connection* c = net.connect(o);
  ASSERT_TRUE(net.run_until([&] { return c->closed(); }));
  EXPECT_FALSE(c->established());
  EXPECT_NE(c->reason().find("does not match the pinned fingerprint"), std::string::npos)
      << c->reason();
  // The client told the server (TLS alert in CONNECTION_CLOSE): its connection closes too.
  ASSERT_TRUE(net.run_until([&] { return net.server->size() == 0 || server_conn(net)->closed(); }));
  (void)net.server->expire();
  EXPECT_EQ(net.server->size(), 0u);
}

TEST(QuicConnection, AlpnMismatchFails) {
  Net net;
  ClientOptions o;
  o.alpn = "something-else/1";
  Connection* c = net.connect(o);
  ASSERT_TRUE(net.run_until([&] { return c->closed(); }));
  EXPECT_FALSE(c->established());
  EXPECT_EQ(net.server->size(), 0u);
  EXPECT_GE(net.server->stats().drops(DropReason::kHandshakeFailed), 1u);
  // no_application_protocol is TLS alert 120 (RFC 7301 §3.2).
  EXPECT_NE(c->reason().find("120"), std::string::npos) << c->reason();
}

TEST(QuicConnection, DatagramsBothWaysUpToTheMaximum) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  // Let PMTUD probe the path up to kMaxUdpPayload.
  net.run_until([] { return false; }, 5s);
  Connection* s = server_conn(net);
  ASSERT_NE(s, nullptr);
  const std::size_t max_c = c->max_datagram_payload();
  const std::size_t max_s = s->max_datagram_payload();
  EXPECT_GT(max_c, 1200u);  // the path grew beyond QUIC's minimum
  EXPECT_LT(max_c, kMaxUdpPayload);
  EXPECT_GT(max_s, 1200u);

  for (std::size_t n = 1; n <= max_c; ++n) {
    const auto p = pattern(n, static_cast<std::uint8_t>(n));
    ASSERT_EQ(net.send_datagram(c, p, Dir::kToServer), DatagramStatus::kSent) << n;
    net.pump();
    ASSERT_EQ(net.server_rx.size(), n);
    ASSERT_EQ(net.server_rx.back().bytes, p) << n;
  }
  for (std::size_t n = 1; n <= max_s; ++n) {
    const auto p = pattern(n, static_cast<std::uint8_t>(n + 1));
    ASSERT_EQ(net.send_datagram(s, p, Dir::kToClient), DatagramStatus::kSent) << n;
    net.pump();
    ASSERT_EQ(net.client_rx[0].size(), n);
    ASSERT_EQ(net.client_rx[0].back(), p) << n;
  }
  std::uint8_t buf[kMaxUdpPayload];
  const auto big = pattern(max_c + 1, 1);
  auto r = c->write_datagram(big, net.now, buf);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, DatagramStatus::kTooBig);
  auto r2 = s->write_datagram(pattern(max_s + 1, 1), net.now, buf);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->status, DatagramStatus::kTooBig);
  EXPECT_TRUE(c->established());
}

TEST(QuicConnection, DatagramBeforeHandshakeIsRefused) {
  Net net;
  Connection* c = net.connect();
  std::uint8_t buf[kMaxUdpPayload];
  const std::uint8_t one[1] = {1};
  auto r = c->write_datagram(one, net.now, buf);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ENOTCONN);
}

TEST(QuicConnection, StreamCarriesBytesBothWaysBeyondTheWindow) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  Connection* s = server_conn(net);
  // Three windows' worth: flow control must reopen as the server takes the bytes.
  const auto up = pattern(200 * 1024, 3);
  c->stream_send(up);
  c->stream_finish();
  std::vector<std::uint8_t> got;
  const bool up_done = net.run_until([&] {
    auto b = s->take_stream_bytes();
    got.insert(got.end(), b.begin(), b.end());
    return s->stream_peer_finished() && got.size() == up.size();
  });
  EXPECT_EQ(got.size(), up.size());
  EXPECT_TRUE(s->stream_peer_finished());
  ASSERT_TRUE(up_done) << c->reason() << " / " << s->reason();
  EXPECT_EQ(got, up);

  const auto down = pattern(5000, 9);
  s->stream_send(down);
  std::vector<std::uint8_t> back;
  ASSERT_TRUE(net.run_until([&] {
    auto b = c->take_stream_bytes();
    back.insert(back.end(), b.begin(), b.end());
    return back.size() == down.size();
  }));
  EXPECT_EQ(back, down);
  EXPECT_FALSE(c->stream_peer_finished());
  EXPECT_FALSE(c->stream_reset());
}

TEST(QuicConnection, ExporterEqualOnBothEndsAndDiffersBetweenConnections) {
  Net net;
  Connection* c1 = net.connect({}, "192.0.2.10:40000");
  Connection* c2 = net.connect({}, "192.0.2.11:40000");
  EXPECT_EQ(c1->exporter("warren quic proof").code(), ENOTCONN);
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  ASSERT_EQ(net.server->size(), 2u);
  for (Connection* s : net.server->connections()) {
    Connection* c = s->remote() == net.client_local[0] ? c1 : c2;
    auto a = c->exporter("warren quic proof");
    auto b = s->exporter("warren quic proof");
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(constant_time_equal(a->span(), b->span()));
    EXPECT_FALSE(a->is_zero());
    auto other_label = c->exporter("another label");
    ASSERT_TRUE(other_label.ok());
    EXPECT_FALSE(constant_time_equal(a->span(), other_label->span()));
  }
  auto x = c1->exporter("warren quic proof");
  auto y = c2->exporter("warren quic proof");
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_FALSE(constant_time_equal(x->span(), y->span()));
}

TEST(QuicConnection, IdleTimeoutClosesBothEnds) {
  ServerOptions so;
  so.options.keepalive = Duration::zero();
  so.options.idle_timeout = 5s;
  Net net(so);
  ClientOptions co;
  co.options.keepalive = Duration::zero();
  co.options.idle_timeout = 5s;
  Connection* c = net.connect(co);
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  Connection* s = server_conn(net);
  const MonoTime start = net.now;
  ASSERT_TRUE(net.run_until([&] { return c->closed() && s->closed(); }, 60s));
  EXPECT_GE(net.now - start, 5s);
  EXPECT_EQ(c->reason(), "idle timeout");
  EXPECT_EQ(s->reason(), "idle timeout");
  EXPECT_EQ(net.server->expire().size(), 1u);
  EXPECT_EQ(net.server->size(), 0u);
  EXPECT_EQ(c->deadline(), kNoDeadline);
}

TEST(QuicConnection, KeepaliveKeepsAnIdleConnectionOpen) {
  ServerOptions so;
  so.options.keepalive = Duration::zero();  // only the client keeps the path alive
  so.options.idle_timeout = 5s;
  Net net(so);
  ClientOptions co;
  co.options.keepalive = 2s;
  co.options.idle_timeout = 5s;
  Connection* c = net.connect(co);
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  net.run_until([] { return false; }, 60s);
  EXPECT_TRUE(c->established()) << c->reason();
  EXPECT_TRUE(server_conn(net)->established()) << server_conn(net)->reason();
  EXPECT_TRUE(net.server_rx.empty());  // keep-alives are not delivered as datagrams
}

TEST(QuicConnection, CloseReachesThePeer) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  Connection* s = server_conn(net);
  c->close(7, "bye");
  EXPECT_TRUE(c->closed());
  net.pump();
  ASSERT_TRUE(s->closed());
  EXPECT_NE(s->reason().find("code 7"), std::string::npos) << s->reason();
  EXPECT_NE(s->reason().find("bye"), std::string::npos) << s->reason();
  EXPECT_EQ(c->reason(), "closed locally: bye");
  auto gone = net.server->expire();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].get(), s);
  EXPECT_EQ(net.server->size(), 0u);
}

TEST(QuicConnection, ServerCloseReachesTheClient) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  server_conn(net)->close(3, "revoked");
  net.pump();
  ASSERT_TRUE(c->closed());
  EXPECT_NE(c->reason().find("revoked"), std::string::npos) << c->reason();
}

TEST(QuicConnection, HandshakeCompletesWhenEveryThirdPacketIsLost) {
  Net net;
  int n = 0;
  int lost = 0;
  net.filter = [&](Dir, const Datagram&) {
    if (++n % 3 != 0)
      return true;
    ++lost;
    return false;
  };
  net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }, 30s));
  EXPECT_GE(lost, 2);  // the handshake needed retransmissions (timers), not luck
}

TEST(QuicConnection, ClientIgnoresGarbageFromTheNetwork) {
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    std::vector<std::uint8_t> b(1 + rng() % 1400);
    for (auto& x : b)
      x = static_cast<std::uint8_t>(rng());
    if (i % 2 == 0)
      b[0] = 0x40;  // short header: parsed, then fails decryption
    EXPECT_TRUE(c->receive(b, net.server_addr, net.now).ok()) << i;
  }
  EXPECT_TRUE(c->established()) << c->reason();
  EXPECT_TRUE(net.client_rx[0].empty());
  const auto p = pattern(50, 1);
  ASSERT_EQ(net.send_datagram(c, p, Dir::kToServer), DatagramStatus::kSent);
  net.pump();
  ASSERT_EQ(net.server_rx.size(), 1u);
  EXPECT_EQ(net.server_rx[0].bytes, p);
}

TEST(QuicConnection, ConnectionCapDropsNewClients) {
  ServerOptions so;
  so.max_connections = 1;
  Net net(so);
  net.connect({}, "192.0.2.10:40000");
  ASSERT_TRUE(net.run_until([&] { return net.clients[0]->established(); }));
  Connection* second = net.connect({}, "192.0.2.11:40000");
  net.run_until([] { return false; }, 2s);
  EXPECT_FALSE(second->established());
  EXPECT_EQ(net.server->size(), 1u);
  EXPECT_GE(net.server->stats().drops(DropReason::kTooManyConnections), 1u);
}

TEST(QuicConnection, ServerFollowsAClientWhosePortChanged) {
  // NAT rebinding of the client: the server sees the client's packets from a new port and
  // moves its path there (after validating it); the connection survives.
  Net net;
  Connection* c = net.connect();
  ASSERT_TRUE(net.run_until([&] { return net.all_established(); }));
  Connection* s = server_conn(net);
  const net::Endpoint rebound = ep("192.0.2.10:50000");
  net.filter = [&](Dir dir, const Datagram& d) {
    if (dir == Dir::kToServer) {
      Datagram moved = d;
      moved.from = rebound;
      net.deliver(dir, moved);
      return false;
    }
    if (d.to == rebound) {
      Datagram back = d;
      back.to = net.client_local[0];
      net.deliver(dir, back);
      return false;
    }
    return true;
  };
  const auto p = pattern(100, 5);
  ASSERT_EQ(net.send_datagram(c, p, Dir::kToServer), DatagramStatus::kSent);
  net.run_until([&] { return s->remote() == rebound; }, 5s);
  EXPECT_EQ(s->remote(), rebound);
  EXPECT_TRUE(s->established());
  ASSERT_FALSE(net.server_rx.empty());
  EXPECT_EQ(net.server_rx.back().bytes, p);
}

}  // namespace
}  // namespace warren::quic::test
