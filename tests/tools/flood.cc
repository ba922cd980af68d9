// warren-flood: a traffic generator for the flood tests (tests/integration/test_flood.sh). It
// sends as fast as one thread can (or at --rate), in sendmmsg batches, for --seconds, and prints
// what it sent:  "sent=N seconds=S pps=P".
//
//   warren-flood --to IP:PORT --mode MODE [--seconds S] [--rate PPS] [--spoof CIDR]
//                [--mac1-key BASE64-PUBLIC-KEY] [--replay PCAP]
//
// Modes:
//   init     handshake initiations (148 bytes, random sender index, ephemeral and ciphertext);
//            with --mac1-key their mac1 is valid for that public key (public keys are public,
//            so an attacker can do this): they pass the cheap check and make the responder
//            work (or, under load, answer with cookie replies);
//   garbage  random bytes of random length (1-200) with a random type byte 0-5;
//   replay   the WireGuard payloads of the UDP datagrams in a pcap capture (Ethernet or
//            Linux cooked), resent in a loop: replayed transport packets from a real peer.
// --spoof CIDR sends through a raw IP_HDRINCL socket with a random source address in CIDR and
// a random source port per datagram (IPv4 only); otherwise from one UDP socket.
//
// Only for namespaces the test built: it refuses nothing, so point it only there.

#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/time.h"
#include "net/ip_address.h"
#include "wg/constants.h"
#include "wg/cookie.h"

namespace {

using namespace warren;

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "warren-flood: %s\n", m.c_str());
  std::exit(2);
}

std::vector<std::vector<std::uint8_t>> read_pcap_payloads(const std::string& path,
                                                          std::uint16_t port) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    die("cannot open " + path);
  std::vector<std::uint8_t> all((std::istreambuf_iterator<char>(f)), {});
  if (all.size() < 24)
    die(path + ": not a pcap file");
  std::uint32_t magic;
  std::memcpy(&magic, all.data(), 4);
  if (magic != 0xa1b2c3d4 && magic != 0xa1b23c4d)
    die(path + ": not a little-endian classic pcap file");
  std::uint32_t linktype;
  std::memcpy(&linktype, all.data() + 20, 4);
  std::size_t l2 = linktype == 1 ? 14 : linktype == 113 ? 16 : linktype == 101 ? 0 : 99999;
  if (l2 == 99999)
    die(path + ": link type " + std::to_string(linktype) + " not supported");
  std::vector<std::vector<std::uint8_t>> out;
  for (std::size_t off = 24; off + 16 <= all.size();) {
    std::uint32_t caplen;
    std::memcpy(&caplen, all.data() + off + 8, 4);
    const std::uint8_t* p = all.data() + off + 16;
    off += 16 + caplen;
    if (off > all.size() || caplen < l2 + 28)
      continue;
    const std::uint8_t* ip = p + l2;
    if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_UDP)
      continue;
    const std::size_t ihl = (ip[0] & 15) * 4u;
    if (caplen < l2 + ihl + 8)
      continue;
    const std::uint8_t* udp = ip + ihl;
    const std::uint16_t dport = static_cast<std::uint16_t>(udp[2] << 8 | udp[3]);
    if (port != 0 && dport != port)
      continue;
    const std::size_t len = caplen - l2 - ihl - 8;
    if (len >= 4)
      out.emplace_back(udp + 8, udp + 8 + len);
  }
  if (out.empty())
    die(path + ": no UDP payloads to port " + std::to_string(port));
  return out;
}

std::uint16_t checksum(const std::uint8_t* p, std::size_t n) {
  std::uint32_t s = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2)
    s += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1)
    s += static_cast<std::uint32_t>(p[n - 1] << 8);
  while (s >> 16)
    s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

}  // namespace

