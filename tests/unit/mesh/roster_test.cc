#include "mesh/roster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "crypto/blake2s.h"

namespace warren::mesh {
namespace {

// A distinct, non-zero key per number (not a real curve point; the roster never does DH).
crypto::PublicKey key_of(std::uint32_t i) {
  std::uint8_t seed[4];
  store_be32(seed, i);
  crypto::PublicKey k;
  crypto::blake2s_hash({crypto::ByteView(seed, 4)}, k.bytes);
  return k;
}

net::Endpoint ep(const char* text) {
  auto e = net::Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(net::Endpoint{});
}

NodeEntry node(const AddressPlan& plan, std::uint32_t i) {
  auto e = make_entry(plan, "node-" + std::to_string(i), key_of(i));
  e.local_endpoints = {ep("192.168.1.10:51820"), ep("[2001:db8::10]:51820")};
  e.reflexive = ep("198.51.100.7:40001");
  return e;
}

// A coordinator roster with nodes 1..n, each with a free IPv4 address (lowest free index).
Roster coordinator(std::uint32_t n, const AddressPlan& plan = AddressPlan()) {
  Roster r(plan);
  std::set<net::IpAddress> taken;
  for (std::uint32_t i = 1; i <= n; ++i) {
    auto e = node(plan, i);
    auto a = plan.assign_v4(e.key.to_base64(),
                            [&](const net::IpAddress& ip) { return taken.contains(ip); });
    EXPECT_TRUE(a);
    e.v4 = a->address;
    e.v4_index = a->index;
    taken.insert(e.v4);
    EXPECT_TRUE(r.upsert(e)) << i;
  }
  return r;
}

AddressPlan plan_of(const char* v4, const char* v6) {
  auto p = AddressPlan::create(*net::Prefix::parse(v4), *net::Prefix::parse(v6));
  EXPECT_TRUE(p);
  return *p;
}

// --- entries ----------------------------------------------------------------------------------

TEST(RosterName, DnsLabelsOnly) {
  const std::vector<std::string> good = {"a", "laptop", "node-1",
                                         "0", "x1-y2",  std::string(63, 'a')};
  for (const auto& n : good)
    EXPECT_TRUE(valid_node_name(n)) << n;
  const std::vector<std::string> bad = {
      "", "-a", "a-", "Laptop", "a.b", "a_b", "a b", "ä", std::string(64, 'a')};
  for (const auto& n : bad)
    EXPECT_FALSE(valid_node_name(n)) << n;
}

TEST(RosterEntry, MadeEntriesCarryTheDerivedAddresses) {
  AddressPlan plan;
  auto e = make_entry(plan, "a", key_of(1), 3);
  EXPECT_EQ(e.v4, plan.v4(key_of(1).to_base64(), 3));
  EXPECT_EQ(e.v6, plan.v6(key_of(1).to_base64()));
  EXPECT_TRUE(validate_entry(plan, e));
}

TEST(RosterEntry, EachRuleHasItsError) {
  AddressPlan plan;
  const NodeEntry good = node(plan, 1);
  ASSERT_TRUE(validate_entry(plan, good));
  struct Case {
    const char* what;
    std::function<void(NodeEntry&)> edit;
  };
  const std::vector<Case> cases = {
      {"all zero", [](NodeEntry& e) { e.key = {}; }},
      {"not a DNS label", [](NodeEntry& e) { e.name = "Bad_Name"; }},
      {"not a DNS label", [](NodeEntry& e) { e.name = ""; }},
      {"unknown state", [](NodeEntry& e) { e.state = static_cast<NodeState>(7); }},
      {"collision index 1025", [](NodeEntry& e) { e.v4_index = 1025; }},
      // The index changes the derivation; the stored address no longer matches.
      {"IPv4 address", [](NodeEntry& e) { e.v4_index = 1; }},
      {"IPv4 address", [](NodeEntry& e) { e.v4 = *net::IpAddress::parse("100.64.0.9"); }},
      {"IPv6 address", [](NodeEntry& e) { e.v6 = *net::IpAddress::parse("200::1"); }},
      {"9 local endpoints", [](NodeEntry& e) { e.local_endpoints.assign(9, ep("192.0.2.1:1")); }},
      {"local endpoint", [](NodeEntry& e) { e.local_endpoints[0].port = 0; }},
      {"local endpoint", [](NodeEntry& e) { e.local_endpoints[0].address = {}; }},
      {"reflexive endpoint", [](NodeEntry& e) { e.reflexive->port = 0; }},
  };
  for (const auto& c : cases) {
    NodeEntry e = good;
    c.edit(e);
    auto s = validate_entry(plan, e);
    ASSERT_FALSE(s) << c.what;
    EXPECT_EQ(s.code(), EINVAL) << c.what;
    EXPECT_NE(s.message().find(c.what), std::string::npos) << s.message();
  }
}

TEST(RosterEntry, AddressesFromAnotherPlanAreRefused) {
  // A node configured with a ULA and a coordinator with the default: the IPv6 addresses differ.
  const AddressPlan ula = plan_of("100.64.0.0/10", "fd12:3456:7890::/48");
  auto s = validate_entry(ula, node(AddressPlan(), 1));
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("IPv6 address"), std::string::npos) << s.message();
}

// --- coordinator side -------------------------------------------------------------------------

TEST(RosterCoordinator, EachChangeIsOneVersionStep) {
  AddressPlan plan;
  Roster r(plan);
  EXPECT_EQ(r.version(), 0u);
  ASSERT_TRUE(r.upsert(node(plan, 1)));
  ASSERT_TRUE(r.upsert(node(plan, 2)));
  EXPECT_EQ(r.version(), 2u);
  // Re-sending the same entry is not a change.
  ASSERT_TRUE(r.upsert(node(plan, 2)));
  EXPECT_EQ(r.version(), 2u);
  auto moved = node(plan, 2);
  moved.reflexive = ep("203.0.113.5:1234");
  ASSERT_TRUE(r.upsert(moved));
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(r.find(key_of(2))->reflexive, ep("203.0.113.5:1234"));
  ASSERT_TRUE(r.revoke(key_of(1)));
  EXPECT_EQ(r.find(key_of(1))->state, NodeState::kRevoked);
  EXPECT_TRUE(r.find(key_of(1))->local_endpoints.empty());
  EXPECT_FALSE(r.find(key_of(1))->reflexive);
  ASSERT_TRUE(r.remove(key_of(1)));
  EXPECT_EQ(r.version(), 5u);
  EXPECT_EQ(r.find(key_of(1)), nullptr);
  EXPECT_EQ(r.revoke(key_of(1)).code(), ENOENT);
  EXPECT_EQ(r.remove(key_of(1)).code(), ENOENT);
  EXPECT_EQ(r.version(), 5u);
}

TEST(RosterCoordinator, NamesAndIpv4AddressesAreUnique) {
  AddressPlan plan;
  Roster r(plan);
  ASSERT_TRUE(r.upsert(node(plan, 1)));
  auto same_name = node(plan, 2);
  same_name.name = "node-1";
  auto s = r.upsert(same_name);
  EXPECT_EQ(s.code(), EEXIST);
  EXPECT_NE(s.message().find("name 'node-1'"), std::string::npos) << s.message();

  // A /30 has two host values (2 and 3), so the third key collides for sure.
  const AddressPlan tiny = plan_of("10.9.9.0/30", "200::/7");
  Roster t(tiny);
  int refused = 0;
  for (std::uint32_t i = 1; i <= 3; ++i) {
    auto st = t.upsert(make_entry(tiny, "n" + std::to_string(i), key_of(i)));
    if (!st) {
      EXPECT_EQ(st.code(), EEXIST);
      EXPECT_NE(st.message().find("IPv4 address"), std::string::npos) << st.message();
      ++refused;
    }
  }
  EXPECT_GE(refused, 1);
  EXPECT_EQ(t.version(), 3u - refused);
}

TEST(RosterDiff, AddedChangedRemovedSinceAVersion) {
  AddressPlan plan;
  Roster r = coordinator(3, plan);  // versions 1..3
  const std::uint64_t v = r.version();
  auto changed = node(plan, 2);
  changed.reflexive = ep("203.0.113.9:9");
  ASSERT_TRUE(r.upsert(changed));
  ASSERT_TRUE(r.remove(key_of(3)));
  ASSERT_TRUE(r.upsert(node(plan, 4)));
  ASSERT_TRUE(r.upsert(node(plan, 5)));
  ASSERT_TRUE(r.remove(key_of(5)));  // added and removed after v: not in the delta at all

  auto d = r.diff(v);
  ASSERT_TRUE(d) << d.message();
  EXPECT_FALSE(d->full);
  EXPECT_EQ(d->from_version, v);
  EXPECT_EQ(d->to_version, r.version());
  ASSERT_EQ(d->added.size(), 1u);
  EXPECT_EQ(d->added[0].key, key_of(4));
  ASSERT_EQ(d->changed.size(), 1u);
  EXPECT_EQ(d->changed[0], changed);
  ASSERT_EQ(d->removed.size(), 1u);
  EXPECT_EQ(d->removed[0], key_of(3));

  auto none = r.diff(r.version());
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());

