// UDP GSO (UDP_SEGMENT) on send and GRO (UDP_GRO) on receive, on real loopback sockets.
//
// Loopback keeps a GSO super-datagram whole when the receiving socket has UDP_GRO on, and
// never coalesces separate datagrams (no NAPI GRO on lo), so a raw UDP_GRO receiver sees
// exactly the messages the bind sent: their lengths and gso_size show how send() grouped.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <vector>

#include "platform/linux/udp_control.h"
#include "platform/udp.h"
#include "platform/unique_fd.h"
#include "unit/platform/netns_util.h"
#include "unit/platform/test_packets.h"

namespace warren::platform {
namespace {

using net::IpAddress;
using warren::testing::Buffers;

IpAddress ip(const char* s) {
  return *IpAddress::parse(s);
}

void with_loopback(const std::function<void()>& body) {
  if (testing::is_root()) {
    std::string err = testing::run_in_new_netns(body);
    ASSERT_TRUE(err.empty()) << err;
  } else {
    body();
  }
}

// A plain IPv4 socket with UDP_GRO on, so super-datagrams arrive unsplit with their gso_size.
class RawGroReceiver {
 public:
  RawGroReceiver() {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int one = 1;
    EXPECT_EQ(::setsockopt(fd_.get(), SOL_UDP, UDP_GRO, &one, sizeof(one)), 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&sin), &len);
    port_ = ntohs(sin.sin_port);
  }
  std::uint16_t port() const { return port_; }

  struct Message {
    std::size_t length;
    std::size_t gso_size;  // 0 = a plain datagram
    IpAddress source;
    std::vector<std::uint8_t> data;
  };

  // Everything that arrives within ~1 s after the first message, until quiet for 50 ms.
  std::vector<Message> drain() {
    std::vector<Message> out;
    std::vector<std::uint8_t> buf(65536);
    for (int idle = 0; idle < (out.empty() ? 1000 : 50);) {
      sockaddr_in from{};
      iovec iov{buf.data(), buf.size()};
      alignas(cmsghdr) std::uint8_t control[64];
      msghdr h{};
      h.msg_name = &from;
      h.msg_namelen = sizeof(from);
      h.msg_iov = &iov;
      h.msg_iovlen = 1;
      h.msg_control = control;
      h.msg_controllen = sizeof(control);
      const ssize_t n = ::recvmsg(fd_.get(), &h, MSG_DONTWAIT);
      if (n < 0) {
        ++idle;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      idle = 0;
      Message m{static_cast<std::size_t>(n), 0,
                *IpAddress::from_bytes(reinterpret_cast<std::uint8_t*>(&from.sin_addr), 4),
                std::vector<std::uint8_t>(buf.begin(), buf.begin() + n)};
      for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int v = 0;
          std::memcpy(&v, CMSG_DATA(c), sizeof(v));
          m.gso_size = static_cast<std::size_t>(v);
        }
      }
      out.push_back(std::move(m));
    }
    return out;
  }

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
};

std::vector<std::uint8_t> payload(std::size_t size, int seed) {
  std::vector<std::uint8_t> p(size);
  for (std::size_t i = 0; i < size; ++i)
    p[i] = static_cast<std::uint8_t>(seed * 31 + i);
  return p;
}

class UdpOffloadTest : public ::testing::Test {
 protected:
  std::unique_ptr<UdpBind> open(BindOptions o) {
    o.ipv6 = false;
    auto b = factory_->open(o);
    EXPECT_TRUE(b.ok()) << b.message();
    return std::move(*b);
  }
  std::unique_ptr<BindFactory> factory_ = make_system_bind_factory();
};

