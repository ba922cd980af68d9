#include "wg/allowed_ips.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace warren::wg {
namespace {

using net::IpAddress;
using net::Prefix;

// Distinct peers, named like the kernel selftest's a..h.
constexpr PeerId kA = 1, kB = 2, kC = 3, kD = 4, kE = 5, kF = 6, kG = 7, kH = 8;

IpAddress ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return IpAddress::v4({a, b, c, d});
}

// An IPv6 address from four 32-bit words, most significant first.
IpAddress ip6(std::uint32_t w0, std::uint32_t w1, std::uint32_t w2, std::uint32_t w3) {
  std::array<std::uint8_t, 16> b{};
  const std::uint32_t words[4] = {w0, w1, w2, w3};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      b[static_cast<std::size_t>(i * 4 + j)] = static_cast<std::uint8_t>(words[i] >> (24 - 8 * j));
    }
  }
  return IpAddress::v6(b);
}

Prefix pfx(const IpAddress& a, unsigned length) {
  return Prefix{a, static_cast<std::uint8_t>(length)};
}

Prefix parse_prefix(const char* text) {
  auto p = Prefix::parse(text);
  EXPECT_TRUE(p.has_value()) << text;
  return p.value_or(Prefix{});
}

IpAddress parse_ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddress{});
}

// The insert/lookup table of the kernel's allowedips self-test (selftest/allowedips.c).
class KernelSelftestTable : public ::testing::Test {
 protected:
  void SetUp() override {
    t_.insert(pfx(ip4(192, 168, 4, 0), 24), kA);
    t_.insert(pfx(ip4(192, 168, 4, 4), 32), kB);
    t_.insert(pfx(ip4(192, 168, 0, 0), 16), kC);
    t_.insert(pfx(ip4(192, 95, 5, 64), 27), kD);
    // Same /27 with a host bit set: must be masked, and replaces d's entry.
    t_.insert(pfx(ip4(192, 95, 5, 65), 27), kC);
    t_.insert(pfx(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128), kD);
    t_.insert(pfx(ip6(0x26075300, 0x60006b00, 0, 0), 64), kC);
    t_.insert(pfx(ip4(0, 0, 0, 0), 0), kE);
    t_.insert(pfx(ip6(0, 0, 0, 0), 0), kE);
    t_.insert(pfx(ip6(0, 0, 0, 0), 0), kF);  // ::/0 moves from e to f
    t_.insert(pfx(ip6(0x24046800, 0, 0, 0), 32), kG);
    t_.insert(pfx(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 64), kH);  // host bits
    t_.insert(pfx(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), 128), kA);
    t_.insert(pfx(ip6(0x24446800, 0x40e40800, 0xdeaebeef, 0xdefbeef), 128), kC);
    t_.insert(pfx(ip6(0x24446800, 0xf0e40800, 0xeeaebeef, 0), 98), kB);
    t_.insert(pfx(ip4(64, 15, 112, 0), 20), kG);
    t_.insert(pfx(ip4(64, 15, 123, 211), 25), kH);  // host bits
    t_.insert(pfx(ip4(10, 0, 0, 0), 25), kA);
    t_.insert(pfx(ip4(10, 0, 0, 128), 25), kB);
    t_.insert(pfx(ip4(10, 1, 0, 0), 30), kA);
    t_.insert(pfx(ip4(10, 1, 0, 4), 30), kB);
    t_.insert(pfx(ip4(10, 1, 0, 8), 29), kC);
    t_.insert(pfx(ip4(10, 1, 0, 16), 29), kD);
  }

  AllowedIps t_;
};

