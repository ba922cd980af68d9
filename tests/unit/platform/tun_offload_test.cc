// The kernel TUN with offloads (IFF_VNET_HDR + TSO/USO), in a private network namespace (needs
// root). The test plays the remote end of a TCP connection through the TUN: it writes the
// peer's packets (a batch of data segments the device coalesces into one super-packet) and
// reads the local stack's replies (TSO super-packets the device splits), checking every packet
// it reads with a checksum routine independent of net/gso.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <map>

#include "base/bytes.h"
#include "platform/netlink.h"
#include "platform/tun_device.h"
#include "platform/unique_fd.h"
#include "unit/net/gso_packets.h"
#include "unit/platform/netns_util.h"

namespace warren::platform {
namespace {

using Packet = std::vector<std::uint8_t>;
using testing::build_packet;
using testing::PacketSpec;

#define REQUIRE_NETNS()    \
  if (!testing::is_root()) \
  GTEST_SKIP() << "needs root for network namespaces"

constexpr std::uint16_t kPeerPort = 40000;
constexpr std::uint16_t kLocalPort = 5201;

struct Bufs {
  explicit Bufs(std::size_t n) : storage(n, Packet(kMaxPacketSize + 64)), sizes(n) {
    for (auto& s : storage)
      views.emplace_back(s);
  }
  std::vector<Packet> storage;
  std::vector<Bytes> views;
  std::vector<std::size_t> sizes;
};

constexpr std::size_t kOffset = 16;

// The peer's view: 10.0.0.2:40000 talking to the local 10.0.0.1:5201 through `tun`.
struct Peer {
  TunDevice& tun;
  bool v6 = false;
  std::uint32_t seq = 1000;                  // next sequence number the peer sends
  std::uint32_t ack = 0;                     // next byte expected from the local side
  std::map<std::uint32_t, Packet> received;  // payload by sequence number

  PacketSpec spec(std::uint8_t flags) const {
    PacketSpec s;
    s.v6 = v6;
    s.src_last = 2;
    s.dst_last = 1;
    s.sport = kPeerPort;
    s.dport = kLocalPort;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = 65535;
    s.payload = 0;
    return s;
  }

  void send(const std::vector<Packet>& packets) {
    std::vector<ConstBytes> v(packets.begin(), packets.end());
    BatchResult r = tun.write(0, v);
    ASSERT_EQ(r.count, packets.size()) << std::strerror(r.error);
  }

  // Reads what the local stack sent (waiting on poll_fd() between reads), checking each
  // packet. Returns the TCP packets to the peer port.
  std::vector<Packet> receive(Bufs& bufs, int timeout_ms) {
    std::vector<Packet> out;
    pollfd pfd{tun.poll_fd(0), POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0)
      return out;
    BatchResult r = tun.read(0, bufs.views, bufs.sizes, kOffset);
    for (std::size_t i = 0; i < r.count; ++i) {
      Packet p(bufs.views[i].begin() + kOffset,
               bufs.views[i].begin() + static_cast<long>(kOffset + bufs.sizes[i]));
      const std::size_t l3 = v6 ? 40 : 20;
      if (p.size() < l3 + 20 || p[0] != (v6 ? 0x60 : 0x45) || p[v6 ? 6 : 9] != 6 ||
          load_be16(&p[l3 + 2]) != kPeerPort)
        continue;
      EXPECT_LE(p.size(), 1420u);
      EXPECT_EQ(v6 ? load_be16(&p[4]) + 40u : load_be16(&p[2]), p.size());
      EXPECT_TRUE(testing::checksums_ok(p)) << "bad checksum on a packet read from the TUN";
      out.push_back(std::move(p));
    }
    return out;
  }
};

void in_netns(const std::function<void()>& body) {
  std::string err = testing::run_in_new_netns(body);
  ASSERT_TRUE(err.empty()) << err;
}

// ethtool's legacy get-one-feature request (what `ethtool -k` shows), or ~0u on failure.
std::uint32_t ethtool_get(const std::string& ifname, std::uint32_t cmd) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  struct ethtool_value v {};
  v.cmd = cmd;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname.data(), std::min(ifname.size(), sizeof(ifr.ifr_name) - 1));
  ifr.ifr_data = reinterpret_cast<char*>(&v);
  if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) != 0)
    return ~0u;
  return v.data;
}