// Sends `sizes` (all to `path`) and returns what a raw GRO receiver saw.
std::vector<RawGroReceiver::Message> send_sizes(UdpBind& bind, RawGroReceiver& rx,
                                                const std::vector<std::size_t>& sizes,
                                                std::vector<std::vector<std::uint8_t>>* sent) {
  std::vector<std::vector<std::uint8_t>> payloads;
  std::vector<OutDatagram> out;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    payloads.push_back(payload(sizes[i], static_cast<int>(i)));
  const net::Path path{{ip("127.0.0.1"), rx.port()}, {}, 0};
  for (auto& p : payloads)
    out.push_back(OutDatagram{p, path, false});
  auto r = bind.send(out);
  EXPECT_EQ(r.count, sizes.size());
  EXPECT_EQ(r.error, 0);
  if (sent)
    *sent = payloads;
  return rx.drain();
}

TEST_F(UdpOffloadTest, EqualSizesLeaveAsOneSuperDatagramWithAShorterLast) {
  with_loopback([&] {
    auto a = open({});
    ASSERT_TRUE(a->offload_state(0).gso);
    RawGroReceiver rx;
    std::vector<std::size_t> sizes(10, 1000);
    sizes.push_back(500);
    std::vector<std::vector<std::uint8_t>> sent;
    auto got = send_sizes(*a, rx, sizes, &sent);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].length, 10500u);
    EXPECT_EQ(got[0].gso_size, 1000u);
    std::vector<std::uint8_t> joined;
    for (auto& p : sent)
      joined.insert(joined.end(), p.begin(), p.end());
    EXPECT_EQ(got[0].data, joined);
  });
}

TEST_F(UdpOffloadTest, RunsBreakAtLargerSizesAndAfterAShorterOne) {
  with_loopback([&] {
    auto a = open({});
    RawGroReceiver rx;
    // [1000 1000 1000] [1200 1200 700] [800] [800 800] [1 datagram of 0 bytes is not sent]
    auto got = send_sizes(*a, rx, {1000, 1000, 1000, 1200, 1200, 700, 800, 800, 800}, nullptr);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].length, 3000u);
    EXPECT_EQ(got[0].gso_size, 1000u);
    EXPECT_EQ(got[1].length, 3100u);
    EXPECT_EQ(got[1].gso_size, 1200u);
    EXPECT_EQ(got[2].length, 2400u);
    EXPECT_EQ(got[2].gso_size, 800u);
    // A single datagram goes out plain (no UDP_SEGMENT).
    got = send_sizes(*a, rx, {1000, 1400}, nullptr);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].gso_size, 0u);
    EXPECT_EQ(got[1].gso_size, 0u);
  });
}

TEST_F(UdpOffloadTest, SegmentAndByteCaps) {
  with_loopback([&] {
    auto a = open({});
    RawGroReceiver rx;
    auto got = send_sizes(*a, rx, std::vector<std::size_t>(100, 100), nullptr);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].length, kGsoMaxSegments * 100);
    EXPECT_EQ(got[1].length, (100 - kGsoMaxSegments) * 100);
    // 1400-byte segments: 46 fit in kGsoMaxBytes, the 4 others follow.
    got = send_sizes(*a, rx, std::vector<std::size_t>(50, 1400), nullptr);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].length, 46u * 1400);
    EXPECT_EQ(got[0].gso_size, 1400u);
    EXPECT_EQ(got[1].length, 4u * 1400);
  });
}