TEST_F(KernelSelftestTable, Lookups) {
  const std::pair<IpAddress, PeerId> cases[] = {
      {ip4(192, 168, 4, 20), kA},
      {ip4(192, 168, 4, 0), kA},
      {ip4(192, 168, 4, 4), kB},
      {ip4(192, 168, 200, 182), kC},
      {ip4(192, 95, 5, 68), kC},
      {ip4(192, 95, 5, 96), kE},
      {ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), kD},
      {ip6(0x26075300, 0x60006b00, 0, 0xc02e01ee), kC},
      {ip6(0x26075300, 0x60006b01, 0, 0), kF},
      {ip6(0x24046800, 0x40040806, 0, 0x1006), kG},
      {ip6(0x24046800, 0x40040806, 0x1234, 0x5678), kG},
      {ip6(0x240467ff, 0x40040806, 0x1234, 0x5678), kF},
      {ip6(0x24046801, 0x40040806, 0x1234, 0x5678), kF},
      {ip6(0x24046800, 0x40040800, 0x1234, 0x5678), kH},
      {ip6(0x24046800, 0x40040800, 0, 0), kH},
      {ip6(0x24046800, 0x40040800, 0x10101010, 0x10101010), kH},
      {ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef), kA},
      {ip4(64, 15, 116, 26), kG},
      {ip4(64, 15, 127, 3), kG},
      {ip4(64, 15, 123, 1), kG},
      {ip4(64, 15, 123, 128), kH},
      {ip4(64, 15, 123, 129), kH},
      {ip4(10, 0, 0, 52), kA},
      {ip4(10, 0, 0, 220), kB},
      {ip4(10, 1, 0, 2), kA},
      {ip4(10, 1, 0, 6), kB},
      {ip4(10, 1, 0, 10), kC},
      {ip4(10, 1, 0, 20), kD},
  };
  for (const auto& [address, peer] : cases) {
    EXPECT_EQ(t_.lookup(address), std::optional<PeerId>(peer)) << address.to_string();
  }
}

TEST_F(KernelSelftestTable, ReplacedEntriesAreMovedNotDuplicated) {
  // 23 inserts, two of which re-inserted an existing prefix (the /27 and ::/0).
  EXPECT_EQ(t_.size(), 21u);
  const auto d = t_.prefixes_of(kD);
  EXPECT_EQ(d, (std::vector<Prefix>{parse_prefix("10.1.0.16/29"),
                                    parse_prefix("2607:5300:6000:6b00::c05f:543/128")}));
  const auto e = t_.prefixes_of(kE);
  EXPECT_EQ(e, (std::vector<Prefix>{parse_prefix("0.0.0.0/0")}));
  EXPECT_EQ(t_.prefixes_of(kF), (std::vector<Prefix>{parse_prefix("::/0")}));
  const auto c = t_.prefixes_of(kC);
  EXPECT_NE(std::find(c.begin(), c.end(), parse_prefix("192.95.5.64/27")), c.end());
}

TEST_F(KernelSelftestTable, RemovingAPeerFallsBackToShorterPrefixes) {
  t_.remove_peer(kA);
  EXPECT_EQ(t_.lookup(ip4(192, 168, 4, 20)), kC);  // /24 gone, /16 of c remains
  EXPECT_EQ(t_.lookup(ip4(192, 168, 4, 4)), kB);
  EXPECT_EQ(t_.lookup(ip4(10, 0, 0, 52)), kE);
  EXPECT_EQ(t_.lookup(ip6(0x24046800, 0x40040800, 0xdeadbeef, 0xdeadbeef)), kH);
  EXPECT_TRUE(t_.prefixes_of(kA).empty());
  EXPECT_EQ(t_.size(), 21u - 4u);  // a had 4 prefixes
}

TEST(AllowedIps, RemoveByPeerOfHostRoutesAcrossTheSpace) {
  AllowedIps t;
  for (std::uint8_t first : {1, 64, 128, 192, 255}) {
    t.insert(pfx(ip4(first, 0, 0, 0), 32), kA);
  }
  EXPECT_EQ(t.size(), 5u);
  t.remove_peer(kA);
  for (std::uint8_t first : {1, 64, 128, 192, 255}) {
    EXPECT_EQ(t.lookup(ip4(first, 0, 0, 0)), std::nullopt);
  }
  EXPECT_EQ(t.size(), 0u);
}

TEST(AllowedIps, RemoveByPeerOfNestedPrefixes) {
  AllowedIps t;
  t.insert(parse_prefix("192.168.0.0/16"), kA);
  t.insert(parse_prefix("192.168.0.0/24"), kA);
  t.remove_peer(kA);
  EXPECT_EQ(t.lookup(ip4(192, 168, 0, 1)), std::nullopt);
  EXPECT_EQ(t.size(), 0u);
}