void tcp_both_ways(bool v6) {
  in_netns([v6] {
    // No duplicate address detection in this private namespace: the address is usable at once.
    // (/proc/sys/net shows the namespace of the thread that opens it.)
    for (const char* conf : {"all", "default"}) {
      std::ofstream(std::string("/proc/sys/net/ipv6/conf/") + conf + "/accept_dad") << "0\n";
    }
    auto created = create_tun(TunOptions{.name = "wot0", .vnet_hdr = true, .mtu = 1420});
    ASSERT_TRUE(created.ok()) << created.message();
    TunDevice& tun = **created;
    ASSERT_TRUE(tun.vnet_hdr());
    ASSERT_TRUE(tun.offloads().tso) << "kernel refused TSO";
    auto cfg = open_net_config();
    ASSERT_TRUE(cfg.ok());
    ASSERT_TRUE(
        (*cfg)
            ->add_address(tun.ifindex(), *net::Prefix::parse(v6 ? "fd00::1/64" : "10.0.0.1/24"))
            .ok());
    ASSERT_TRUE((*cfg)->set_up(tun.ifindex(), true).ok());

    UniqueFd listener(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage ss{};
    socklen_t ss_len;
    if (v6) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
      a6->sin6_family = AF_INET6;
      a6->sin6_port = htons(kLocalPort);
      a6->sin6_addr.s6_addr[0] = 0xfd;
      a6->sin6_addr.s6_addr[15] = 1;
      ss_len = sizeof(sockaddr_in6);
    } else {
      auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
      a4->sin_family = AF_INET;
      a4->sin_port = htons(kLocalPort);
      a4->sin_addr.s_addr = htonl(0x0a000001);
      ss_len = sizeof(sockaddr_in);
    }
    int bound = -1;
    for (int i = 0; i < 300 && bound != 0; ++i) {  // a tentative IPv6 address still in DAD
      bound = ::bind(listener.get(), reinterpret_cast<sockaddr*>(&ss), ss_len);
      if (bound != 0)
        ::usleep(10000);
    }
    ASSERT_EQ(bound, 0) << std::strerror(errno);
    ASSERT_EQ(::listen(listener.get(), 1), 0);

    Peer peer{tun, v6};
    const std::size_t l3 = v6 ? 40 : 20;
    Bufs bufs(8);  // fewer buffers than a super-packet's segments: remainders must wait
    // Handshake: SYN with the MSS of a 1420 MTU, the kernel's SYN-ACK, our ACK.
    PacketSpec syn = peer.spec(0x02);
    syn.tcp_options = {2, 4, 0x05, static_cast<std::uint8_t>(v6 ? 0x50 : 0x64)};
    peer.send({build_packet(syn)});
    peer.seq += 1;
    std::optional<Packet> synack;
    for (int i = 0; i < 50 && !synack; ++i) {
      for (Packet& p : peer.receive(bufs, 100)) {
        if ((p[l3 + 13] & 0x12) == 0x12)
          synack = p;
      }
    }
    ASSERT_TRUE(synack) << "no SYN-ACK through the TUN";
    peer.ack = load_be32(&(*synack)[l3 + 4]) + 1;
    peer.send({build_packet(peer.spec(0x10))});
    UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(conn);

    // 1. Peer -> local: 30 segments in one batch go out as one coalesced super-packet, and
    //    the local socket receives every byte.
    std::vector<Packet> batch;
    Packet sent;
    for (int i = 0; i < 30; ++i) {
      PacketSpec d = peer.spec(i == 29 ? 0x18 : 0x10);
      d.payload = 1000;
      d.id = static_cast<std::uint16_t>(i);
      d.fill = static_cast<std::uint8_t>(i * 7);
      batch.push_back(build_packet(d));
      sent.insert(sent.end(), batch.back().end() - 1000, batch.back().end());
      peer.seq += 1000;
    }
    const TunOffloadStats before = tun.offload_stats();
    peer.send(batch);
    const TunOffloadStats after_write = tun.offload_stats();
    EXPECT_EQ(after_write.super_packets_written - before.super_packets_written, 1u);
    EXPECT_EQ(after_write.segments_written - before.segments_written, 30u);
    Packet got;
    for (int spins = 0; got.size() < sent.size() && spins < 200; ++spins) {
      pollfd pfd{conn.get(), POLLIN, 0};
      ::poll(&pfd, 1, 20);
      std::uint8_t chunk[65536];
      const ssize_t r = ::recv(conn.get(), chunk, sizeof(chunk), MSG_DONTWAIT);
      if (r > 0)
        got.insert(got.end(), chunk, chunk + r);
    }
    EXPECT_EQ(got, sent) << "the local stack did not receive the coalesced data intact";

    // 2. Local -> peer: a large send leaves as TSO super-packets; every packet read is a
    //    valid MTU-size segment and together they are the exact byte stream.
    Packet data(600 * 1024);
    for (std::size_t i = 0; i < data.size(); ++i)
      data[i] = static_cast<std::uint8_t>(i * 31 + (i >> 10));
    std::size_t written = 0;
    const std::uint32_t first = peer.ack;
    Packet stream;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (stream.size() < data.size() && std::chrono::steady_clock::now() < deadline) {
      if (written < data.size()) {
        const ssize_t w =
            ::send(conn.get(), data.data() + written, data.size() - written, MSG_DONTWAIT);
        if (w > 0)
          written += static_cast<std::size_t>(w);
      }
      for (Packet& p : peer.receive(bufs, 20)) {
        const std::size_t hdr = l3 + (p[l3 + 12] >> 4) * 4u;
        if (p.size() > hdr)
          peer.received[load_be32(&p[l3 + 4])] =
              Packet(p.begin() + static_cast<long>(hdr), p.end());
      }
      // Reassemble in order and acknowledge what is contiguous.
      for (auto it = peer.received.find(peer.ack); it != peer.received.end();
           it = peer.received.find(peer.ack)) {
        stream.insert(stream.end(), it->second.begin(), it->second.end());
        peer.ack += static_cast<std::uint32_t>(it->second.size());
        peer.received.erase(it);
      }
      peer.send({build_packet(peer.spec(0x10))});
    }
    ASSERT_EQ(stream.size(), data.size()) << "stream stalled at " << (peer.ack - first);
    EXPECT_EQ(stream, data);
    const TunOffloadStats st = tun.offload_stats();
    ::testing::Test::RecordProperty("super_packets_read", std::to_string(st.super_packets_read));
    ::testing::Test::RecordProperty("segments_read", std::to_string(st.segments_read));
    EXPECT_GT(st.super_packets_read, 0u) << "the kernel never handed out a TSO super-packet";
    EXPECT_GT(st.segments_read, 2 * st.super_packets_read);
    EXPECT_EQ(st.malformed_dropped, 0u);

    // The interface advertises TCP segmentation offload (ethtool -k: tcp-segmentation-offload).
    EXPECT_EQ(ethtool_get(tun.name(), ETHTOOL_GTSO), 1u);
  });
}

