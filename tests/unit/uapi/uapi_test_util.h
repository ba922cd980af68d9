#pragma once
// Shared fixtures for the UAPI tests: test keys, a recording Handler, a temporary directory and
// a small blocking client.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/encoding.h"
#include "crypto/x25519.h"
#include "net/ip_address.h"
#include "platform/control_socket.h"
#include "uapi/server.h"
#include "wg/config.h"

namespace warren::uapi::testing {

// Keys of the wireguard-go get reply quoted in wireguard-protocol.md §2.3.
inline constexpr std::string_view kPrivHex =
    "c06b6b40db0783e15a4e93bc216689aadabfe445493ef326b02d499d87527672";
inline constexpr std::string_view kPeerHex =
    "e5b0e43bc42635df6db2c2d59ff8aaeb150039538a3c9b07e494730fcdf8c427";
inline constexpr std::string_view kPskHex =
    "7c78d1d87b29f695da29d8782ec0914e293972784e723ce1b1a472e15d623227";
// Further peers (arbitrary 32-byte values).
inline constexpr std::string_view kPeer2Hex =
    "58402e695ba1772b1cc9309755f043251ea77fdcf10fbe63989ceb7e19321376";
inline constexpr std::string_view kPeer3Hex =
    "662e14fd594556f522604703340351258903b64f35553763f19426ab2a515c58";
inline constexpr std::string_view kZeroHex =
    "0000000000000000000000000000000000000000000000000000000000000000";

inline crypto::PublicKey pub(std::string_view hex) {
  crypto::PublicKey k;
  if (!from_hex(hex, k.bytes)) {
    throw std::invalid_argument("bad test key");
  }
  return k;
}

inline crypto::PrivateKey secret(std::string_view hex) {
  crypto::PrivateKey k;
  if (!from_hex(hex, k.span())) {
    throw std::invalid_argument("bad test key");
  }
  return k;
}

inline std::string hex_of(const crypto::PrivateKey& k) {
  return to_hex(k.span());
}

inline net::Prefix prefix(std::string_view text) {
  auto p = net::Prefix::parse(text);
  if (!p) {
    throw std::invalid_argument("bad test prefix");
  }
  return *p;
}

inline net::Endpoint endpoint(std::string_view text) {
  auto e = net::Endpoint::parse(text);
  if (!e) {
    throw std::invalid_argument("bad test endpoint");
  }
  return *e;
}

// The device state behind the §2.3 example reply.
inline wg::DeviceSnapshot example_snapshot() {
  wg::DeviceSnapshot s;
  s.private_key = secret(kPrivHex);
  s.listen_port = 51999;
  wg::PeerSnapshot p;
  p.public_key = pub(kPeerHex);
  p.preshared_key = secret(kPskHex);
  p.endpoint = endpoint("127.0.0.1:54120");
  p.last_handshake_sec = 1795343723;
  p.last_handshake_nsec = 112286744;
  p.tx_bytes = 172;
  p.rx_bytes = 260;
  p.persistent_keepalive = 0;
  p.allowed_ips = {prefix("10.9.9.2/32")};
  s.peers.push_back(p);
  return s;
}

inline constexpr std::string_view kExampleReply =
    "private_key=c06b6b40db0783e15a4e93bc216689aadabfe445493ef326b02d499d87527672\n"
    "listen_port=51999\n"
    "public_key=e5b0e43bc42635df6db2c2d59ff8aaeb150039538a3c9b07e494730fcdf8c427\n"
    "preshared_key=7c78d1d87b29f695da29d8782ec0914e293972784e723ce1b1a472e15d623227\n"
    "protocol_version=1\n"
    "endpoint=127.0.0.1:54120\n"
    "last_handshake_time_sec=1795343723\n"
    "last_handshake_time_nsec=112286744\n"
    "tx_bytes=172\n"
    "rx_bytes=260\n"
    "persistent_keepalive_interval=0\n"
    "allowed_ip=10.9.9.2/32\n"
    "errno=0\n"
    "\n";

// Records every call; answers with `snapshot` and `next_error`.
class FakeHandler : public Handler {
 public:
  Status set(const wg::ConfigDelta& delta) override {
    std::lock_guard lock(mutex_);
    deltas_.push_back(delta);
    if (throw_on_set_) {
      throw std::runtime_error("handler failure");
    }
    return next_error_;
  }
  wg::DeviceSnapshot get() override {
    std::lock_guard lock(mutex_);
    ++gets_;
    return snapshot_;
  }

  void set_snapshot(wg::DeviceSnapshot s) {
    std::lock_guard lock(mutex_);
    snapshot_ = std::move(s);
  }
  void set_next_error(Status e) {
    std::lock_guard lock(mutex_);
    next_error_ = std::move(e);
  }
  void set_throw_on_set(bool t) {
    std::lock_guard lock(mutex_);
    throw_on_set_ = t;
  }
  std::vector<wg::ConfigDelta> deltas() const {
    std::lock_guard lock(mutex_);
    return deltas_;
  }
  std::size_t set_calls() const {
    std::lock_guard lock(mutex_);
    return deltas_.size();
  }
  int get_calls() const {
    std::lock_guard lock(mutex_);
    return gets_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<wg::ConfigDelta> deltas_;
  wg::DeviceSnapshot snapshot_;
  Status next_error_;
  bool throw_on_set_ = false;
  int gets_ = 0;
};

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "warren-uapi-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A blocking UAPI client over platform::connect_unix.
class Client {
 public:
  explicit Client(const std::string& path) {
    auto r = platform::connect_unix(path);
    connect_error_ = r.code();
    if (r.ok())
      conn_ = std::move(*r);
  }
  bool connected() const { return connect_error_ == 0; }
  int connect_error() const { return connect_error_; }

  bool send(std::string_view bytes) {
    return conn_.write_all(std::span<const char>(bytes.data(), bytes.size()), std::chrono::seconds(5)).ok();
  }

  // One reply, through its terminating blank line; nullopt on end of file or timeout.
  std::optional<std::string> reply(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    for (;;) {
      if (auto end = buffer_.find("\n\n"); end != std::string::npos) {
        std::string r = buffer_.substr(0, end + 2);
        buffer_.erase(0, end + 2);
        return r;
      }
      char chunk[65536];
      auto r = conn_.read(chunk, timeout);
      if (!r.ok() || *r == 0) {
        return std::nullopt;
      }
      buffer_.append(chunk, *r);
    }
  }

  std::optional<std::string> roundtrip(std::string_view request) {
    if (!send(request)) {
      return std::nullopt;
    }
    return reply();
  }

  // True when the server closes the connection (end of file or reset) within `timeout`
  // without sending anything more.
  bool closed_by_server(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    char chunk[256];
    auto r = conn_.read(chunk, timeout);
    if (!r.ok()) {
      return r.code() == ECONNRESET;
    }
    return *r == 0 && buffer_.empty();
  }

  void close() { conn_.close(); }

 private:
  platform::ControlConnection conn_;
  int connect_error_ = 0;
  std::string buffer_;
};

}  // namespace warren::uapi::testing