TEST(AllowedIps, NearIdenticalHostRoutes) {
  // 128 /128s that share ever longer runs of leading ones (and zeros), plus ::/128: the deepest
  // chains a 128-bit trie can have.
  AllowedIps t;
  std::vector<IpAddress> inserted;
  for (unsigned i = 0; i < 64; ++i) {
    const std::uint64_t part = ~std::uint64_t{0} << i;
    const auto hi = static_cast<std::uint32_t>(part >> 32);
    const auto lo = static_cast<std::uint32_t>(part);
    inserted.push_back(ip6(0xffffffff, 0xffffffff, hi, lo));
    inserted.push_back(ip6(hi, lo, 0, 0));
  }
  inserted.push_back(ip6(0, 0, 0, 0));
  for (std::size_t i = 0; i < inserted.size(); ++i) {
    t.insert(pfx(inserted[i], 128), static_cast<PeerId>(i));
  }
  ASSERT_EQ(t.size(), 129u);
  for (std::size_t i = 0; i < inserted.size(); ++i) {
    EXPECT_EQ(t.lookup(inserted[i]), static_cast<PeerId>(i)) << inserted[i].to_string();
  }
  // Remove every other one; the rest must still resolve and the removed must miss.
  for (std::size_t i = 0; i < inserted.size(); i += 2) {
    EXPECT_TRUE(t.remove(pfx(inserted[i], 128), static_cast<PeerId>(i)));
  }
  for (std::size_t i = 0; i < inserted.size(); ++i) {
    const auto expected = i % 2 == 0 ? std::nullopt : std::optional<PeerId>(static_cast<PeerId>(i));
    EXPECT_EQ(t.lookup(inserted[i]), expected) << inserted[i].to_string();
  }
  EXPECT_EQ(t.size(), 64u);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.lookup(inserted[1]), std::nullopt);
}

TEST(AllowedIps, StoredPrefixesReadBackMasked) {
  AllowedIps t;
  t.insert(pfx(ip4(192, 95, 5, 93), 27), kA);
  t.insert(pfx(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128), kA);
  t.insert(pfx(ip4(10, 1, 0, 20), 29), kA);
  t.insert(pfx(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 83), kA);
  t.insert(pfx(ip6(0x26075300, 0x6d8a6bf8, 0xdab1f1df, 0xc05f1523), 21), kA);
  const std::vector<Prefix> expected = {
      pfx(ip4(10, 1, 0, 16), 29),
      pfx(ip4(192, 95, 5, 64), 27),
      pfx(ip6(0x26075000, 0, 0, 0), 21),
      pfx(ip6(0x26075300, 0x60006b00, 0, 0xc05f0543), 128),
      pfx(ip6(0x26075300, 0x6d8a6bf8, 0xdab1e000, 0), 83),
  };
  EXPECT_EQ(t.prefixes_of(kA), expected);
  EXPECT_EQ(t.prefixes_of(kA)[2].to_string(), "2607:5000::/21");
  EXPECT_EQ(t.prefixes_of(kA)[4].to_string(), "2607:5300:6d8a:6bf8:dab1:e000::/83");
}

TEST(AllowedIps, EmptyTable) {
  AllowedIps t;
  EXPECT_EQ(t.lookup(ip4(1, 2, 3, 4)), std::nullopt);
  EXPECT_EQ(t.lookup(ip6(1, 2, 3, 4)), std::nullopt);
  EXPECT_FALSE(t.remove(parse_prefix("1.2.3.0/24"), kA));
  t.remove_peer(kA);
  EXPECT_TRUE(t.prefixes_of(kA).empty());
  EXPECT_EQ(t.size(), 0u);
}

TEST(AllowedIps, FamiliesAreSeparate) {
  AllowedIps t;
  t.insert(parse_prefix("0.0.0.0/0"), kA);
  EXPECT_EQ(t.lookup(parse_ip("2001:db8::1")), std::nullopt);
  EXPECT_EQ(t.lookup(parse_ip("::")), std::nullopt);
  // Mapped addresses are IPv6 addresses; the caller unmaps if it means IPv4.
  EXPECT_EQ(t.lookup(parse_ip("::ffff:192.0.2.1")), std::nullopt);
  EXPECT_EQ(t.lookup(parse_ip("::ffff:192.0.2.1").unmapped()), kA);
  t.insert(parse_prefix("::/0"), kB);
  EXPECT_EQ(t.lookup(parse_ip("2001:db8::1")), kB);
  EXPECT_EQ(t.lookup(parse_ip("192.0.2.1")), kA);
}