TEST_F(UdpOffloadTest, DifferentPathsAndSourcesAreNotMerged) {
  with_loopback([&] {
    auto a = open({});
    RawGroReceiver rx1, rx2;
    std::vector<std::vector<std::uint8_t>> p;
    for (int i = 0; i < 8; ++i)
      p.push_back(payload(600, i));
    const net::Path to1{{ip("127.0.0.1"), rx1.port()}, {}, 0};
    const net::Path to2{{ip("127.0.0.1"), rx2.port()}, {}, 0};
    const net::Path to1_src{{ip("127.0.0.1"), rx1.port()}, ip("127.0.0.2"), 1};
    // to1 to1 | to2 to2 | to1_src to1_src | to1 to1: four runs, three of them to rx1.
    std::vector<OutDatagram> out{{p[0], to1},     {p[1], to1},     {p[2], to2}, {p[3], to2},
                                 {p[4], to1_src}, {p[5], to1_src}, {p[6], to1}, {p[7], to1}};
    auto r = a->send(out);
    EXPECT_EQ(r.count, out.size());
    auto got1 = rx1.drain();
    auto got2 = rx2.drain();
    ASSERT_EQ(got1.size(), 3u);
    EXPECT_EQ(got1[0].length, 1200u);
    EXPECT_EQ(got1[0].source, ip("127.0.0.1"));
    EXPECT_EQ(got1[1].length, 1200u);
    EXPECT_EQ(got1[1].source, ip("127.0.0.2"));  // the sticky source still applies with GSO
    EXPECT_EQ(got1[2].length, 1200u);
    ASSERT_EQ(got2.size(), 1u);
    EXPECT_EQ(got2[0].length, 1200u);
    EXPECT_EQ(got2[0].gso_size, 600u);
  });
}

TEST_F(UdpOffloadTest, RefusedGsoFallsBackAndStaysOff) {
  with_loopback([&] {
    auto a = open({.inject_gso_error = EIO});
    ASSERT_TRUE(a->offload_state(0).gso);
    RawGroReceiver rx;
    std::vector<std::vector<std::uint8_t>> sent;
    auto got = send_sizes(*a, rx, std::vector<std::size_t>(5, 900), &sent);
    // Nothing lost: every datagram went out on its own.
    ASSERT_EQ(got.size(), 5u);
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].gso_size, 0u);
      EXPECT_EQ(got[i].data, sent[i]);
    }
    EXPECT_FALSE(a->offload_state(0).gso);
    got = send_sizes(*a, rx, std::vector<std::size_t>(3, 900), nullptr);
    EXPECT_EQ(got.size(), 3u);
  });
}

TEST_F(UdpOffloadTest, GsoOffSendsDatagramByDatagram) {
  with_loopback([&] {
    auto a = open({.gso = false});
    EXPECT_FALSE(a->offload_state(0).gso);
    RawGroReceiver rx;
    auto got = send_sizes(*a, rx, std::vector<std::size_t>(4, 900), nullptr);
    EXPECT_EQ(got.size(), 4u);
  });
}

// Receives from `b` with `nbufs` buffers per call until `want` datagrams arrived; checks that
// poll_fd stays readable while segments are kept.
std::vector<std::vector<std::uint8_t>> receive_in_calls(UdpBind& b, std::size_t nbufs,
                                                        std::size_t want,
                                                        std::vector<net::Path>* paths,
                                                        std::vector<std::size_t>* per_call) {
  std::vector<std::vector<std::uint8_t>> out;
  Buffers buf(nbufs, 2048);
  for (int spins = 0; out.size() < want && spins < 2000; ++spins) {
    auto r = b.receive(0, buf.views, buf.sizes, buf.paths);
    if (r.count == 0) {
      EXPECT_TRUE(r.would_block()) << r.error;
      pollfd p{b.poll_fd(0), POLLIN, 0};
      ::poll(&p, 1, 1);
      continue;
    }
    if (per_call)
      per_call->push_back(r.count);
    for (std::size_t i = 0; i < r.count; ++i) {
      out.emplace_back(buf.storage[i].begin(), buf.storage[i].begin() + buf.sizes[i]);
      if (paths)
        paths->push_back(buf.paths[i]);
    }
    if (out.size() < want) {
      // More is kept or queued: the readiness fd says so without waiting.
      pollfd p{b.poll_fd(0), POLLIN, 0};
      EXPECT_EQ(::poll(&p, 1, 1000), 1) << "after " << out.size();
    }
  }
  return out;
}

