// Regressions found by the libFuzzer targets in tests/fuzz (make fuzz). Each names the target
// and keeps the crashing input; the input is also in that target's seed corpus.

#include <gtest/gtest.h>

#include <vector>

#include "net/gso.h"

namespace warren::net {
namespace {

// fuzz_gso_coalesce, input 0f 82 82 82 82 f1 03 00 00 00 00 00 00 (corpus file
// regression-empty-packet): four UDP packets, a corrupt TCP one, then an empty packet. flatten()
// copied the empty packet's span with memcpy from a null pointer (UBSan: "null pointer passed as
// argument 2"). An empty packet must pass through as an empty plain frame.
TEST(GsoFuzzRegression, EmptyPacketFlattensToABareVirtioHeader) {
  std::vector<std::uint8_t> empty;
  std::vector<ConstBytes> packets{ConstBytes(empty.data(), 0)};
  GroCoalescer gro;
  ASSERT_EQ(gro.coalesce(packets), 1u);
  EXPECT_EQ(gro.frame(0).size(), 0u);
  std::vector<std::uint8_t> out(kVirtioNetHdrSize, 0xee);
  EXPECT_EQ(gro.flatten(0, out), kVirtioNetHdrSize);
  const VirtioNetHdr h = decode_virtio_net_hdr(out.data());
  EXPECT_EQ(h.gso_type, kGsoNone);
  EXPECT_EQ(h.flags, 0);
}

}  // namespace
}  // namespace warren::net