TEST(AllowedIps, RemoveNeedsTheExactPrefixAndOwner) {
  AllowedIps t;
  t.insert(parse_prefix("10.0.0.0/8"), kA);
  t.insert(parse_prefix("10.1.0.0/16"), kB);
  t.insert(parse_prefix("10.1.2.0/24"), kA);
  EXPECT_FALSE(t.remove(parse_prefix("10.1.0.0/16"), kA));  // owned by b
  EXPECT_FALSE(t.remove(parse_prefix("10.1.0.0/17"), kB));  // not stored
  EXPECT_FALSE(t.remove(parse_prefix("10.0.0.0/0"), kA));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(t.remove(parse_prefix("10.1.77.1/16"), kB));  // host bits are masked
  EXPECT_FALSE(t.remove(parse_prefix("10.1.0.0/16"), kB));  // already gone
  EXPECT_EQ(t.lookup(ip4(10, 1, 9, 9)), kA);                // falls back to the /8
  EXPECT_EQ(t.lookup(ip4(10, 1, 2, 3)), kA);
  EXPECT_TRUE(t.remove(parse_prefix("10.0.0.0/8"), kA));
  EXPECT_EQ(t.lookup(ip4(10, 1, 9, 9)), std::nullopt);
  EXPECT_EQ(t.lookup(ip4(10, 1, 2, 3)), kA);  // the /24 survives removing its covering /8
  EXPECT_EQ(t.prefixes_of(kA), (std::vector<Prefix>{parse_prefix("10.1.2.0/24")}));
  EXPECT_EQ(t.size(), 1u);
}

TEST(AllowedIps, PrefixMovesBetweenPeers) {
  AllowedIps t;
  t.insert(parse_prefix("192.0.2.0/24"), kA);
  t.insert(parse_prefix("198.51.100.0/24"), kA);
  t.insert(parse_prefix("192.0.2.0/24"), kB);
  EXPECT_EQ(t.lookup(ip4(192, 0, 2, 1)), kB);
  EXPECT_EQ(t.prefixes_of(kA), (std::vector<Prefix>{parse_prefix("198.51.100.0/24")}));
  EXPECT_EQ(t.prefixes_of(kB), (std::vector<Prefix>{parse_prefix("192.0.2.0/24")}));
  EXPECT_FALSE(t.remove(parse_prefix("192.0.2.0/24"), kA));
  t.remove_peer(kA);
  EXPECT_EQ(t.lookup(ip4(192, 0, 2, 1)), kB);
  EXPECT_EQ(t.size(), 1u);
  t.insert(parse_prefix("192.0.2.0/24"), kB);  // same owner again: no change
  EXPECT_EQ(t.size(), 1u);
}

TEST(AllowedIps, PrefixesOfIsOrdered) {
  AllowedIps t;
  for (const char* p : {"fd00::/8", "10.0.0.0/8", "10.0.0.0/24", "2001:db8::/32", "10.0.0.0/16",
                        "9.0.0.0/8", "::/0", "0.0.0.0/0"}) {
    t.insert(parse_prefix(p), kA);
  }
  std::vector<std::string> got;
  for (const auto& p : t.prefixes_of(kA)) {
    got.push_back(p.to_string());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"0.0.0.0/0", "9.0.0.0/8", "10.0.0.0/8", "10.0.0.0/16",
                                           "10.0.0.0/24", "::/0", "2001:db8::/32", "fd00::/8"}));
}