TEST(TunOffload, KernelTakesCoalescedWritesAndItsSuperPacketsSplitCleanlyV4) {
  REQUIRE_NETNS();
  tcp_both_ways(false);
}

TEST(TunOffload, KernelTakesCoalescedWritesAndItsSuperPacketsSplitCleanlyV6) {
  REQUIRE_NETNS();
  tcp_both_ways(true);
}

TEST(TunOffload, KernelTakesCoalescedUdpWhenItAcceptedUso) {
  REQUIRE_NETNS();
  in_netns([] {
    auto created = create_tun(TunOptions{.name = "wot3", .vnet_hdr = true, .mtu = 1420});
    ASSERT_TRUE(created.ok()) << created.message();
    TunDevice& tun = **created;
    if (!tun.offloads().uso)
      GTEST_SKIP() << "this kernel has no TUN USO (Linux >= 6.2)";
    auto cfg = open_net_config();
    ASSERT_TRUE(cfg.ok());
    ASSERT_TRUE((*cfg)->add_address(tun.ifindex(), *net::Prefix::parse("10.0.0.1/24")).ok());
    ASSERT_TRUE((*cfg)->set_up(tun.ifindex(), true).ok());
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(9999);
    addr.sin_addr.s_addr = htonl(0x0a000001);
    ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::vector<Packet> batch;
    for (int i = 0; i < 6; ++i) {
      PacketSpec s;
      s.proto = 17;
      s.src_last = 2;
      s.dst_last = 1;
      s.dport = 9999;
      s.id = static_cast<std::uint16_t>(i);
      s.payload = i < 5 ? 1200 : 300;
      s.fill = static_cast<std::uint8_t>(i * 13);
      batch.push_back(build_packet(s));
    }
    std::vector<ConstBytes> v(batch.begin(), batch.end());
    const BatchResult r = tun.write(0, v);
    EXPECT_EQ(r.count, 6u) << std::strerror(r.error);
    EXPECT_EQ(tun.offload_stats().super_packets_written, 1u);
    // The socket has no UDP_GRO, so the kernel segments the super-packet for it: six
    // datagrams, each exactly what the peer sent.
    for (int i = 0; i < 6; ++i) {
      pollfd pfd{sock.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 2000), 1) << "datagram " << i << " never arrived";
      std::uint8_t buf[2048];
      const ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
      ASSERT_EQ(n, static_cast<ssize_t>(batch[static_cast<std::size_t>(i)].size() - 28));
      EXPECT_TRUE(std::equal(buf, buf + n, batch[static_cast<std::size_t>(i)].begin() + 28));
    }

    // The other way: one UDP_SEGMENT send of six datagrams reaches the TUN as one USO frame.
    // Read with two buffers at a time: the remainder waits in the device, and poll_fd() stays
    // readable for it although the kernel queue is empty.
    int seg = 1000;
    ASSERT_EQ(::setsockopt(sock.get(), IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg)), 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(40000);
    to.sin_addr.s_addr = htonl(0x0a000002);
    Packet payload(6000);
    for (std::size_t i = 0; i < payload.size(); ++i)
      payload[i] = static_cast<std::uint8_t>(i / 7);
    ASSERT_EQ(::sendto(sock.get(), payload.data(), payload.size(), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              6000);
    Bufs two(2);
    Packet got;
    std::size_t reads = 0;
    const TunOffloadStats before = tun.offload_stats();
    for (int spins = 0; spins < 100 && got.size() < payload.size(); ++spins) {
      pollfd pfd{tun.poll_fd(0), POLLIN, 0};
      if (::poll(&pfd, 1, 50) != 1)
        continue;
      const BatchResult rr = tun.read(0, two.views, two.sizes, kOffset);
      ++reads;
      for (std::size_t i = 0; i < rr.count; ++i) {
        Packet p(two.views[i].begin() + kOffset,
                 two.views[i].begin() + static_cast<long>(kOffset + two.sizes[i]));
        if (p[9] != 17 || load_be16(&p[22]) != 40000)
          continue;  // not ours (e.g. an IPv6 router solicitation)
        EXPECT_TRUE(testing::checksums_ok(p));
        EXPECT_EQ(p.size(), 28u + 1000u);
        got.insert(got.end(), p.begin() + 28, p.end());
      }
    }
    EXPECT_EQ(got, payload);
    EXPECT_GE(reads, 3u);
    EXPECT_EQ(tun.offload_stats().super_packets_read - before.super_packets_read, 1u);
    // Nothing of ours is left. The kernel may still hand the TUN unrelated packets (IPv6
    // router solicitations, MLD reports) at any moment, so drain those, checking none is a
    // leftover segment, and then the device must go quiet: a poll_fd that stays readable with
    // nothing to read fails here.
    bool quiet = false;
    for (int i = 0; i < 20 && !quiet; ++i) {
      pollfd pfd{tun.poll_fd(0), POLLIN, 0};
      if (::poll(&pfd, 1, 0) == 0) {
        quiet = true;
        break;
      }
      const BatchResult rr = tun.read(0, two.views, two.sizes, kOffset);
      for (std::size_t k = 0; k < rr.count; ++k) {
        const std::uint8_t* p = two.views[k].data() + kOffset;
        EXPECT_FALSE(two.sizes[k] >= 28 && p[9] == 17 && load_be16(p + 22) == 40000)
            << "a segment was left over";
      }
    }
    EXPECT_TRUE(quiet) << "still readable with nothing left";
  });
}

