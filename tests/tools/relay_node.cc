// warren-relay-node: a mesh node's side of the relay over TCP/TLS, for
// tests/integration/test_relay.sh (not installed).
//
//   warren-relay-node --relay HOST:PORT --pin SHA256HEX --key-file FILE
//                     [--claim PUBKEY] [--send-to PUBKEY --count N] [--expect M]
//                     [--until-closed] [--timeout SECONDS] [--udp]
//
//   connect (TLS, certificate pinned) ─► challenge ─► auth (proof with the private key from
//   FILE, 0600; a wg-quick file's "PrivateKey = " line or a bare base64 key) ─► auth ok
//   ─► N datagrams to PUBKEY (each followed by a ping: an unknown-destination error before the
//      pong means "not connected yet": sent again 50 ms later) ─► until M datagrams received
//   ─► with --until-closed, reads until the relay closes the connection.
// --udp: the same over UDP to the same port (one frame per datagram; it opens with a "hello",
// an auth frame of zeros, answers the stateless challenge with a udp-auth frame echoing it, and
// the certificate pin is not used: UDP has no TLS).
// --claim sends PUBKEY as the node key while proving with FILE's key (an impersonation: the
// relay must refuse it).
//
// Prints one line per event: "auth ok", "recv <source key> <datagram text>", "error <code>
// <text>", "closed", "done sent=N received=M". Exit: 0 done, 1 refused or closed early, 2 usage
// or I/O error, 3 timeout.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/secure.h"
#include "control/tls.h"
#include "crypto/x25519.h"
#include "mesh/relay.h"
#include "platform/files.h"

namespace {

using namespace warren;
namespace relay = warren::mesh::relay;
using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "warren-relay-node: %s\n", why);
  std::exit(2);
}

crypto::PrivateKey read_key(const std::string& path) {
  auto info = platform::file_info(path);
  if (!info)
    usage(("cannot stat the key file: " + info.message()).c_str());
  if (info->mode & 077)
    usage("the key file must not be readable by group or others (chmod 600)");
  auto text = platform::read_file(path, 64 * 1024);
  if (!text)
    usage(("cannot read the key file: " + text.message()).c_str());
  std::string_view t = *text;
  std::string_view value = t;
  if (auto p = t.find("PrivateKey"); p != std::string_view::npos) {
    value = t.substr(p + 10);
    value.remove_prefix(std::min(value.find_first_not_of(" \t="), value.size()));
  }
  value = value.substr(0, value.find_first_of(" \t\r\n"));
  crypto::PrivateKey key;
  const bool ok = crypto::secret_from_base64(value, key);
  secure_zero(text->data(), text->size());
  if (!ok)
    usage("the key file holds no base64 private key");
  return key;
}

struct Link {
  std::unique_ptr<control::TlsStream> tls;
  int udp = -1;  // a connected UDP socket instead of tls
  Clock::time_point deadline;
  std::vector<std::uint8_t> buf;