int main(int argc, char** argv) {
  std::string to, mode, spoof, mac1_key, replay;
  double seconds = 5;
  double rate = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc)
        die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--to")
      to = val();
    else if (a == "--mode")
      mode = val();
    else if (a == "--seconds")
      seconds = std::atof(val().c_str());
    else if (a == "--rate")
      rate = std::atof(val().c_str());
    else if (a == "--spoof")
      spoof = val();
    else if (a == "--mac1-key")
      mac1_key = val();
    else if (a == "--replay")
      replay = val();
    else
      die("unknown argument " + a);
  }
  auto dst = net::Endpoint::parse(to);
  if (!dst || !dst->address.is_v4())
    die("--to needs an IPv4 IP:PORT");
  if (mode != "init" && mode != "garbage" && mode != "replay")
    die("--mode must be init, garbage or replay");
  std::optional<net::Prefix> spoof_net;
  if (!spoof.empty()) {
    spoof_net = net::Prefix::parse(spoof);
    if (!spoof_net || !spoof_net->address.is_v4())
      die("--spoof needs an IPv4 CIDR");
  }
  std::optional<wg::CookieGenerator> macs;
  if (!mac1_key.empty()) {
    auto pk = crypto::PublicKey::from_base64(mac1_key);
    if (!pk)
      die("--mac1-key is not a base64 public key");
    macs.emplace();
    macs->set_peer_public_key(*pk);
  }
  std::vector<std::vector<std::uint8_t>> replays;
  if (mode == "replay") {
    if (replay.empty())
      die("--mode replay needs --replay PCAP");
    replays = read_pcap_payloads(replay, dst->port);
  }

  int fd = spoof_net ? socket(AF_INET, SOCK_RAW, IPPROTO_RAW) : socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    die(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  if (spoof_net && setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) != 0)
    die(std::string("IP_HDRINCL: ") + std::strerror(errno));
  int sndbuf = 4 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  std::memcpy(&sa.sin_addr, dst->address.data(), 4);
  sa.sin_port = htons(dst->port);

  constexpr std::size_t kBatch = 64;
  constexpr std::size_t kMax = 28 + 256;
  std::vector<std::array<std::uint8_t, kMax>> bufs(kBatch);
  std::vector<iovec> iov(kBatch);
  std::vector<mmsghdr> msgs(kBatch);
  std::mt19937_64 rng(std::random_device{}());
  std::size_t replay_next = 0;

  auto fill = [&](std::uint8_t* p) -> std::size_t {
    std::size_t n;
    if (mode == "init") {
      n = wg::kInitiationSize;
      for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t r = rng();
        std::memcpy(p + i, &r, std::min<std::size_t>(8, n - i));
      }
      p[0] = 1;
      p[1] = p[2] = p[3] = 0;
      if (macs)
        macs->add_macs(std::span<std::uint8_t>(p, n), MonoTime{});
      else
        std::memset(p + n - 16, 0, 16);
    } else if (mode == "garbage") {
      n = 1 + rng() % 200;
      for (std::size_t i = 0; i < n; i += 8) {
        std::uint64_t r = rng();
        std::memcpy(p + i, &r, std::min<std::size_t>(8, n - i));
      }
      p[0] = static_cast<std::uint8_t>(rng() % 6);
    } else {
      const auto& r = replays[replay_next++ % replays.size()];
      n = std::min(r.size(), kMax - 28);
      std::memcpy(p, r.data(), n);
    }
    return n;
  };

  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::uint64_t sent = 0, errors = 0;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end)
      break;
    if (rate > 0) {
      const double due = std::chrono::duration<double>(now - start).count() * rate;
      if (static_cast<double>(sent) >= due) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
    }
    for (std::size_t k = 0; k < kBatch; ++k) {
      std::uint8_t* b = bufs[k].data();
      std::size_t len;
      if (spoof_net) {
        len = fill(b + 28);
        auto* ip = reinterpret_cast<iphdr*>(b);
        std::memset(ip, 0, 20);
        ip->version = 4;
        ip->ihl = 5;
        ip->ttl = 64;
        ip->protocol = IPPROTO_UDP;
        ip->tot_len = htons(static_cast<std::uint16_t>(28 + len));
        const unsigned host_bits = 32 - spoof_net->length;
        std::uint32_t base;
        std::memcpy(&base, spoof_net->address.data(), 4);
        std::uint32_t host = host_bits == 0
                                 ? 0
                                 : static_cast<std::uint32_t>(rng()) &
                                       (host_bits >= 32 ? 0xffffffffu : ((1u << host_bits) - 1));
        if (host_bits >= 2 && (host == 0 || host == (1u << host_bits) - 1))
          host = 1;  // not the network or broadcast address
        ip->saddr = htonl(ntohl(base) | host);
        std::memcpy(&ip->daddr, dst->address.data(), 4);
        ip->check = htons(checksum(b, 20));
        auto* udp = reinterpret_cast<udphdr*>(b + 20);
        udp->source = htons(static_cast<std::uint16_t>(1024 + rng() % 60000));
        udp->dest = htons(dst->port);
        udp->len = htons(static_cast<std::uint16_t>(8 + len));
        udp->check = 0;  // optional for IPv4
        len += 28;
      } else {
        len = fill(b);
      }
      iov[k] = {b, len};
      msgs[k] = {};
      msgs[k].msg_hdr.msg_name = &sa;
      msgs[k].msg_hdr.msg_namelen = sizeof sa;
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs.data(), kBatch, 0);
    if (r < 0) {
      ++errors;
      if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED && errno != EPERM)
        die(std::string("sendmmsg: ") + std::strerror(errno));
      continue;
    }
    sent += static_cast<std::uint64_t>(r);
  }
  const double took =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("sent=%llu seconds=%.2f pps=%.0f errors=%llu\n",
              static_cast<unsigned long long>(sent), took, static_cast<double>(sent) / took,
              static_cast<unsigned long long>(errors));
  close(fd);
  return 0;
}
