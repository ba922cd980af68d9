#pragma once
// An in-memory network between QUIC clients and one ServerEndpoint, driven by a fake clock:
// every packet write() produces is queued for the other side, optionally dropped or copied by
// a filter, and timers run when the clock is advanced to the earliest deadline.

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "quic/connection.h"
#include "quic/server_endpoint.h"

namespace warren::quic::test {

struct Pem {
  std::string cert;
  std::string key;
};

// A self-signed EC P-256 certificate, like the control channel's.
inline Pem make_self_signed() {
  gnutls_x509_privkey_t key = nullptr;
  gnutls_x509_crt_t crt = nullptr;
  EXPECT_EQ(gnutls_x509_privkey_init(&key), 0);
  EXPECT_EQ(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
            0);
  EXPECT_EQ(gnutls_x509_crt_init(&crt), 0);
  gnutls_x509_crt_set_version(crt, 3);
  const unsigned char serial[] = {1, 2, 3, 4};
  gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
  const time_t t0 = 1700000000;
  gnutls_x509_crt_set_activation_time(crt, t0);
  gnutls_x509_crt_set_expiration_time(crt, t0 + 20LL * 365 * 86400);
  gnutls_x509_crt_set_dn(crt, "CN=warren", nullptr);
  gnutls_x509_crt_set_key(crt, key);
  EXPECT_EQ(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
  gnutls_datum_t c{}, k{};
  EXPECT_EQ(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c), 0);
  EXPECT_EQ(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k), 0);
  Pem out{std::string(reinterpret_cast<char*>(c.data), c.size),
          std::string(reinterpret_cast<char*>(k.data), k.size)};
  gnutls_free(c.data);
  gnutls_free(k.data);
  gnutls_x509_crt_deinit(crt);
  gnutls_x509_privkey_deinit(key);
  return out;
}

inline const Pem& test_pem() {
  static const Pem pem = make_self_signed();
  return pem;
}
inline std::shared_ptr<const ServerIdentity> test_identity() {
  static const auto id = [] {
    auto r = ServerIdentity::from_pem(test_pem().cert, test_pem().key);
    EXPECT_TRUE(r.ok()) << r.message();
    return *r;
  }();
  return id;
}

inline net::Endpoint ep(const char* text) {
  return *net::Endpoint::parse(text);
}

struct Datagram {
  std::vector<std::uint8_t> bytes;
  net::Endpoint from;
  net::Endpoint to;
};

// Which way a packet travels, for filters.
enum class Dir { kToServer, kToClient };

class Net {
 public:
  explicit Net(ServerOptions sopts = {}) {
    if (!sopts.identity)
      sopts.identity = test_identity();
    sopts.on_datagram = [this](Connection& c, ConstBytes b) {
      server_rx.push_back({std::vector<std::uint8_t>(b.begin(), b.end()), c.remote(), server_addr});
    };
    auto r = ServerEndpoint::create(std::move(sopts));
    EXPECT_TRUE(r.ok());
    server = std::move(*r);
  }

  // A client at `local` (each client gets its own address).
  Connection* connect(ClientOptions o = {}, const char* local = "192.0.2.10:40000") {
    o.server = server_addr;
    o.local = ep(local);
    if (o.pin == Fingerprint{})
      o.pin = test_identity()->fingerprint();
    const std::size_t idx = clients.size();
    o.on_datagram = [this, idx](Connection&, ConstBytes b) {
      client_rx[idx].push_back(std::vector<std::uint8_t>(b.begin(), b.end()));
    };
    auto r = Connection::connect(std::move(o), now);
    EXPECT_TRUE(r.ok()) << r.message();
    client_local.push_back(ep(local));
    client_rx.emplace_back();
    clients.push_back(std::move(*r));
    return clients.back().get();
  }

  // Moves packets until nobody has anything to send. Returns the number delivered.
  int pump() {
    int delivered = 0;
    for (int round = 0; round < 1000; ++round) {
      collect();
      if (wire.empty())
        return delivered;
      std::deque<std::pair<Dir, Datagram>> batch;
      batch.swap(wire);
      for (auto& [dir, d] : batch) {
        ++sent;
        if (filter && !filter(dir, d))
          continue;
        ++delivered;
        deliver(dir, d);
      }
    }
    ADD_FAILURE() << "pump did not settle";
    return delivered;
  }

