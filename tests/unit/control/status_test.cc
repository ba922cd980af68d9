// Status documents and the status socket.

#include "control/status.h"

#include <gtest/gtest.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/x25519.h"

namespace warren::control {
namespace {

crypto::PrivateKey priv(std::uint8_t seed) {
  crypto::PrivateKey k;
  for (std::size_t i = 0; i < k.size(); ++i)
    k.data()[i] = static_cast<std::uint8_t>(seed * 7 + i);
  return k;
}

InterfaceStatus sample() {
  InterfaceStatus s;
  s.interface = "wg0";
  s.role = "server";
  s.public_key = crypto::derive_public_key(priv(1));
  s.listen_port = 51820;
  PeerStatus p;
  p.name = "alice";
  p.public_key = crypto::derive_public_key(priv(2));
  p.addresses = {*net::Prefix::parse("10.8.0.2/32"), *net::Prefix::parse("fd00::2/128")};
  p.endpoint = "192.0.2.7:40000";
  p.last_handshake = 1'764'614'400;
  p.rx_bytes = 1ull << 40;
  p.tx_bytes = 12;
  p.rx_packets = 3;
  p.tx_packets = 4;
  p.state = "connected";
  s.peers.push_back(p);
  p.name = "bob";
  p.public_key = crypto::derive_public_key(priv(3));
  p.addresses = {};
  p.endpoint = "";
  p.last_handshake = 0;
  p.state = "never";
  s.peers.push_back(p);
  s.pool_v4 = PoolUsage{253, 2};
  s.pool_v6 = PoolUsage{18446744073709551615ull, 2};
  return s;
}

TEST(StatusJson, RoundTrip) {
  InterfaceStatus s = sample();
  std::string j = to_json(s);
  EXPECT_NE(j.find("\"version\": 1"), std::string::npos) << j;
  InterfaceStatus b = status_from_json(j);
  EXPECT_EQ(b.interface, "wg0");
  EXPECT_EQ(b.role, "server");
  EXPECT_EQ(b.public_key, s.public_key);
  EXPECT_EQ(b.listen_port, 51820);
  ASSERT_EQ(b.peers.size(), 2u);
  EXPECT_EQ(b.peers[0].name, "alice");
  EXPECT_EQ(b.peers[0].public_key, s.peers[0].public_key);
  EXPECT_EQ(b.peers[0].addresses, s.peers[0].addresses);
  EXPECT_EQ(b.peers[0].endpoint, "192.0.2.7:40000");
  EXPECT_EQ(b.peers[0].last_handshake, 1'764'614'400);
  EXPECT_EQ(b.peers[0].rx_bytes, 1ull << 40);
  EXPECT_EQ(b.peers[0].tx_packets, 4u);
  EXPECT_EQ(b.peers[1].state, "never");
  ASSERT_TRUE(b.pool_v4 && b.pool_v6);
  EXPECT_EQ(b.pool_v4->total, 253u);
  EXPECT_EQ(b.pool_v6->total, 18446744073709551615ull);
  InterfaceStatus client;
  client.interface = "wc0";
  client.role = "client";
  auto c = status_from_json(to_json(client));
  EXPECT_FALSE(c.public_key);
  EXPECT_FALSE(c.pool_v4);
}

TEST(StatusJson, NoPrivateKeyAppears) {
  InterfaceStatus s = sample();
  std::string all = to_json(s) + format_table(s, 1'764'614'410);
  for (std::uint8_t seed : {1, 2, 3}) {
    auto k = priv(seed);
    EXPECT_EQ(all.find(crypto::secret_to_base64(k)), std::string::npos);
    EXPECT_EQ(all.find(crypto::secret_to_hex(k)), std::string::npos);
  }
  EXPECT_NE(all.find(s.peers[0].public_key.to_base64()), std::string::npos);
}

TEST(StatusJson, RejectsBadDocuments) {
  EXPECT_THROW(status_from_json("nope"), ControlError);
  EXPECT_THROW(status_from_json("{\"version\":2}"), ControlError);
  std::string j = to_json(sample());
  auto pos = j.find("\"rx_bytes\": ");
  std::string bad = j.substr(0, pos) + "\"rx_bytes\": -1" + j.substr(j.find(',', pos));
  EXPECT_THROW(status_from_json(bad), ControlError);
}

TEST(StatusTable, ShowsPeersAndPool) {
  std::string t = format_table(sample(), 1'764'614'410);
  EXPECT_NE(t.find("interface: wg0 (server)"), std::string::npos) << t;
  EXPECT_NE(t.find("2 of 253 used"), std::string::npos) << t;
  EXPECT_NE(t.find("alice"), std::string::npos);
  EXPECT_NE(t.find("10s ago"), std::string::npos) << t;
  EXPECT_NE(t.find("1.0 TiB"), std::string::npos) << t;
  EXPECT_NE(t.find("never"), std::string::npos);
}

// Where the daemon logs (`warren status`): in the JSON and the table when known; a document
// without the field (an older daemon) still parses.
TEST(StatusJson, LogDestination) {
  InterfaceStatus s = sample();
  s.log = "/var/log/warren/wg0.log";
  const std::string j = to_json(s);
  EXPECT_NE(j.find("\"log\": \"/var/log/warren/wg0.log\""), std::string::npos) << j;
  EXPECT_EQ(status_from_json(j).log, "/var/log/warren/wg0.log");
  EXPECT_NE(format_table(s, 0).find("  log:         /var/log/warren/wg0.log\n"), std::string::npos);
  s.log.clear();
  EXPECT_EQ(to_json(s).find("\"log\""), std::string::npos);
  EXPECT_EQ(status_from_json(to_json(s)).log, "");
  EXPECT_EQ(format_table(s, 0).find("log:"), std::string::npos);
}

// A client's standby state (`warren pause`): in the JSON and the table; absent when not said.
TEST(StatusJson, StandbyState) {
  InterfaceStatus s = sample();
  s.state = "paused";
  s.paused_by = "link down";
  const std::string j = to_json(s);
  EXPECT_NE(j.find("\"state\": \"paused\""), std::string::npos) << j;
  const InterfaceStatus b = status_from_json(j);
  EXPECT_EQ(b.state, "paused");
  EXPECT_EQ(b.paused_by, "link down");
  EXPECT_NE(format_table(s, 0).find("  state:       paused (link down)\n"), std::string::npos);
  s.state = "up";
  s.paused_by.clear();
  EXPECT_EQ(to_json(s).find("paused_by"), std::string::npos);
  EXPECT_NE(format_table(s, 0).find("  state:       up\n"), std::string::npos);
  s.state.clear();
  EXPECT_EQ(status_from_json(to_json(s)).state, "");
  EXPECT_EQ(format_table(s, 0).find("state:"), std::string::npos);
}

TEST(PeerState, Thresholds) {
  EXPECT_EQ(peer_state(0, 1000), "never");
  EXPECT_EQ(peer_state(900, 1000), "connected");
  EXPECT_EQ(peer_state(800, 1000), "idle");
}

// The handshake's round trip (issue 13's status): in the JSON when measured, absent before;
// in the table next to the handshake's age; a negative or non-number value is refused.
TEST(StatusJson, HandshakeRoundTrip) {
  InterfaceStatus s = sample();
  s.peers[0].rtt_ms = 0.4271;
  const std::string j = to_json(s);
  EXPECT_NE(j.find("\"rtt_ms\": 0.427"), std::string::npos) << j;
  InterfaceStatus b = status_from_json(j);
  ASSERT_TRUE(b.peers[0].rtt_ms);
  EXPECT_DOUBLE_EQ(*b.peers[0].rtt_ms, 0.427);
  EXPECT_FALSE(b.peers[1].rtt_ms);
  EXPECT_NE(format_table(s, 1'764'614'410).find("10s ago, 0.43 ms"), std::string::npos)
      << format_table(s, 1'764'614'410);
  std::string bad = j;
  bad.replace(bad.find("0.427"), 5, "-1.00");
  EXPECT_THROW(status_from_json(bad), ControlError);
  bad = j;
  bad.replace(bad.find("0.427"), 5, "\"1\"  ");
  EXPECT_THROW(status_from_json(bad), ControlError);
}

TEST(PeerStatus, FromADevicePeerSnapshot) {
  wg::PeerSnapshot p;
  p.public_key.bytes[0] = 7;
  p.preshared_key.data()[0] = 9;  // never copied: PeerStatus has no place for it
  p.endpoint = *net::Endpoint::parse("192.0.2.4:51820");
  p.allowed_ips = {*net::Prefix::parse("10.9.0.2/32")};
  p.last_handshake_sec = 900;
  p.rx_bytes = 1;
  p.tx_bytes = 2;
  p.rx_packets = 3;
  p.tx_packets = 4;
  const PeerStatus s = peer_status(p, 1000);
  EXPECT_EQ(s.public_key, p.public_key);
  EXPECT_EQ(s.addresses, p.allowed_ips);
  EXPECT_EQ(s.endpoint, "192.0.2.4:51820");
  EXPECT_EQ(s.last_handshake, 900);
  EXPECT_EQ(s.rx_bytes + 10 * s.tx_bytes + 100 * s.rx_packets + 1000 * s.tx_packets, 4321u);
  EXPECT_EQ(s.state, "connected");
  EXPECT_EQ(s.name, "");
  EXPECT_FALSE(s.rtt_ms) << "no handshake measured yet";
  p.handshake_rtt_usec = 1500;
  ASSERT_TRUE(peer_status(p, 1000).rtt_ms);
  EXPECT_DOUBLE_EQ(*peer_status(p, 1000).rtt_ms, 1.5);
  p.endpoint.reset();
  p.last_handshake_sec = 0;
  const PeerStatus never = peer_status(p, 1000);
  EXPECT_EQ(never.endpoint, "");
  EXPECT_EQ(never.state, "never");
}

TEST(StatusServer, ServesOverSocketAndCommands) {
  char dir[] = "/tmp/warren_status_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string sockdir = std::string(dir) + "/run";
  int synced = 0;
  StatusServerOptions opt;
  opt.socket_dir = sockdir;
  opt.commands["sync"] = [&](std::string_view arg) {
    ++synced;
    return "ok " + std::string(arg) + "\n";
  };
  StatusServer server(
      "wgt0", [] { return sample(); }, opt);
  server.start();
  struct stat st {};
  ASSERT_EQ(::stat(sockdir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(server.socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  InterfaceStatus s = query_status("wgt0", sockdir);
  EXPECT_EQ(s.peers.size(), 2u);
  EXPECT_EQ(query_daemon("wgt0", "sync now", sockdir), "ok now\n");
  EXPECT_EQ(synced, 1);
  EXPECT_EQ(query_daemon("wgt0", "bogus", sockdir).rfind("error:", 0), 0u);
  EXPECT_EQ(list_status_interfaces(sockdir), std::vector<std::string>{"wgt0"});
  // A second server for the same name is refused.
  StatusServer dup(
      "wgt0", [] { return sample(); }, opt);
  EXPECT_THROW(dup.start(), ControlError);
  server.stop();
  EXPECT_THROW(query_status("wgt0", sockdir), ControlError);
  EXPECT_TRUE(list_status_interfaces(sockdir).empty());
  ::rmdir(sockdir.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace warren::control

namespace warren::control {
namespace {

// Only root (or the daemon's own user) may read status: another user is refused by the file
// modes before SO_PEERCRED is even consulted.
TEST(StatusServer, OtherUsersAreRefused) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to switch to another user";
  char dir[] = "/tmp/warren_status_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ASSERT_EQ(::chmod(dir, 0755), 0);  // even with an open parent directory
  std::string sockdir = std::string(dir) + "/run";
  StatusServerOptions opt;
  opt.socket_dir = sockdir;
  StatusServer server(
      "wgt1", [] { return sample(); }, opt);
  server.start();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0)
      ::_exit(3);
    try {
      (void)query_status("wgt1", sockdir);
      ::_exit(0);  // answered: wrong
    } catch (const ControlError&) {
      ::_exit(1);
    }
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(query_status("wgt1", sockdir).interface, "wg0");  // root still is
  server.stop();
  ::rmdir(sockdir.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace warren::control

namespace warren::control {
namespace {

// With a control group: its members (here by a supplementary group, as SO_PEERGROUPS reports
// it) reach the socket and may send the group's commands, nothing else; a user outside the
// group is refused by the file modes (PermissionDenied).
TEST(StatusServer, ControlGroupMembersMaySendTheirCommandsOnly) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to switch to another user";
  constexpr gid_t kGroup = 64999;
  char dir[] = "/tmp/warren_status_XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  ASSERT_EQ(::chmod(dir, 0755), 0);
  std::string sockdir = std::string(dir) + "/run";
  StatusServerOptions opt;
  opt.socket_dir = sockdir;
  opt.commands["pause"] = [](std::string_view) { return std::string("paused\n"); };
  opt.group = kGroup;
  opt.group_commands.insert("pause");
  StatusServer server(
      "wgt2", [] { return sample(); }, opt);
  server.start();
  struct stat st {};
  ASSERT_EQ(::stat(server.socket_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, kGroup);
  ASSERT_EQ(::stat(sockdir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  // 0: pause answered, status refused; 1: refused at connect; anything else: wrong.
  auto as_user = [&](bool member) {
    pid_t pid = ::fork();
    if (pid == 0) {
      const gid_t groups[] = {kGroup};
      if (::setgroups(member ? 1 : 0, groups) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
        ::_exit(3);
      try {
        if (query_daemon("wgt2", "pause", sockdir) != "paused\n")
          ::_exit(4);
        if (query_daemon("wgt2", "status", sockdir).rfind("error: permission denied", 0) != 0)
          ::_exit(5);
        ::_exit(0);
      } catch (const PermissionDenied&) {
        ::_exit(1);
      } catch (const ControlError&) {
        ::_exit(6);
      }
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
      return -1;
    return WEXITSTATUS(status);
  };
  EXPECT_EQ(as_user(true), 0);
  EXPECT_EQ(as_user(false), 1);
  EXPECT_EQ(query_status("wgt2", sockdir).interface, "wg0");  // root: everything
  server.stop();
  ::rmdir(sockdir.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace warren::control
