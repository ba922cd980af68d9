// FakeTun in vnet-header mode behaves like the Linux TUN with offloads: frames split on read
// with the same remainder contract, writes coalesced.
#include <gtest/gtest.h>
#include <poll.h>

#include "net/gso.h"
#include "platform/fake/fake_tun.h"
#include "unit/net/gso_packets.h"

namespace warren::platform::fake {
namespace {

using testing::build_packet;
using testing::PacketSpec;

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

Packet tso_frame(std::size_t payload, std::uint16_t gso) {
  Packet p = build_packet(PacketSpec{.payload = payload});
  Packet f(net::kVirtioNetHdrSize);
  net::encode_virtio_net_hdr(
      net::VirtioNetHdr{net::kVirtioNeedsCsum, net::kGsoTcpV4, 40, gso, 20, 16}, f.data());
  f.insert(f.end(), p.begin(), p.end());
  return f;
}

struct Bufs {
  explicit Bufs(std::size_t n) : storage(n, Packet(2048)), sizes(n) {
    for (auto& s : storage)
      views.emplace_back(s);
  }
  std::vector<Packet> storage;
  std::vector<Bytes> views;
  std::vector<std::size_t> sizes;
};

TEST(FakeTunOffload, SuperPacketSplitsAcrossReadsAndPollFdCoversTheRemainder) {
  FakeTun tun;
  tun.set_offloads({true, true, true});
  ASSERT_TRUE(tun.vnet_hdr());
  tun.inject_frame(0, tso_frame(5000, 1400));
  Bufs two(2);
  std::size_t got = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(readable(tun.poll_fd(0))) << "read " << i;
    BatchResult r = tun.read(0, two.views, two.sizes, 16);
    ASSERT_EQ(r.count, 2u);
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_TRUE(testing::checksums_ok(ConstBytes(two.views[k]).subspan(16, two.sizes[k])));
      got += two.sizes[k] - 40;
    }
  }
  EXPECT_EQ(got, 5000u);
  EXPECT_FALSE(readable(tun.poll_fd(0)));
  EXPECT_TRUE(tun.read(0, two.views, two.sizes, 16).would_block());
  EXPECT_EQ(tun.offload_stats().super_packets_read, 1u);
  EXPECT_EQ(tun.offload_stats().segments_read, 4u);
}

TEST(FakeTunOffload, MalformedFrameIsDroppedAndCounted) {
  FakeTun tun;
  tun.set_offloads({true, true, false});
  tun.inject_frame(0, tso_frame(3000, 0));  // gso_size 0
  const Packet plain = build_packet(PacketSpec{.payload = 100});
  tun.inject(plain);
  Bufs bufs(4);
  BatchResult r = tun.read(0, bufs.views, bufs.sizes, 0);
  ASSERT_EQ(r.count, 1u);
  EXPECT_EQ(Packet(bufs.storage[0].begin(), bufs.storage[0].begin() + 140), plain);
  EXPECT_EQ(tun.offload_stats().malformed_dropped, 1u);
}

TEST(FakeTunOffload, WritesAreCoalescedAndSegmentBackToTheInput) {
  FakeTun tun;
  tun.set_offloads({true, true, false});
  std::vector<Packet> in;
  for (int i = 0; i < 10; ++i) {
    in.push_back(build_packet(PacketSpec{.seq = static_cast<std::uint32_t>(1000 + i * 1200),
                                         .id = static_cast<std::uint16_t>(100 + i),
                                         .payload = 1200,
                                         .fill = static_cast<std::uint8_t>(i)}));
  }
  in.push_back(build_packet(PacketSpec{.proto = 17, .payload = 50}));
  std::vector<ConstBytes> v(in.begin(), in.end());
  BatchResult r = tun.write(0, v);
  EXPECT_EQ(r.count, 11u);
  const auto frames = tun.take_written_frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(net::decode_virtio_net_hdr(frames[0].data()).gso_type, net::kGsoTcpV4);
  EXPECT_EQ(net::decode_virtio_net_hdr(frames[1].data()).gso_type, net::kGsoNone);
  EXPECT_EQ(tun.take_written(), in);
  EXPECT_EQ(tun.offload_stats().super_packets_written, 1u);
  EXPECT_EQ(tun.offload_stats().segments_written, 10u);
}

TEST(FakeTunOffload, WithoutOffloadsNothingChanges) {
  FakeTun tun;
  EXPECT_FALSE(tun.vnet_hdr());
  const Packet p = build_packet(PacketSpec{.payload = 100});
  std::vector<ConstBytes> v(3, ConstBytes(p));
  EXPECT_EQ(tun.write(0, v).count, 3u);
  EXPECT_EQ(tun.take_written().size(), 3u);
  EXPECT_TRUE(tun.take_written_frames().empty());
}

}  // namespace
}  // namespace warren::platform::fake