TEST_F(UdpOffloadTest, CoalescedDatagramsAreSplitKeepingTheRemainderAcrossCalls) {
  with_loopback([&] {
    auto a = open({});
    auto b = open({});
    ASSERT_TRUE(b->offload_state(0).gro);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<OutDatagram> out;
    for (int i = 0; i < 20; ++i)
      sent.push_back(payload(500, i));
    sent.push_back(payload(200, 20));
    const net::Path to{{ip("127.0.0.1"), b->port()}, ip("127.0.0.3"), 1};
    for (auto& p : sent)
      out.push_back(OutDatagram{p, to, false});
    ASSERT_EQ(a->send(out).count, sent.size());

    std::vector<net::Path> paths;
    std::vector<std::size_t> per_call;
    auto got = receive_in_calls(*b, 3, sent.size(), &paths, &per_call);
    ASSERT_EQ(got.size(), sent.size());
    EXPECT_EQ(got, sent);
    // One super-datagram handed out three segments at a time: 7 calls.
    EXPECT_EQ(per_call, (std::vector<std::size_t>{3, 3, 3, 3, 3, 3, 3}));
    for (const net::Path& p : paths) {
      EXPECT_EQ(p.remote, (net::Endpoint{ip("127.0.0.3"), a->port()}));
      EXPECT_EQ(p.local, ip("127.0.0.1"));  // IP_PKTINFO still reported
      EXPECT_NE(p.ifindex, 0u);
    }
    // Drained: no longer readable, and receive says EAGAIN.
    pollfd p{b->poll_fd(0), POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0);
    Buffers buf(3);
    auto r = b->receive(0, buf.views, buf.sizes, buf.paths);
    EXPECT_EQ(r.count, 0u);
    EXPECT_TRUE(r.would_block());
  });
}

TEST_F(UdpOffloadTest, SplitSegmentsAndPlainDatagramsInterleaveInOrder) {
  with_loopback([&] {
    auto a = open({});
    auto c = open({});
    auto b = open({});
    // a sends a run of 4, c a plain datagram, a another run: three messages on b's socket.
    std::vector<std::vector<std::uint8_t>> sa1, sc, sa2;
    for (int i = 0; i < 4; ++i)
      sa1.push_back(payload(300, i));
    sc.push_back(payload(77, 50));
    for (int i = 0; i < 5; ++i)
      sa2.push_back(payload(400, 60 + i));
    const net::Path to{{ip("127.0.0.1"), b->port()}, {}, 0};
    auto send_all = [&](UdpBind& from, std::vector<std::vector<std::uint8_t>>& ps) {
      std::vector<OutDatagram> out;
      for (auto& p : ps)
        out.push_back(OutDatagram{p, to, false});
      EXPECT_EQ(from.send(out).count, ps.size());
    };
    send_all(*a, sa1);
    send_all(*c, sc);
    send_all(*a, sa2);
    std::vector<net::Path> paths;
    auto got = receive_in_calls(*b, 64, 10, &paths, nullptr);
    ASSERT_EQ(got.size(), 10u);
    std::vector<std::vector<std::uint8_t>> want = sa1;
    want.insert(want.end(), sc.begin(), sc.end());
    want.insert(want.end(), sa2.begin(), sa2.end());
    EXPECT_EQ(got, want);
    EXPECT_EQ(paths[4].remote.port, c->port());
    EXPECT_EQ(paths[0].remote.port, a->port());
    EXPECT_EQ(paths[9].remote.port, a->port());
  });
}

