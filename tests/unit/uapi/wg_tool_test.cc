// The real `wg` tool (wireguard-tools) against UapiServer with a recording Handler.
//
// `wg` finds userspace interfaces only in /var/run/wireguard, so these tests use that
// directory with a per-process interface name (wuapi<pid>) and remove their socket. They skip
// without root or without `wg`.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "platform/log.h"
#include "uapi/server.h"
#include "uapi_test_util.h"

namespace warren::uapi {
namespace {

using namespace testing;

struct CommandResult {
  int status = -1;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) {
    return r;
  }
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.output.append(buf.data(), n);
  }
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string b64(std::string_view hex) {
  crypto::PrivateKey k = secret(hex);
  return to_base64(k.span());
}

class WgToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root to create /var/run/wireguard sockets";
    }
    if (run("command -v wg").status != 0) {
      GTEST_SKIP() << "wg (wireguard-tools) is not installed";
    }
    platform::log_set_level(platform::LogLevel::kSilent);
    name_ = "wuapi" + std::to_string(::getpid() % 100000);
    server_ = std::make_unique<UapiServer>(name_, handler_);  // default directory
    Status e = server_->start();
    ASSERT_TRUE(e) << e.message();
    ASSERT_EQ(server_->socket_path(), "/var/run/wireguard/" + name_ + ".sock");
  }

  void TearDown() override {
    if (!server_) {
      return;
    }
    std::string path = server_->socket_path();
    server_.reset();
    EXPECT_FALSE(std::filesystem::exists(path)) << "socket left behind: " << path;
    platform::log_set_level(platform::LogLevel::kError);
  }

  std::string write_key_file(std::string_view hex) {
    std::string file = dir_.path() + "/key";
    std::ofstream(file) << b64(hex) << "\n";
    ::chmod(file.c_str(), 0600);
    return file;
  }

  std::string wg_pubkey(std::string_view private_hex) {
    CommandResult r = run("echo " + b64(private_hex) + " | wg pubkey");
    EXPECT_EQ(r.status, 0) << r.output;
    if (!r.output.empty() && r.output.back() == '\n') {
      r.output.pop_back();
    }
    return r.output;
  }

  TempDir dir_;
  FakeHandler handler_;
  std::string name_;
  std::unique_ptr<UapiServer> server_;
};

TEST_F(WgToolTest, WgSetReachesTheHandler) {
  std::string key = write_key_file(kPrivHex);
  CommandResult r = run("wg set " + name_ + " private-key " + key + " listen-port 1234 peer " +
                        b64(kPeerHex) + " allowed-ips 10.0.0.0/24 endpoint 127.0.0.1:5555");
  ASSERT_EQ(r.status, 0) << r.output;
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  const auto& d = deltas[0];
  ASSERT_TRUE(d.private_key.has_value());
  EXPECT_EQ(hex_of(*d.private_key), kPrivHex);
  EXPECT_EQ(d.listen_port, 1234);
  EXPECT_FALSE(d.fwmark.has_value());
  EXPECT_FALSE(d.replace_peers);
  ASSERT_EQ(d.peers.size(), 1u);
  const auto& p = d.peers[0];
  EXPECT_EQ(p.public_key, pub(kPeerHex));
  EXPECT_FALSE(p.remove);
  EXPECT_FALSE(p.preshared_key.has_value());
  EXPECT_EQ(p.endpoint, endpoint("127.0.0.1:5555"));
  EXPECT_FALSE(p.persistent_keepalive.has_value());
  EXPECT_TRUE(p.replace_allowed_ips);
  EXPECT_EQ(p.allowed_ips_add, std::vector<net::Prefix>{prefix("10.0.0.0/24")});
  EXPECT_TRUE(p.allowed_ips_remove.empty());
}

TEST_F(WgToolTest, WgSetIpv6EndpointKeepaliveAndRemove) {
  CommandResult r = run("wg set " + name_ + " fwmark 0x10 peer " + b64(kPeerHex) +
                        " endpoint [2001:db8::1]:51820 persistent-keepalive 25 peer " +
                        b64(kPeer2Hex) + " remove");
  ASSERT_EQ(r.status, 0) << r.output;
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].fwmark, 16u);
  ASSERT_EQ(deltas[0].peers.size(), 2u);
  EXPECT_EQ(deltas[0].peers[0].endpoint, endpoint("[2001:db8::1]:51820"));
  EXPECT_EQ(deltas[0].peers[0].persistent_keepalive, 25);
  EXPECT_EQ(deltas[0].peers[1].public_key, pub(kPeer2Hex));
  EXPECT_TRUE(deltas[0].peers[1].remove);
}

TEST_F(WgToolTest, PrivateKeyFromDevNullIsZero) {
  CommandResult r = run("wg set " + name_ + " private-key /dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  ASSERT_TRUE(deltas[0].private_key.has_value());
  EXPECT_TRUE(deltas[0].private_key->is_zero());
}

TEST_F(WgToolTest, HandlerErrorIsWhatWgPrints) {
  handler_.set_next_error(Error(EADDRINUSE, "port busy"));
  CommandResult r = run("wg set " + name_ + " listen-port 1234");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("Address already in use"), std::string::npos) << r.output;
}