TEST(TunOffload, QueuesOfAMultiQueueDeviceAllCarryTheHeader) {
  REQUIRE_NETNS();
  in_netns([] {
    auto created = create_tun(TunOptions{.name = "wot1", .queues = 2, .vnet_hdr = true});
    ASSERT_TRUE(created.ok()) << created.message();
    TunDevice& tun = **created;
    ASSERT_EQ(tun.queue_count(), 2u);
    ASSERT_TRUE(tun.vnet_hdr());
    auto cfg = open_net_config();
    ASSERT_TRUE(cfg.ok());
    ASSERT_TRUE((*cfg)->add_address(tun.ifindex(), *net::Prefix::parse("10.0.0.1/24")).ok());
    ASSERT_TRUE((*cfg)->set_up(tun.ifindex(), true).ok());
    // A write of a plain packet on each queue is accepted (a queue without the header would
    // take its first 10 bytes as one and refuse the packet).
    for (std::size_t q = 0; q < 2; ++q) {
      PacketSpec s;
      s.src_last = 2;
      s.dst_last = 1;
      s.proto = 17;
      s.payload = 20;
      Packet p = build_packet(s);
      ConstBytes v(p);
      BatchResult r = tun.write(q, std::span<const ConstBytes>(&v, 1));
      EXPECT_EQ(r.count, 1u) << "queue " << q << ": " << std::strerror(r.error);
    }
  });
}

TEST(TunOffload, WithoutVnetHdrNothingChanges) {
  REQUIRE_NETNS();
  in_netns([] {
    auto created = create_tun(TunOptions{.name = "wot2"});
    ASSERT_TRUE(created.ok()) << created.message();
    EXPECT_FALSE((*created)->vnet_hdr());
    EXPECT_EQ((*created)->offloads().to_string(), "off");
    EXPECT_EQ(ethtool_get((*created)->name(), ETHTOOL_GTSO), 0u);
  });
}

}  // namespace
}  // namespace warren::platform