  void deliver(Dir dir, const Datagram& d) {
    if (dir == Dir::kToServer) {
      std::uint8_t reply[kMaxUdpPayload];
      const ServerReceive r = server->receive(d.bytes, d.from, d.to, now, reply);
      last = r;
      if (r.kind == ServerReceive::Kind::kReply)
        wire.push_back({Dir::kToClient, {{reply, reply + r.reply_bytes}, d.to, d.from}});
    } else {
      for (std::size_t i = 0; i < clients.size(); ++i) {
        if (client_local[i] == d.to && !clients[i]->closed())
          (void)clients[i]->receive(d.bytes, d.from, now);
      }
    }
  }

  // Every packet every side wants to send now, onto the wire.
  void collect() {
    std::uint8_t buf[kMaxUdpPayload];
    for (std::size_t i = 0; i < clients.size(); ++i) {
      for (;;) {
        const Packet p = clients[i]->write(now, buf);
        if (p.bytes == 0)
          break;
        wire.push_back({Dir::kToServer, {{buf, buf + p.bytes}, client_local[i], p.to}});
      }
    }
    for (Connection* c : server->connections()) {
      for (;;) {
        const Packet p = c->write(now, buf);
        if (p.bytes == 0)
          break;
        wire.push_back({Dir::kToClient, {{buf, buf + p.bytes}, server_addr, p.to}});
      }
    }
  }

  MonoTime deadline() const {
    MonoTime d = server->deadline();
    for (const auto& c : clients)
      d = std::min(d, c->deadline());
    return d;
  }

  // Advances the clock to the next deadline (at most `limit`), runs timers, pumps.
  void step(MonoTime limit) {
    MonoTime d = std::min(deadline(), limit);
    if (d > now)
      now = d;
    for (auto& c : clients)
      if (c->deadline() <= now)
        (void)c->on_timer(now);
    server->on_timer(now);
    pump();
  }

  // Runs until `done` or `budget` of fake time passed; returns done().
  bool run_until(const std::function<bool()>& done, Duration budget = std::chrono::seconds(20)) {
    const MonoTime end = now + budget;
    pump();
    while (!done() && now < end) {
      pump();  // done() may have changed something to send (e.g. taken stream bytes)
      if (done())
        break;
      step(end);
    }
    return done();
  }

  bool all_established() const {
    for (const auto& c : clients)
      if (!c->established())
        return false;
    const std::vector<Connection*> conns = server->connections();
    return conns.size() == clients.size() &&
           std::all_of(conns.begin(), conns.end(), [](Connection* c) { return c->established(); });
  }

  // Sends one datagram, pumping while congestion blocks it.
  DatagramStatus send_datagram(Connection* c, ConstBytes payload, Dir dir) {
    std::uint8_t buf[kMaxUdpPayload];
    for (int tries = 0; tries < 100; ++tries) {
      auto r = c->write_datagram(payload, now, buf);
      EXPECT_TRUE(r.ok()) << r.message();
      if (!r.ok())
        return DatagramStatus::kBlocked;
      if (r->packet.bytes > 0) {
        const net::Endpoint from = dir == Dir::kToServer ? client_local[0] : server_addr;
        wire.push_back({dir, {{buf, buf + r->packet.bytes}, from, r->packet.to}});
      }
      if (r->status != DatagramStatus::kBlocked)
        return r->status;
      pump();
    }
    return DatagramStatus::kBlocked;
  }

  MonoTime now = MonoTime(std::chrono::seconds(1000));
  net::Endpoint server_addr = ep("198.51.100.1:443");
  std::unique_ptr<ServerEndpoint> server;
  std::vector<std::unique_ptr<Connection>> clients;
  std::vector<net::Endpoint> client_local;
  std::vector<std::vector<std::vector<std::uint8_t>>> client_rx;
  std::vector<Datagram> server_rx;
  std::deque<std::pair<Dir, Datagram>> wire;
  std::function<bool(Dir, const Datagram&)> filter;  // false drops the packet
  ServerReceive last;
  int sent = 0;
};

}  // namespace warren::quic::test