TEST_F(WgToolTest, WgShowDumpPrintsTheSnapshot) {
  handler_.set_snapshot(example_snapshot());
  CommandResult r = run("wg show " + name_ + " dump");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, b64(kPrivHex) + "\t" + wg_pubkey(kPrivHex) + "\t51999\toff\n" +
                          b64(kPeerHex) + "\t" + b64(kPskHex) +
                          "\t127.0.0.1:54120\t10.9.9.2/32\t1795343723\t260\t172\toff\n");
}

TEST_F(WgToolTest, WgShowFieldsAndInterfaces) {
  wg::DeviceSnapshot s = example_snapshot();
  s.fwmark = 51820;
  s.peers[0].persistent_keepalive = 25;
  s.peers[0].allowed_ips.push_back(prefix("fd00::/8"));
  handler_.set_snapshot(s);
  EXPECT_EQ(run("wg show " + name_ + " listen-port").output, "51999\n");
  EXPECT_EQ(run("wg show " + name_ + " fwmark").output, "0xca6c\n");
  EXPECT_EQ(run("wg show " + name_ + " endpoints").output, b64(kPeerHex) + "\t127.0.0.1:54120\n");
  EXPECT_EQ(run("wg show " + name_ + " allowed-ips").output,
            b64(kPeerHex) + "\t10.9.9.2/32 fd00::/8\n");
  EXPECT_EQ(run("wg show " + name_ + " persistent-keepalive").output, b64(kPeerHex) + "\t25\n");
  EXPECT_EQ(run("wg show " + name_ + " public-key").output, wg_pubkey(kPrivHex) + "\n");
  CommandResult interfaces = run("wg show interfaces");
  EXPECT_NE(interfaces.output.find(name_), std::string::npos) << interfaces.output;
}

TEST_F(WgToolTest, WgShowconfPrintsTheSnapshot) {
  handler_.set_snapshot(example_snapshot());
  CommandResult r = run("wg showconf " + name_);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "[Interface]\nListenPort = 51999\nPrivateKey = " + b64(kPrivHex) +
                          "\n\n[Peer]\nPublicKey = " + b64(kPeerHex) +
                          "\nPresharedKey = " + b64(kPskHex) +
                          "\nAllowedIPs = 10.9.9.2/32\nEndpoint = 127.0.0.1:54120\n");
}

TEST_F(WgToolTest, WgSetconfReplacesEverything) {
  std::string conf = dir_.path() + "/wuapi.conf";
  std::ofstream(conf) << "[Interface]\nListenPort = 51820\nPrivateKey = " << b64(kPrivHex)
                      << "\n\n[Peer]\nPublicKey = " << b64(kPeerHex)
                      << "\nAllowedIPs = 10.0.0.2/32, fd00::2/128\n";
  CommandResult r = run("wg setconf " + name_ + " " + conf);
  ASSERT_EQ(r.status, 0) << r.output;
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  const auto& d = deltas[0];
  EXPECT_EQ(hex_of(d.private_key.value()), kPrivHex);
  EXPECT_EQ(d.listen_port, 51820);
  EXPECT_EQ(d.fwmark, 0u);  // setconf always sends it
  EXPECT_TRUE(d.replace_peers);
  ASSERT_EQ(d.peers.size(), 1u);
  EXPECT_TRUE(d.peers[0].replace_allowed_ips);
  EXPECT_EQ(d.peers[0].allowed_ips_add,
            (std::vector<net::Prefix>{prefix("10.0.0.2/32"), prefix("fd00::2/128")}));
}

TEST_F(WgToolTest, WgSyncconfReadsThenRemovesMissingPeers) {
  // The device has two peers; the file keeps only the first, so syncconf (get, then set)
  // must remove the second.
  wg::DeviceSnapshot s = example_snapshot();
  wg::PeerSnapshot second;
  second.public_key = pub(kPeer2Hex);
  second.allowed_ips = {prefix("10.9.9.3/32")};
  s.peers.push_back(second);
  handler_.set_snapshot(s);
  std::string conf = dir_.path() + "/wuapi.conf";
  std::ofstream(conf) << "[Interface]\nListenPort = 51999\nPrivateKey = " << b64(kPrivHex)
                      << "\n\n[Peer]\nPublicKey = " << b64(kPeerHex)
                      << "\nAllowedIPs = 10.9.9.2/32\n";
  CommandResult r = run("wg syncconf " + name_ + " " + conf);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(handler_.get_calls(), 1);
  auto deltas = handler_.deltas();
  ASSERT_EQ(deltas.size(), 1u);
  bool removed_second = false;
  for (const auto& p : deltas[0].peers) {
    if (p.public_key == pub(kPeer2Hex)) {
      removed_second = p.remove;
    }
    EXPECT_FALSE(p.public_key == pub(kPeerHex) && p.remove);
  }
  EXPECT_TRUE(removed_second);
  EXPECT_FALSE(deltas[0].replace_peers);
}

TEST_F(WgToolTest, WgSeesNoInterfaceAfterStop) {
  server_->stop();
  EXPECT_FALSE(std::filesystem::exists(server_->socket_path()));
  CommandResult r = run("wg show " + name_);
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_EQ(run("wg show interfaces").output.find(name_), std::string::npos);
}

}  // namespace
}  // namespace warren::uapi