TEST(AllowedIps, CopiesAreIndependent) {
  AllowedIps t;
  t.insert(parse_prefix("10.0.0.0/8"), kA);
  AllowedIps copy = t;
  copy.insert(parse_prefix("10.0.0.0/8"), kB);
  copy.insert(parse_prefix("10.2.0.0/16"), kC);
  EXPECT_EQ(t.lookup(ip4(10, 2, 0, 1)), kA);
  EXPECT_EQ(copy.lookup(ip4(10, 2, 0, 1)), kC);
  EXPECT_EQ(copy.lookup(ip4(10, 3, 0, 1)), kB);
  t.remove_peer(kA);
  EXPECT_EQ(copy.size(), 2u);
}

TEST(AllowedIps, ManyPrefixesForOnePeer) {
  // The kernel stress test's scale: 2^17 prefixes for one peer, then remove_peer.
  AllowedIps t;
  std::mt19937_64 rng(20240601);
  std::vector<Prefix> v4;
  for (int i = 0; i < 65536; ++i) {
    v4.push_back(pfx(IpAddress::v4(static_cast<std::uint32_t>(rng())), 32));
  }
  for (int i = 0; i < 65536; ++i) {
    std::array<std::uint8_t, 16> b{};
    const std::uint64_t hi = rng();
    for (int j = 0; j < 8; ++j) {
      b[static_cast<std::size_t>(j)] = static_cast<std::uint8_t>(hi >> (56 - 8 * j));
    }
    t.insert(pfx(IpAddress::v6(b), 64), kA);
  }
  for (const auto& p : v4) {
    t.insert(p, kA);
  }
  const std::size_t stored = t.size();
  EXPECT_GT(stored, 131000u);  // random collisions may merge a few
  EXPECT_EQ(t.prefixes_of(kA).size(), stored);
  for (const auto& p : v4) {
    ASSERT_EQ(t.lookup(p.address), kA);
  }
  t.insert(parse_prefix("0.0.0.0/0"), kB);
  t.remove_peer(kA);
  EXPECT_EQ(t.size(), 1u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(t.lookup(v4[static_cast<std::size_t>(i)].address), kB);
  }
}