  auto full = r.diff(0);
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->full);
  EXPECT_EQ(full->added.size(), r.size());

  auto future = r.diff(r.version() + 1);
  EXPECT_EQ(future.code(), ESTALE);
}

TEST(RosterDiff, HistoryIsBoundedAndOlderHoldersTakeASnapshot) {
  AddressPlan plan;
  Roster r(plan);
  ASSERT_TRUE(r.upsert(node(plan, 1)));
  // kMaxTombstones + 1 removals: the first is forgotten.
  for (std::uint32_t i = 0; i <= kMaxTombstones; ++i) {
    ASSERT_TRUE(r.upsert(node(plan, 100 + i)));
    ASSERT_TRUE(r.remove(key_of(100 + i)));
  }
  auto old = r.diff(1);
  EXPECT_EQ(old.code(), ESTALE);
  EXPECT_NE(old.message().find("full snapshot"), std::string::npos) << old.message();
  EXPECT_TRUE(r.diff(3));  // after the forgotten removal (version 3)
  EXPECT_TRUE(r.diff(0));
}

TEST(RosterDiff, AKeyBackAfterRemovalSendsOlderHoldersToASnapshot) {
  AddressPlan plan;
  Roster r = coordinator(2, plan);
  ASSERT_TRUE(r.remove(key_of(2)));  // version 3
  const std::uint64_t after_removal = r.version();
  ASSERT_TRUE(r.upsert(node(plan, 2)));  // version 4
  EXPECT_EQ(r.diff(2).code(), ESTALE);   // it had the key; one tombstone cannot say so
  auto d = r.diff(after_removal);
  ASSERT_TRUE(d);
  ASSERT_EQ(d->added.size(), 1u);
  EXPECT_EQ(d->added[0].key, key_of(2));
}

