// The node's side of the mesh messages on the settings session (control/session.h,
// SessionClient::set_mesh_callbacks and send) over real loopback TLS through EnrollServer: a
// roster frame larger than the channel's 16 KiB reaches on_roster once the session is
// established, and a queued message leaves at once, not at the server's next ping.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/mesh_session.h"
#include "control/session.h"
#include "mesh/roster.h"

namespace warren::control {
namespace {

crypto::PrivateKey node_private(std::uint8_t seed) {
  std::array<std::uint8_t, 32> b{};
  b.fill(seed);
  return crypto::PrivateKey(std::span<const std::uint8_t, 32>(b));
}

Enrollment some_settings() {
  Enrollment e;
  e.name = "node";
  e.addresses = {*net::Prefix::parse("100.64.1.2/32")};
  e.server_public_key = crypto::derive_public_key(node_private(3));
  e.server_endpoint = "127.0.0.1:51820";
  e.routes = {*net::Prefix::parse("10.8.0.0/24")};
  return e;
}

// A roster of `n` nodes: its snapshot is about 100 bytes a node.
mesh::RosterDelta big_snapshot(std::size_t n) {
  mesh::AddressPlan plan;
  mesh::Roster r(plan);
  for (std::size_t i = 0; i < n; ++i) {
    std::array<std::uint8_t, 32> b{};
    b[5] = static_cast<std::uint8_t>(i);  // (not byte 0: clamping clears its low bits)
    b[6] = static_cast<std::uint8_t>(i >> 8);
    b[2] = 7;
    auto key = crypto::derive_public_key(crypto::PrivateKey(std::span<const std::uint8_t, 32>(b)));
    auto st = r.upsert(mesh::make_entry(plan, "n" + std::to_string(i), key));
    if (!st.ok())  // an IPv4 collision: take the next index
      (void)r.upsert(mesh::make_entry(plan, "n" + std::to_string(i), key, 1));
  }
  return *r.diff(0);
}

struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> types;
  std::vector<std::string> messages;
  std::uint64_t session = 0;
  bool established = false;
  template <typename Pred>
  bool wait(Pred p, std::chrono::milliseconds within) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, within, p);
  }
};

TEST(SessionClientMesh, LargeRosterFrameArrivesAndQueuedMessagesLeaveAtOnce) {
  TlsIdentity identity = TlsIdentity::generate();
  EnrollServerOptions opt;
  opt.session_ping_interval = std::chrono::seconds(30);  // no ping to carry our messages out
  opt.session_idle_timeout = std::chrono::seconds(60);
  EnrollServer server(identity, "127.0.0.1:0",
                      [](const EnrollRequest&) { return EnrollReply::failure("internal", "-"); },
                      opt);
  server.set_session_handler(
      [](const crypto::PublicKey&) -> std::optional<Enrollment> { return some_settings(); });
  Received rx;
  SessionEvents ev;
  ev.on_established = [&](std::uint64_t id, const crypto::PublicKey&) {
    std::lock_guard lock(rx.mu);
    rx.session = id;
    rx.established = true;
    rx.cv.notify_all();
  };
  ev.on_message = [&](std::uint64_t, const crypto::PublicKey&, std::string_view type,
                      std::string_view message) {
    std::lock_guard lock(rx.mu);
    rx.types.emplace_back(type);
    rx.messages.emplace_back(message);
    rx.cv.notify_all();
  };
  server.set_session_events(ev);
  server.start();

  SessionClientOptions o;
  o.control_endpoint = "127.0.0.1:" + std::to_string(server.port());
  o.fingerprint = identity.fingerprint();
  SessionClient client(o, node_private(1), [](const Enrollment&) {}, [](const std::string&) {});
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Result<mesh::RosterDelta>> rosters;
  client.set_mesh_callbacks(
      [&] { client.send(roster_request_to_json(RosterRequest{42})); },
      [&](Result<mesh::RosterDelta> d) {
        std::lock_guard lock(mu);
        rosters.push_back(std::move(d));
        cv.notify_all();
      });
  client.start();

  // The request the on_established callback queued arrives, without waiting for a ping.
  ASSERT_TRUE(rx.wait([&] { return !rx.types.empty(); }, std::chrono::seconds(5)));
  {
    std::lock_guard lock(rx.mu);
    EXPECT_EQ(rx.types[0], "roster_request");
    EXPECT_EQ(parse_roster_request(rx.messages[0])->from, 42u);
  }
  // A snapshot frame far above the 16 KiB of the channel's other messages.
  const mesh::RosterDelta snapshot = big_snapshot(1500);
  const std::string frame = roster_message_to_json(snapshot);
  ASSERT_GT(frame.size(), 4 * kMaxMessageBytes);
  server.send_to_session(rx.session, frame);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return !rosters.empty(); }));
    ASSERT_TRUE(rosters[0].ok()) << rosters[0].message();
    EXPECT_EQ(*rosters[0], snapshot);
  }
  // A message queued while the server is quiet leaves at once (the old blocking reader held it
  // until the next ping, 30 s away).
  const auto sent = std::chrono::steady_clock::now();
  EndpointReport report;
  report.local = {*net::Endpoint::parse("192.0.2.10:51820")};
  client.send(endpoints_to_json(report));
  ASSERT_TRUE(rx.wait([&] { return rx.types.size() >= 2; }, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(1));
  {
    std::lock_guard lock(rx.mu);
    EXPECT_EQ(rx.types[1], "endpoints");
    EXPECT_EQ(*parse_endpoints(rx.messages[1]), report);
  }
  EXPECT_EQ(client.sessions(), 1u);  // one session throughout
  client.stop();
  server.stop();
}

}  // namespace
}  // namespace warren::control