  // The next frame; nullopt when the relay closed the stream (never over UDP).
  std::optional<relay::Frame> next() {
    if (udp >= 0) {
      buf.resize(relay::kMaxFrameSize);
      for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{udp, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
          std::printf("timeout\n");
          std::exit(3);
        }
        const ssize_t n = ::recv(udp, buf.data(), buf.size(), 0);
        if (n <= 0)
          continue;
        auto f = relay::decode_frame(ConstBytes(buf.data(), static_cast<std::size_t>(n)));
        if (!f) {
          std::printf("bad frame: %s\n", f.message().c_str());
          std::exit(2);
        }
        return *f;
      }
    }
    std::array<std::uint8_t, relay::kHeaderSize> h{};
    try {
      tls->read_exact(h, deadline);
      const std::size_t n = std::size_t{h[1]} << 16 | std::size_t{h[2]} << 8 | h[3];
      buf.assign(h.begin(), h.end());
      buf.resize(relay::kHeaderSize + n);
      if (n)
        tls->read_exact(std::span(buf).subspan(relay::kHeaderSize), deadline);
    } catch (const control::ControlError& e) {
      if (Clock::now() >= deadline) {
        std::printf("timeout\n");
        std::exit(3);
      }
      return std::nullopt;
    }
    auto f = relay::decode_frame(buf);
    if (!f) {
      std::printf("bad frame: %s\n", f.message().c_str());
      std::exit(2);
    }
    return *f;
  }
  void send(const std::vector<std::uint8_t>& b) {
    if (udp >= 0) {
      if (::send(udp, b.data(), b.size(), 0) != static_cast<ssize_t>(b.size())) {
        std::printf("send failed: %s\n", std::strerror(errno));
        std::exit(2);
      }
      return;
    }
    tls->write_all(b, deadline);
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string relay_at, pin_hex, key_file, claim, send_to;
  int count = 0, expect = 0, timeout_s = 10;
  bool until_closed = false, use_udp = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        usage(("missing value for " + std::string(a)).c_str());
      return argv[++i];
    };
    if (a == "--relay")
      relay_at = value();
    else if (a == "--pin")
      pin_hex = value();
    else if (a == "--key-file")
      key_file = value();
    else if (a == "--claim")
      claim = value();
    else if (a == "--send-to")
      send_to = value();
    else if (a == "--count")
      count = std::stoi(value());
    else if (a == "--expect")
      expect = std::stoi(value());
    else if (a == "--timeout")
      timeout_s = std::stoi(value());
    else if (a == "--udp")
      use_udp = true;
    else if (a == "--until-closed")
      until_closed = true;
    else
      usage(("unknown option " + std::string(a)).c_str());
  }
  auto hp = control::split_host_port(relay_at);
  auto pin = control::fingerprint_from_hex(pin_hex);
  if (!hp || (!pin && !use_udp) || key_file.empty())
    usage("--relay HOST:PORT, --pin SHA256HEX and --key-file FILE are required");
  const crypto::PrivateKey priv = read_key(key_file);
  const crypto::PublicKey pub = crypto::derive_public_key(priv);
  crypto::PublicKey claimed = pub;
  if (!claim.empty()) {
    auto k = crypto::PublicKey::from_base64(claim);
    if (!k)
      usage("--claim is not a base64 public key");
    claimed = *k;
  }
  crypto::PublicKey to;
  if (count > 0) {
    auto k = crypto::PublicKey::from_base64(send_to);
    if (!k)
      usage("--send-to is not a base64 public key");
    to = *k;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  Link link;
  link.deadline = Clock::now() + std::chrono::seconds(timeout_s);
  if (use_udp) {
    sockaddr_in to4{};
    to4.sin_family = AF_INET;
    to4.sin_port = htons(hp->port);
    if (::inet_pton(AF_INET, hp->host.c_str(), &to4.sin_addr) != 1)
      usage("--udp needs a numeric IPv4 relay address");
    link.udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (link.udp < 0 || ::connect(link.udp, reinterpret_cast<sockaddr*>(&to4), sizeof to4) != 0)
      usage("cannot open the UDP socket");
    link.send(relay::encode_udp_hello());
  } else {
    try {
      link.tls = control::TlsStream::connect(hp->host, hp->port, *pin, link.deadline);
    } catch (const control::ControlError& e) {
      std::printf("connect failed: %s\n", e.what());
      return 2;
    }
  }
  int received = 0;
  // Handles a frame that is not the one being waited for; false when it ends the session.
  auto other = [&](const relay::Frame& f) {
    if (f.type == relay::FrameType::kRecv) {
      ++received;
      std::printf("recv %s %.*s\n", f.key.to_base64().c_str(), static_cast<int>(f.datagram.size()),
                  reinterpret_cast<const char*>(f.datagram.data()));
    } else if (f.type == relay::FrameType::kError) {
      std::printf("error %u %s\n", f.error, f.text.c_str());
    }
  };
  try {
    auto ch = link.next();
    if (!ch || ch->type != relay::FrameType::kChallenge) {
      std::printf("no challenge\n");
      return 1;
    }
    auto proof = relay::prove(priv, pub, ch->key, ch->challenge);
    if (!proof) {
      std::printf("cannot prove: %s\n", proof.message().c_str());
      return 1;
    }
    // Over UDP the challenge is the relay's stateless cookie: echo it with the proof.
    link.send(link.udp >= 0 ? relay::encode_udp_auth(claimed, *proof, ch->challenge)
                            : relay::encode_auth(claimed, *proof));
    auto ok = link.next();
    if (!ok || ok->type != relay::FrameType::kAuthOk) {
      if (ok)
        other(*ok);
      if (link.udp >= 0) {  // no stream to see closed: the refusal is the end
        std::printf("closed\n");
        return 1;
      }
      while (auto f = link.next())
        other(*f);
      std::printf("closed\n");
      return 1;
    }
    std::printf("auth ok\n");

    std::uint64_t nonce = 0;
    for (int sent = 0; sent < count;) {
      const std::string text = "datagram " + std::to_string(sent) + " from " + pub.to_base64();
      std::vector<std::uint8_t> frame(relay::kDataHeaderSize + text.size());
      (void)relay::write_data_header(
          std::span<std::uint8_t, relay::kDataHeaderSize>(frame.data(), relay::kDataHeaderSize),
          relay::FrameType::kSend, to, text.size());
      std::memcpy(frame.data() + relay::kDataHeaderSize, text.data(), text.size());
      link.send(frame);
      link.send(relay::encode_ping(relay::FrameType::kPing, ++nonce));
      bool unknown = false;
      for (;;) {
        auto f = link.next();
        if (!f) {
          std::printf("closed\n");
          return 1;
        }
        if (f->type == relay::FrameType::kPong && f->nonce == nonce)
          break;
        if (f->type == relay::FrameType::kError &&
            f->error == static_cast<std::uint16_t>(relay::ErrorCode::kUnknownDestination))
          unknown = true;  // not connected yet: quietly sent again
        else
          other(*f);
      }
      if (unknown)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      else
        ++sent;
    }
    while (received < expect) {
      auto f = link.next();
      if (!f) {
        std::printf("closed\n");
        return 1;
      }
      other(*f);
    }
    std::printf("done sent=%d received=%d\n", count, received);
    if (until_closed) {
      while (auto f = link.next())
        other(*f);
      std::printf("closed\n");
    }
  } catch (const control::ControlError& e) {
    std::printf("closed (%s)\n", e.what());
    return until_closed ? 0 : 1;
  }
  return 0;
}