// --- node side --------------------------------------------------------------------------------

// A node following the coordinator through many random changes, taking each diff from its own
// version (sometimes skipping several versions), ends up equal to the coordinator.
TEST(RosterApply, ANodeFollowsTheCoordinator) {
  AddressPlan plan;
  Roster c(plan);
  Roster n(plan);
  std::mt19937 rng(1234);
  std::vector<std::uint64_t> held;
  int compared = 0;
  int snapshots = 0;
  for (int step = 0; step < 2000; ++step) {
    const std::uint32_t i = rng() % 40 + 1;
    switch (rng() % 4) {
      case 0:
      case 1: {
        auto e = node(plan, i);
        e.reflexive = net::Endpoint{*net::IpAddress::parse("198.51.100.1"),
                                    static_cast<std::uint16_t>(rng() % 60000 + 1)};
        (void)c.upsert(e);  // EEXIST on an IPv4 collision is fine here
        break;
      }
      case 2:
        (void)c.revoke(key_of(i));
        break;
      default:
        (void)c.remove(key_of(i));
    }
    if (rng() % 3 == 0) {
      auto d = c.diff(n.version());
      if (!d && d.code() == ESTALE) {
        d = c.diff(0);  // the protocol: a holder the history no longer covers takes a snapshot
        ++snapshots;
      }
      ASSERT_TRUE(d) << d.message();
      auto applied = n.apply(*d);
      ASSERT_TRUE(applied) << "step " << step << ": " << applied.message();
      ASSERT_EQ(n.version(), c.version());
      ASSERT_EQ(n.nodes(), c.nodes()) << "step " << step;
      held.push_back(n.version());
      // The node's copy answers diff() from any version it held like the coordinator does
      // (a node handing the roster on, or a coordinator restored from a node's copy).
      const std::uint64_t from =
          held[held.size() - 1 - rng() % std::min<std::size_t>(held.size(), 4)];
      auto mine = n.diff(from);
      auto theirs = c.diff(from);
      if (mine && theirs) {
        ASSERT_EQ(*mine, *theirs) << "from " << from;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 100);
  EXPECT_LT(snapshots, compared);  // deltas, not snapshots, carry most changes
  EXPECT_GT(c.version(), 1000u);
}

TEST(RosterApply, AGapAsksForASnapshotAndChangesNothing) {
  AddressPlan plan;
  Roster c = coordinator(3, plan);
  Roster n(plan);
  ASSERT_TRUE(n.apply(*c.diff(0)));
  const auto before = n.nodes();
  ASSERT_TRUE(c.upsert(node(plan, 4)));  // version 4: the node misses it
  ASSERT_TRUE(c.upsert(node(plan, 5)));  // version 5
  auto d = c.diff(4);
  ASSERT_TRUE(d);
  auto s = n.apply(*d);
  EXPECT_EQ(s.code(), ESTALE);
  EXPECT_NE(s.message().find("starts at version 4 but this roster is at version 3"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("full snapshot"), std::string::npos);
  EXPECT_EQ(n.version(), 3u);
  EXPECT_EQ(n.nodes(), before);
  // The snapshot repairs it, whatever version the node held.
  ASSERT_TRUE(n.apply(*c.diff(0)));
  EXPECT_EQ(n.nodes(), c.nodes());
  EXPECT_EQ(n.version(), 5u);
}

// Each bad delta starts with a valid change and ends with the bad one: the roster must not
// keep the valid part.
TEST(RosterApply, EachNamedErrorAndNothingHalfApplied) {
  AddressPlan plan;
  Roster c = coordinator(3, plan);
  auto fresh = [&] {
    Roster n(plan);
    EXPECT_TRUE(n.apply(*c.diff(0)));
    return n;
  };
  auto base = [&] {
    RosterDelta d;
    d.from_version = c.version();
    d.to_version = c.version() + 1;
    auto e = node(plan, 1);
    e.reflexive = ep("203.0.113.1:1");
    d.changed.push_back(e);  // valid on its own
    d.added.push_back(node(plan, 10));
    return d;
  };
  struct Case {
    const char* name;
    int code;
    const char* text;
    std::function<void(RosterDelta&)> edit;
  };
  const std::vector<Case> cases = {
      {"version does not increase", EINVAL, "must increase",
       [&](RosterDelta& d) { d.to_version = d.from_version; }},
      {"added twice", EEXIST, "twice", [&](RosterDelta& d) { d.added.push_back(node(plan, 10)); }},
      {"added and changed", EEXIST, "twice",
       [&](RosterDelta& d) { d.added.push_back(node(plan, 1)); }},
      {"removed twice", EEXIST, "twice",
       [&](RosterDelta& d) {
         d.removed = {key_of(2), key_of(2)};
       }},
      {"added but present", EEXIST, "already present",
       [&](RosterDelta& d) { d.added.push_back(node(plan, 3)); }},
      {"changed unknown", ENOENT, "changes unknown node",
       [&](RosterDelta& d) { d.changed.push_back(node(plan, 99)); }},
      {"removed unknown", ENOENT, "removes unknown node",
       [&](RosterDelta& d) { d.removed.push_back(key_of(99)); }},
      {"bad name", EINVAL, "not a DNS label",
       [&](RosterDelta& d) {
         auto e = node(plan, 11);
         e.name = "UPPER";
         d.added.push_back(e);
       }},
      {"address not derived", EINVAL, "does not match the derivation",
       [&](RosterDelta& d) {
         auto e = node(plan, 11);
         e.v4 = *net::IpAddress::parse("100.64.1.1");
         d.added.push_back(e);
       }},
      {"name taken", EEXIST, "is already the name of",
       [&](RosterDelta& d) {
         auto e = node(plan, 11);
         e.name = "node-2";
         d.added.push_back(e);
       }},
      {"full with changes", EINVAL, "only added entries", [&](RosterDelta& d) { d.full = true; }},
  };
  for (const auto& c2 : cases) {
    Roster n = fresh();
    const auto before = n.nodes();
    const auto version = n.version();
    ASSERT_TRUE(Roster(n).apply(base())) << "the base delta must be valid: " << c2.name;
    RosterDelta d = base();
    c2.edit(d);
    auto s = n.apply(d);
    ASSERT_FALSE(s) << c2.name;
    EXPECT_EQ(s.code(), c2.code) << c2.name << ": " << s.message();
    EXPECT_NE(s.message().find(c2.text), std::string::npos) << c2.name << ": " << s.message();
    EXPECT_EQ(n.version(), version) << c2.name;
    EXPECT_EQ(n.nodes(), before) << c2.name;
  }
}

TEST(RosterApply, AFullSnapshotWithDuplicatesIsRefusedWhole) {
  AddressPlan plan;
  Roster c = coordinator(3, plan);
  auto d = *c.diff(0);
  d.added.push_back(d.added.front());
  Roster n(plan);
  EXPECT_EQ(n.apply(d).code(), EEXIST);
  EXPECT_EQ(n.size(), 0u);
  EXPECT_EQ(n.version(), 0u);
}

TEST(RosterApply, TwoNodesMaySwapNamesInOneDelta) {
  AddressPlan plan;
  Roster c = coordinator(2, plan);
  Roster n(plan);
  ASSERT_TRUE(n.apply(*c.diff(0)));
  RosterDelta d;
  d.from_version = n.version();
  d.to_version = d.from_version + 1;
  auto a = *n.find(key_of(1));
  auto b = *n.find(key_of(2));
  std::swap(a.name, b.name);
  d.changed = {a, b};
  ASSERT_TRUE(n.apply(d)) << n.apply(d).message();
  EXPECT_EQ(n.find(key_of(1))->name, "node-2");
  EXPECT_EQ(n.find(key_of(2))->name, "node-1");
  // The released name is free for a newcomer only if its holder gave it up.
  RosterDelta d2;
  d2.from_version = n.version();
  d2.to_version = d2.from_version + 1;
  auto newcomer = node(plan, 3);
  newcomer.name = "node-1";
  d2.added = {newcomer};
  EXPECT_EQ(n.apply(d2).code(), EEXIST);
  d2.removed = {key_of(2)};
  EXPECT_TRUE(n.apply(d2));
}

TEST(RosterApply, AnIpv4AddressHeldByAnotherNodeIsRefused) {
  // In a /30 (host values 2 and 3) keys collide quickly: find two with the same address.
  const AddressPlan tiny = plan_of("10.9.9.0/30", "200::/7");
  std::uint32_t first = 0, second = 0;
  for (std::uint32_t j = 2; second == 0; ++j) {
    if (tiny.v4(key_of(1).to_base64()) == tiny.v4(key_of(j).to_base64()))
      first = 1, second = j;
  }
  Roster n(tiny);
  RosterDelta d;
  d.to_version = 1;
  d.full = true;
  d.added = {make_entry(tiny, "a", key_of(first))};
  ASSERT_TRUE(n.apply(d));
  RosterDelta d2;
  d2.from_version = 1;
  d2.to_version = 2;
  d2.added = {make_entry(tiny, "b", key_of(second))};
  auto s = n.apply(d2);
  EXPECT_EQ(s.code(), EEXIST);
  EXPECT_NE(s.message().find("is already the address of"), std::string::npos) << s.message();
  EXPECT_EQ(n.size(), 1u);
  // With the next collision index, the derivation gives the other host value: accepted.
  d2.added = {make_entry(tiny, "b", key_of(second), 1)};
  if (d2.added[0].v4 == n.find(key_of(first))->v4)
    d2.added = {make_entry(tiny, "b", key_of(second), 2)};
  EXPECT_TRUE(n.apply(d2));
}

// --- wire -------------------------------------------------------------------------------------

TEST(RosterWire, RoundTrip) {
  AddressPlan plan;
  RosterDelta d;
  d.from_version = 0x0102030405060708ull;
  d.to_version = d.from_version + 3;
  d.added = {node(plan, 1), make_entry(plan, "bare", key_of(2), 7)};
  auto revoked = node(plan, 3);
  revoked.state = NodeState::kRevoked;
  revoked.reflexive = ep("[2001:db8::5]:65535");
  d.changed = {revoked};
  d.removed = {key_of(4), key_of(5)};
  auto bytes = encode_delta(d);
  auto back = decode_delta(bytes);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(*back, d);

  d.full = true;
  back = decode_delta(encode_delta(d));
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->full);

  RosterDelta empty;
  auto e = encode_delta(empty);
  EXPECT_EQ(e.size(), kRosterHeaderSize + 12);
  EXPECT_EQ(*decode_delta(e), empty);
}

TEST(RosterWire, TheLargestEntryIs292Bytes) {
  // The worst case docs/MESH.md gives for a snapshot at kMaxNodes (19.1 MB).
  AddressPlan plan;
  auto e = make_entry(plan, std::string(kMaxNameLength, 'a'), key_of(1), kMaxV4Index);
  e.reflexive = ep("[2001:db8::1]:1");
  e.local_endpoints.assign(kMaxLocalEndpoints, ep("[2001:db8::2]:2"));
  ASSERT_TRUE(validate_entry(plan, e));
  RosterDelta d;
  d.added = {e};
  EXPECT_EQ(encode_delta(d).size(), kRosterHeaderSize + 12 + 292);
}

TEST(RosterWire, EveryTruncationIsRefused) {
  AddressPlan plan;
  RosterDelta d;
  d.to_version = 1;
  d.added = {node(plan, 1)};
  d.removed = {key_of(2)};
  auto bytes = encode_delta(d);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = decode_delta(ConstBytes(bytes.data(), n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.code(), EBADMSG);
  }
}

TEST(RosterWire, EachMalformationHasItsError) {
  AddressPlan plan;
  RosterDelta d;
  d.to_version = 1;
  auto e = make_entry(plan, "ab", key_of(1));
  e.reflexive = ep("192.0.2.1:7");
  d.added = {e};
  const auto good = encode_delta(d);
  ASSERT_TRUE(decode_delta(good));
  // Offsets in `good`: header 22, added count 22..25, entry at 26: key 26..57, name length 58,
  // name 59..60, state 61, index 62..63, v4 64..67, v6 68..83, flags 84, reflexive 85..91
  // (family 85, address 86..89, port 90..91), local count 92; changed count 93, removed 97.
  struct Case {
    const char* text;
    std::function<void(std::vector<std::uint8_t>&)> edit;
  };
  const std::vector<Case> cases = {
      {"magic", [](auto& b) { b[0] = 'X'; }},
      {"format 2", [](auto& b) { b[4] = 2; }},
      {"unknown flags", [](auto& b) { b[5] = 2; }},
      {"at most 65536", [](auto& b) { store_be32(b.data() + 22, 70000); }},
      {"cannot fit", [](auto& b) { store_be32(b.data() + 22, 2); }},
      {"name of 0 bytes", [](auto& b) { b[58] = 0; }},
      {"name of 64 bytes", [](auto& b) { b[58] = 64; }},
      {"unknown state 2", [](auto& b) { b[61] = 2; }},
      {"unknown flags 3", [](auto& b) { b[84] = 3; }},
      {"address family 5", [](auto& b) { b[85] = 5; }},
      {"port 0", [](auto& b) { b[90] = b[91] = 0; }},
      {"9 local endpoints", [](auto& b) { b[92] = 9; }},
      {"removed keys cannot fit", [](auto& b) { store_be32(b.data() + 97, 1); }},
      {"1 bytes after the end", [](auto& b) { b.push_back(0); }},
  };
  for (const auto& c : cases) {
    auto b = good;
    c.edit(b);
    auto r = decode_delta(b);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.code(), EBADMSG) << c.text;
    EXPECT_NE(r.message().find(c.text), std::string::npos) << c.text << ": " << r.message();
  }
}

// The figures of docs/MESH.md ("Roster: size and fan-out"): a 10,000-node snapshot and a
// 1-node delta in the binary format against the same data as JSON (what the control channel
// speaks today), each node with two local candidates (IPv4 LAN, IPv6) and a reflexive one.
TEST(RosterWire, SizesForTenThousandNodes) {
  AddressPlan plan;
  Roster c = coordinator(10000, plan);
  auto snapshot = *c.diff(0);
  const auto bin = encode_delta(snapshot);

  auto endpoint_json = [](const net::Endpoint& e) { return e.to_string(); };
  auto entry_json = [&](const NodeEntry& e) {
    nlohmann::json j = {{"name", e.name},
                        {"public_key", e.key.to_base64()},
                        {"state", e.state == NodeState::kActive ? "active" : "revoked"},
                        {"v4_index", e.v4_index},
                        {"v4", e.v4.to_string()},
                        {"v6", e.v6.to_string()}};
    nlohmann::json local = nlohmann::json::array();
    for (const auto& l : e.local_endpoints)
      local.push_back(endpoint_json(l));
    j["local_endpoints"] = local;
    if (e.reflexive)
      j["reflexive"] = endpoint_json(*e.reflexive);
    return j;
  };
  auto delta_json = [&](const RosterDelta& d) {
    nlohmann::json added = nlohmann::json::array();
    for (const auto& e : d.added)
      added.push_back(entry_json(e));
    nlohmann::json j = {{"version", 1},
                        {"type", "roster"},
                        {"full", d.full},
                        {"from", d.from_version},
                        {"to", d.to_version},
                        {"added", added},
                        {"changed", nlohmann::json::array()},
                        {"removed", nlohmann::json::array()}};
    return j.dump();
  };
  const std::string json = delta_json(snapshot);

  auto moved = *c.find(key_of(5000));
  moved.reflexive = ep("203.0.113.200:50000");
  const std::uint64_t v = c.version();
  ASSERT_TRUE(c.upsert(moved));
  auto td0 = std::chrono::steady_clock::now();
  auto one = *c.diff(v);
  const auto one_bin = encode_delta(one);
  auto td1 = std::chrono::steady_clock::now();
  ASSERT_EQ(one.changed.size(), 1u);
  auto one_as_added = one;
  std::swap(one_as_added.added, one_as_added.changed);
  const std::string one_json = delta_json(one_as_added);

  // Applying a snapshot and a 1-node delta on a node's copy: what a node pays per change.
  Roster n(plan);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(n.apply(*decode_delta(bin)));
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(n.apply(*decode_delta(one_bin)));
  auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(n.nodes(), c.nodes());

  std::printf(
      "roster sizes: 10000-node snapshot binary %zu B, JSON %zu B; 1-node delta binary "
      "%zu B, JSON %zu B; coordinator diff+encode of 1 change %.3f ms; node decode+apply: "
      "snapshot %.1f ms, 1-node delta %.3f ms\n",
      bin.size(), json.size(), one_bin.size(), one_json.size(),
      std::chrono::duration<double, std::milli>(td1 - td0).count(),
      std::chrono::duration<double, std::milli>(t1 - t0).count(),
      std::chrono::duration<double, std::milli>(t2 - t1).count());
  // The bound docs/MESH.md states: at most 100 bytes per node with three candidates.
  EXPECT_LE(bin.size(), 10000u * 100u);
  EXPECT_LT(bin.size() * 2, json.size());
  EXPECT_LT(one_bin.size(), 150u);
}

}  // namespace
}  // namespace warren::mesh