TEST(PrefixTrie, BranchNodesArePrunedAndReused) {
  // Internal structure: n prefixes never need more than 2n - 1 nodes, and removal gives the
  // branch points back, so churn does not grow the node pool.
  detail::PrefixTrie<std::uint32_t> trie;
  std::mt19937_64 rng(99);
  std::vector<std::pair<std::uint32_t, unsigned>> stored;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) {
      const unsigned length = 8 + static_cast<unsigned>(rng() % 25);
      const auto key = static_cast<std::uint32_t>(rng()) & trie.mask(length);
      trie.insert(key, length, static_cast<PeerId>(rng() % 4));
      stored.emplace_back(key, length);
      ASSERT_LE(trie.node_count(), 2 * trie.size() - 1);
    }
    std::shuffle(stored.begin(), stored.end(), rng);
    while (stored.size() > 100) {
      const auto [key, length] = stored.back();
      stored.pop_back();
      for (PeerId p = 0; p < 4; ++p) {
        trie.remove(key, length, p);
      }
      ASSERT_LE(trie.node_count(), trie.size() == 0 ? 0 : 2 * trie.size() - 1);
    }
  }
  for (PeerId p = 0; p < 4; ++p) {
    trie.remove_peer(p);
  }
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_EQ(trie.node_count(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Randomized differential test against a naive linear longest-prefix match.

class NaiveTable {
 public:
  void insert(const Prefix& p, PeerId peer) {
    const Prefix c = p.canonical();
    for (auto& [prefix, owner] : entries_) {
      if (prefix == c) {
        owner = peer;
        return;
      }
    }
    entries_.emplace_back(c, peer);
  }
  bool remove(const Prefix& p, PeerId peer) {
    const Prefix c = p.canonical();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == c && it->second == peer) {
        entries_.erase(it);
        return true;
      }
    }
    return false;
  }
  void remove_peer(PeerId peer) {
    std::erase_if(entries_, [peer](const auto& e) { return e.second == peer; });
  }
  std::optional<PeerId> lookup(const IpAddress& a) const {
    std::optional<PeerId> best;
    int best_length = -1;
    for (const auto& [prefix, owner] : entries_) {
      if (prefix.length > best_length && prefix.contains(a)) {
        best = owner;
        best_length = prefix.length;
      }
    }
    return best;
  }
  std::vector<Prefix> prefixes_of(PeerId peer) const {
    std::vector<Prefix> out;
    for (const auto& [prefix, owner] : entries_) {
      if (owner == peer) {
        out.push_back(prefix);
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::size_t size() const { return entries_.size(); }
  const std::vector<std::pair<Prefix, PeerId>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<Prefix, PeerId>> entries_;
};

std::uint64_t test_seed() {
  if (const char* env = std::getenv("WARREN_TEST_SEED")) {
    return std::strtoull(env, nullptr, 0);
  }
  return 0x5eed0a11'0ed1b5ULL;
}

// Random addresses drawn from a few base ranges, with a random number of leading bits kept from
// the base, so generated prefixes nest and overlap a lot.
class AddressGenerator {
 public:
  AddressGenerator(std::mt19937_64& rng, bool v6) : rng_(rng), v6_(v6) {
    const char* bases4[] = {"10.0.0.0", "10.1.0.0", "192.168.0.0", "172.16.0.0", "0.0.0.0"};
    const char* bases6[] = {"2001:db8::", "2001:db8:0:1::", "fd00::", "2607:5300:60::", "::"};
    for (const char* b : v6 ? std::vector<const char*>(std::begin(bases6), std::end(bases6))
                            : std::vector<const char*>(std::begin(bases4), std::end(bases4))) {
      bases_.push_back(*IpAddress::parse(b));
    }
  }

  unsigned bits() const { return v6_ ? 128 : 32; }

  IpAddress address() {
    const IpAddress& base = bases_[rng_() % bases_.size()];
    // Keep 0..bits leading bits of the base, randomize the rest.
    const unsigned keep = static_cast<unsigned>(rng_() % (bits() + 1));
    return with_random_host_bits(base, keep);
  }

  IpAddress with_random_host_bits(const IpAddress& base, unsigned keep) {
    std::array<std::uint8_t, 16> b{};
    for (std::size_t i = 0; i < base.size(); ++i) {
      b[i] = base.data()[i];
    }
    for (unsigned i = keep; i < bits(); ++i) {
      const auto m = static_cast<std::uint8_t>(0x80u >> (i % 8));
      if (rng_() & 1) {
        b[i / 8] |= m;
      } else {
        b[i / 8] &= static_cast<std::uint8_t>(~m);
      }
    }
    return *IpAddress::from_bytes(b.data(), base.size());
  }

  unsigned length() {
    // Mostly long prefixes (like real allowed IPs), some short, some full host routes.
    switch (rng_() % 8) {
      case 0:
        return static_cast<unsigned>(rng_() % (bits() + 1));
      case 1:
        return bits();
      default: {
        const unsigned lo = bits() / 4;
        return lo + static_cast<unsigned>(rng_() % (bits() - lo + 1));
      }
    }
  }

 private:
  std::mt19937_64& rng_;
  bool v6_;
  std::vector<IpAddress> bases_;
};

void run_differential(bool v6, std::uint64_t seed) {
  SCOPED_TRACE("seed " + std::to_string(seed) + (v6 ? " (IPv6)" : " (IPv4)") +
               "; rerun with WARREN_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  AddressGenerator gen(rng, v6);
  AllowedIps trie;
  NaiveTable naive;
  constexpr PeerId kPeers = 12;
  constexpr int kOperations = 8000;
  constexpr int kCheckEvery = 1000;
  constexpr int kLookupsPerCheck = 2500;
  std::size_t successful_removes = 0;
  std::size_t peer_removals = 0;

  auto check = [&](int step) {
    ASSERT_EQ(trie.size(), naive.size()) << "after step " << step;
    for (int i = 0; i < kLookupsPerCheck; ++i) {
      IpAddress a;
      if (i % 2 == 0 && naive.size() > 0) {
        // Inside (or just around) a stored prefix, to reach deep nodes.
        const auto& [prefix, owner] = naive.entries()[rng() % naive.size()];
        a = gen.with_random_host_bits(prefix.address, prefix.length);
      } else {
        a = gen.address();
      }
      ASSERT_EQ(trie.lookup(a), naive.lookup(a)) << a.to_string() << " after step " << step;
    }
    for (PeerId p = 0; p < kPeers; ++p) {
      ASSERT_EQ(trie.prefixes_of(p), naive.prefixes_of(p)) << "peer " << p << " step " << step;
    }
  };

  for (int step = 1; step <= kOperations; ++step) {
    const unsigned op = static_cast<unsigned>(rng() % 1000);
    const PeerId peer = static_cast<PeerId>(rng() % kPeers);
    if (op < 700 || naive.size() == 0) {
      const Prefix p = pfx(gen.address(), gen.length());  // host bits usually set
      trie.insert(p, peer);
      naive.insert(p, peer);
    } else if (op < 950) {
      // Remove a stored prefix, given with random host bits, by its owner or (often) another.
      const auto [prefix, owner] = naive.entries()[rng() % naive.size()];
      const PeerId who = rng() % 2 ? owner : peer;
      const Prefix p = pfx(gen.with_random_host_bits(prefix.address, prefix.length), prefix.length);
      const bool removed = naive.remove(p, who);
      ASSERT_EQ(trie.remove(p, who), removed) << p.to_string() << " by " << who;
      successful_removes += removed;
    } else if (op < 953) {
      trie.remove_peer(peer);
      naive.remove_peer(peer);
      ++peer_removals;
    } else {
      // Removing something absent must be a no-op.
      const Prefix p = pfx(gen.address(), gen.length());
      ASSERT_EQ(trie.remove(p, peer), naive.remove(p, peer));
    }
    if (step % kCheckEvery == 0) {
      check(step);
      if (::testing::Test::HasFatalFailure()) {
        return;
      }
    }
  }
  // The run must have exercised what it claims to.
  EXPECT_GT(successful_removes, 100u);
  EXPECT_GT(peer_removals, 5u);
  EXPECT_GT(naive.size(), 500u);
  std::printf("  %zu prefixes left after %d operations, %zu removes, %zu peer removals\n",
              naive.size(), kOperations, successful_removes, peer_removals);
  // Finally empty it peer by peer, checking along the way.
  for (PeerId p = 0; p < kPeers; ++p) {
    trie.remove_peer(p);
    naive.remove_peer(p);
    check(kOperations + static_cast<int>(p));
    if (::testing::Test::HasFatalFailure()) {
      return;
    }
  }
  EXPECT_EQ(trie.size(), 0u);
}

TEST(AllowedIpsDifferential, RandomIpv4) {
  const std::uint64_t seed = test_seed();
  std::printf("AllowedIpsDifferential seed: %llu\n", static_cast<unsigned long long>(seed));
  run_differential(false, seed);
}

TEST(AllowedIpsDifferential, RandomIpv6) {
  const std::uint64_t seed = test_seed() + 1;
  std::printf("AllowedIpsDifferential seed: %llu\n", static_cast<unsigned long long>(seed));
  run_differential(true, seed);
}

TEST(AllowedIpsDifferential, MixedFamiliesShareOneTable) {
  const std::uint64_t seed = test_seed() + 2;
  std::mt19937_64 rng(seed);
  AddressGenerator gen4(rng, false);
  AddressGenerator gen6(rng, true);
  AllowedIps trie;
  NaiveTable naive;
  for (int i = 0; i < 3000; ++i) {
    AddressGenerator& gen = rng() % 2 ? gen4 : gen6;
    const Prefix p = pfx(gen.address(), gen.length());
    const auto peer = static_cast<PeerId>(rng() % 5);
    trie.insert(p, peer);
    naive.insert(p, peer);
  }
  trie.remove_peer(3);
  naive.remove_peer(3);
  ASSERT_EQ(trie.size(), naive.size()) << "seed " << seed;
  for (int i = 0; i < 20000; ++i) {
    const IpAddress a = (rng() % 2 ? gen4 : gen6).address();
    ASSERT_EQ(trie.lookup(a), naive.lookup(a)) << a.to_string() << " seed " << seed;
  }
  for (PeerId p = 0; p < 5; ++p) {
    ASSERT_EQ(trie.prefixes_of(p), naive.prefixes_of(p)) << "seed " << seed;
  }
}

}  // namespace
}  // namespace warren::wg