// Datagrams that did not coalesce (many sources, as under a flood) still fill the caller's
// buffers in one call: the 8-message scratch area is refilled until they are full or the
// socket is empty. At 8 per call a flooded socket was read too slowly and overflowed.
TEST_F(UdpOffloadTest, ManyPlainDatagramsFillTheCallersBuffersInOneCall) {
  with_loopback([&] {
    auto a = open({.gso = false});
    auto b = open({});
    ASSERT_TRUE(b->offload_state(0).gro);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<OutDatagram> out;
    const net::Path to{{ip("127.0.0.1"), b->port()}, {}, 0};
    for (int i = 0; i < 100; ++i)
      sent.push_back(payload(60 + static_cast<std::size_t>(i), i));
    for (auto& p : sent)
      out.push_back(OutDatagram{p, to, false});
    ASSERT_EQ(a->send(out).count, sent.size());
    pollfd p{b->poll_fd(0), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let loopback deliver all

    Buffers buf(64, 2048);
    auto r = b->receive(0, buf.views, buf.sizes, buf.paths);
    ASSERT_EQ(r.count, 64u);  // every buffer, not 8
    for (std::size_t i = 0; i < r.count; ++i) {
      EXPECT_EQ(
          std::vector<std::uint8_t>(buf.storage[i].begin(), buf.storage[i].begin() + buf.sizes[i]),
          sent[i])
          << i;
    }
    // The rest in the next call, which ends at the empty socket with what it had.
    r = b->receive(0, buf.views, buf.sizes, buf.paths);
    ASSERT_EQ(r.count, 36u);
    EXPECT_EQ(
        std::vector<std::uint8_t>(buf.storage[35].begin(), buf.storage[35].begin() + buf.sizes[35]),
        sent[99]);
    r = b->receive(0, buf.views, buf.sizes, buf.paths);
    EXPECT_EQ(r.count, 0u);
    EXPECT_TRUE(r.would_block());
  });
}

TEST_F(UdpOffloadTest, GroOffReceivesTheKernelsSegments) {
  with_loopback([&] {
    auto a = open({});
    auto b = open({.gro = false});
    EXPECT_FALSE(b->offload_state(0).gro);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<OutDatagram> out;
    const net::Path to{{ip("127.0.0.1"), b->port()}, {}, 0};
    for (int i = 0; i < 6; ++i)
      sent.push_back(payload(1000, i));
    for (auto& p : sent)
      out.push_back(OutDatagram{p, to, false});
    ASSERT_EQ(a->send(out).count, sent.size());
    auto got = receive_in_calls(*b, 4, sent.size(), nullptr, nullptr);
    EXPECT_EQ(got, sent);
  });
}

TEST_F(UdpOffloadTest, SegmentLargerThanTheCallersBufferIsDroppedNotTheRest) {
  with_loopback([&] {
    auto a = open({});
    auto b = open({});
    std::vector<std::vector<std::uint8_t>> sent{payload(1500, 1), payload(1500, 2),
                                                payload(1500, 3)};
    std::vector<OutDatagram> out;
    const net::Path to{{ip("127.0.0.1"), b->port()}, {}, 0};
    for (auto& p : sent)
      out.push_back(OutDatagram{p, to, false});
    ASSERT_EQ(a->send(out).count, 3u);
    Buffers buf(8, 1000);
    std::size_t got = 0;
    for (int spins = 0; got < 3 && spins < 1000; ++spins) {
      auto r = b->receive(0, buf.views, buf.sizes, buf.paths);
      for (std::size_t i = 0; i < r.count; ++i)
        EXPECT_EQ(buf.sizes[i], 0u);  // each too large: reported as zero-length
      got += r.count;
      if (r.count == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_EQ(got, 3u);
  });
}

}  // namespace
}  // namespace warren::platform

namespace warren::platform {
namespace {

// Hand-made control buffers for parse_udp_control: what a buggy or hostile kernel path could
// hand us must never be read past, and odd values must mean "not coalesced".
class ControlBuilder {
 public:
  template <typename T>
  ControlBuilder& add(int level, int type, const T& value, std::size_t claimed_len = 0) {
    const std::size_t at = used_;
    used_ += CMSG_SPACE(sizeof(T));
    auto* c = reinterpret_cast<cmsghdr*>(bytes_ + at);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = claimed_len ? claimed_len : CMSG_LEN(sizeof(T));
    std::memcpy(CMSG_DATA(c), &value, sizeof(T));
    return *this;
  }
  msghdr header(std::size_t controllen = 0) {
    msghdr h{};
    h.msg_control = bytes_;
    h.msg_controllen = controllen ? controllen : used_;
    return h;
  }

 private:
  alignas(cmsghdr) std::uint8_t bytes_[256] = {};
  std::size_t used_ = 0;
};

in_pktinfo pktinfo4(const char* addr, int ifindex) {
  in_pktinfo p{};
  ::inet_pton(AF_INET, addr, &p.ipi_spec_dst);
  p.ipi_ifindex = ifindex;
  return p;
}

TEST(UdpControl, ReadsPktinfoAndGroSize) {
  ControlBuilder b;
  b.add(IPPROTO_IP, IP_PKTINFO, pktinfo4("192.0.2.7", 3)).add(SOL_UDP, UDP_GRO, int{1452});
  msghdr h = b.header();
  net::Path p;
  std::size_t gso = 99;
  parse_udp_control(h, p, gso);
  EXPECT_EQ(gso, 1452u);
  EXPECT_EQ(p.local, *IpAddress::parse("192.0.2.7"));
  EXPECT_EQ(p.ifindex, 3u);
}

TEST(UdpControl, GroSizeAsU16AndNonsenseValues) {
  {
    ControlBuilder b;
    b.add(SOL_UDP, UDP_GRO, std::uint16_t{1000});
    msghdr h = b.header();
    net::Path p;
    std::size_t gso = 0;
    parse_udp_control(h, p, gso);
    EXPECT_EQ(gso, 1000u);
  }
  for (int bad : {0, -5}) {
    ControlBuilder b;
    b.add(SOL_UDP, UDP_GRO, bad);
    msghdr h = b.header();
    net::Path p;
    std::size_t gso = 7;
    parse_udp_control(h, p, gso);
    EXPECT_EQ(gso, 0u) << bad;
  }
}

TEST(UdpControl, ShortUnknownAndOverlongMessagesAreIgnored) {
  {
    // A pktinfo whose cmsg_len claims fewer bytes than the structure: ignored.
    ControlBuilder b;
    b.add(IPPROTO_IP, IP_PKTINFO, pktinfo4("192.0.2.7", 3), CMSG_LEN(4));
    msghdr h = b.header();
    net::Path p;
    std::size_t gso = 0;
    parse_udp_control(h, p, gso);
    EXPECT_FALSE(p.local);
  }
  {
    // Unknown level/type first, then a valid GRO size: the walk goes on past the unknown one.
    ControlBuilder b;
    b.add(SOL_SOCKET, 12345, std::uint64_t{1}).add(SOL_UDP, UDP_GRO, int{600});
    msghdr h = b.header();
    net::Path p;
    std::size_t gso = 0;
    parse_udp_control(h, p, gso);
    EXPECT_EQ(gso, 600u);
  }
  {
    // The first message claims to run past msg_controllen: nothing is read from it.
    ControlBuilder b;
    b.add(IPPROTO_IP, IP_PKTINFO, pktinfo4("192.0.2.7", 3));
    msghdr h = b.header(CMSG_LEN(4));
    net::Path p;
    std::size_t gso = 0;
    parse_udp_control(h, p, gso);
    EXPECT_FALSE(p.local);
  }
  {
    // cmsg_len shorter than a header (a naive walk would loop), a buffer shorter than a
    // header, and no buffer at all.
    ControlBuilder b;
    b.add(SOL_UDP, UDP_GRO, int{600}, /*claimed_len=*/1);
    msghdr h = b.header();
    net::Path p;
    std::size_t gso = 0;
    parse_udp_control(h, p, gso);
    EXPECT_EQ(gso, 0u);
    msghdr tiny = b.header(4);
    parse_udp_control(tiny, p, gso);
    EXPECT_EQ(gso, 0u);
    msghdr none{};
    parse_udp_control(none, p, gso);
    EXPECT_EQ(gso, 0u);
  }
}

}  // namespace
}  // namespace warren::platform
