#include "mesh/names.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "crypto/blake2s.h"
#include "dns/ldns_cxx.h"

namespace warren::mesh {
namespace {

// Queries are built and responses read with ldns, the library the responder uses; a few are
// literal bytes (a classic RD query as dig sends it, and malformed ones no library would write).

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

crypto::PublicKey key_of(std::uint32_t i) {
  std::uint8_t seed[4];
  store_be32(seed, i);
  crypto::PublicKey k;
  crypto::blake2s_hash({crypto::ByteView(seed, 4)}, k.bytes);
  return k;
}

net::IpAddress ip(const char* text) {
  auto a = net::IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(net::IpAddress{});
}

// Nodes node-1, node-2 (active) and gone-3 (revoked): version 4.
Roster roster() {
  Roster r;
  for (std::uint32_t i = 1; i <= 2; ++i)
    EXPECT_TRUE(r.upsert(make_entry(r.plan(), "node-" + std::to_string(i), key_of(i))));
  EXPECT_TRUE(r.upsert(make_entry(r.plan(), "gone-3", key_of(3))));
  EXPECT_TRUE(r.revoke(key_of(3)));
  return r;
}

const NodeEntry& entry(const Roster& r, std::uint32_t i) {
  return *r.find(key_of(i));
}

struct QueryOptions {
  ldns_rr_type type = LDNS_RR_TYPE_A;
  ldns_rr_class cls = LDNS_RR_CLASS_IN;
  std::uint16_t id = 0x4242;
  bool edns = false;
  std::uint16_t edns_size = 4096;
  bool edns_do = false;
  std::uint8_t edns_version = 0;
  ldns_pkt_opcode opcode = LDNS_PACKET_QUERY;
};

std::vector<std::uint8_t> query(const std::string& name, QueryOptions o = {}) {
  ldns_rdf* dname = ldns_dname_new_frm_str(name.c_str());
  EXPECT_NE(dname, nullptr) << name;
  PktPtr p(ldns_pkt_query_new(dname, o.type, o.cls, LDNS_RD));
  ldns_pkt_set_id(p.get(), o.id);
  ldns_pkt_set_opcode(p.get(), o.opcode);
  if (o.edns) {
    ldns_pkt_set_edns_udp_size(p.get(), o.edns_size);
    ldns_pkt_set_edns_do(p.get(), o.edns_do);
    ldns_pkt_set_edns_version(p.get(), o.edns_version);
  }
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, p.get(), &size), LDNS_STATUS_OK);
  std::vector<std::uint8_t> out(wire, wire + size);
  std::free(wire);
  return out;
}

PktPtr parse(const std::vector<std::uint8_t>& wire) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, wire.data(), wire.size()), LDNS_STATUS_OK);
  return PktPtr(p);
}

// The response to `q`, parsed; fails the test on Forward or an error.
PktPtr respond(const NameTable& t, const std::vector<std::uint8_t>& q,
               DnsTransport transport = DnsTransport::kUdp, std::size_t* size = nullptr) {
  auto a = t.answer(q, transport);
  EXPECT_TRUE(a) << a.message();
  if (!a || !std::holds_alternative<DnsResponse>(*a)) {
    ADD_FAILURE() << "expected a response, got Forward or an error";
    return nullptr;
  }
  const auto& wire = std::get<DnsResponse>(*a);
  if (size)
    *size = wire.size();
  return parse(wire);
}

std::string str(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

std::vector<std::string> records(const ldns_rr_list* list) {
  std::vector<std::string> out;
  for (std::size_t i = 0; list && i < ldns_rr_list_rr_count(list); ++i) {
    char* s = ldns_rr2str(ldns_rr_list_rr(list, i));
    std::string line = s ? s : "";
    std::free(s);
    while (!line.empty() && line.back() == '\n')
      line.pop_back();
    out.push_back(line);
  }
  return out;
}

std::string tabbed(std::string s) {
  for (auto& c : s)
    if (c == ' ')
      c = '\t';
  return s;
}

NameTable table(const Roster& r, std::string_view domain = kDefaultMeshDomain) {
  auto t = NameTable::create(r, domain);
  EXPECT_TRUE(t) << t.message();
  return *t;
}

// --- the fixed responder addresses ------------------------------------------------------------

TEST(MeshDnsAddress, DefaultsAndConfiguredPrefixes) {
  EXPECT_EQ(AddressPlan().dns_v4(), ip("100.64.0.1"));
  EXPECT_EQ(AddressPlan().dns_v6(), ip("200::53"));
  auto p = AddressPlan::create(*net::Prefix::parse("10.99.1.7/24"),
                               *net::Prefix::parse("fd12:3456:7890::/48"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->dns_v4(), ip("10.99.1.1"));
  EXPECT_EQ(p->dns_v6(), ip("fd12:3456:7890::53"));
}

TEST(MeshDnsAddress, NeverANodesAddress) {
  // In a /30 there are four host values; nodes only ever get 2 and 3, so the responder's 1 is
  // free whatever the keys. (Over many identities every reachable value shows up.)
  auto p = AddressPlan::create(*net::Prefix::parse("10.0.0.0/30"), *net::Prefix::parse("200::/7"));
  ASSERT_TRUE(p);
  std::set<net::IpAddress> seen;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    const auto a = p->v4(key_of(i).to_base64(), i % 5);
    EXPECT_NE(a, p->dns_v4());
    seen.insert(a);
  }
  EXPECT_EQ(seen, (std::set<net::IpAddress>{ip("10.0.0.2"), ip("10.0.0.3")}));
  const Roster r = roster();
  for (const auto& [k, e] : r.nodes())
    EXPECT_NE(e.v6, r.plan().dns_v6());
}

// --- the domain -------------------------------------------------------------------------------

TEST(MeshDomain, Canonical) {
  EXPECT_EQ(*canonical_mesh_domain("warren"), "warren");
  EXPECT_EQ(*canonical_mesh_domain("Mesh.Example.COM."), "mesh.example.com");
  EXPECT_EQ(*canonical_mesh_domain("a-1.b2"), "a-1.b2");
  EXPECT_EQ(*canonical_mesh_domain(std::string(63, 'a') + "." + std::string(63, 'b') + "." +
                                   std::string(61, 'c')),
            std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(61, 'c'));
}

TEST(MeshDomain, RefusedWithTheRule) {
  struct Case {
    std::string domain;
    const char* says;
  };
  const Case cases[] = {
      {"", "empty"},
      {".", "empty"},
      {"a..b", "1 to 63"},
      {".warren", "1 to 63"},
      {std::string(64, 'a'), "1 to 63"},
      {std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(62, 'c'),
       "longer than 189"},
      {"-warren", "'-'"},
      {"warren-.x", "'-'"},
      {"war ren", "only letters"},
      {"war_ren", "only letters"},
      {"wärren", "only letters"},
      {"local", "multicast"},
      {"mesh.LOCAL.", "multicast"},
      {"in-addr.arpa", "infrastructure"},
      {"arpa", "infrastructure"},
  };
  for (const auto& c : cases) {
    auto d = canonical_mesh_domain(c.domain);
    ASSERT_FALSE(d) << c.domain;
    EXPECT_EQ(d.code(), EINVAL);
    EXPECT_NE(d.message().find(c.says), std::string::npos) << c.domain << ": " << d.message();
  }
  // "notlocal" and "arpanet" are not under .local / .arpa.
  EXPECT_TRUE(canonical_mesh_domain("notlocal"));
  EXPECT_TRUE(canonical_mesh_domain("arpanet"));
  EXPECT_EQ(NameTable::create(Roster(), "bad domain").code(), EINVAL);
}

// --- the table --------------------------------------------------------------------------------

TEST(NameTable, ActiveNodesOnly) {
  const Roster r = roster();
  const NameTable t = table(r);
  EXPECT_EQ(t.size(), 2u);
  ASSERT_TRUE(t.find("node-1"));
  EXPECT_EQ(t.find("NODE-1")->v4, entry(r, 1).v4);
  EXPECT_EQ(t.find("node-2")->v6, entry(r, 2).v6);
  EXPECT_FALSE(t.find("gone-3"));
  EXPECT_FALSE(t.find("node-3"));
}

TEST(NameTable, TenThousandNodes) {
  // The design point: every node answers for all of them. Prints the build time (MESH.md).
  Roster r;
  std::set<net::IpAddress> taken;
  for (std::uint32_t i = 1; i <= 10000; ++i) {
    auto e = make_entry(r.plan(), "n" + std::to_string(i), key_of(i));
    auto a = r.plan().assign_v4(e.key.to_base64(),
                                [&](const net::IpAddress& x) { return taken.contains(x); });
    ASSERT_TRUE(a);
    e.v4 = a->address;
    e.v4_index = a->index;
    taken.insert(e.v4);
    ASSERT_TRUE(r.upsert(e));
  }
  const auto start = std::chrono::steady_clock::now();
  const NameTable t = table(r);
  const auto built = std::chrono::steady_clock::now();
  EXPECT_EQ(t.size(), 10000u);
  for (std::uint32_t i = 1; i <= 10000; i += 997) {
    auto p = respond(t, query("N" + std::to_string(i) + ".warren."));
    ASSERT_TRUE(p);
    ASSERT_EQ(ldns_pkt_ancount(p.get()), 1);
    EXPECT_EQ(str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0), 0)),
              r.find(key_of(i))->v4.to_string());
  }
  const auto q = query("n5000.warren.");
  const auto a0 = std::chrono::steady_clock::now();
  for (int k = 0; k < 1000; ++k)
    ASSERT_TRUE(t.answer(q));
  const auto a1 = std::chrono::steady_clock::now();
  std::printf("NameTable of 10,000 nodes: built in %.2f ms; one answer %.2f us\n",
              std::chrono::duration<double, std::milli>(built - start).count(),
              std::chrono::duration<double, std::micro>(a1 - a0).count() / 1000);
}

// --- answers ----------------------------------------------------------------------------------

TEST(NamesAnswer, AOfANode) {
  const Roster r = roster();
  const NameTable t = table(r);
  auto p = respond(t, query("node-1.warren."));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x4242);
  EXPECT_TRUE(ldns_pkt_qr(p.get()));
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_TRUE(ldns_pkt_rd(p.get()));
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(records(ldns_pkt_question(p.get())),
            std::vector<std::string>{tabbed("node-1.warren. IN A")});
  EXPECT_EQ(
      records(ldns_pkt_answer(p.get())),
      std::vector<std::string>{tabbed("node-1.warren. 30 IN A " + entry(r, 1).v4.to_string())});
  EXPECT_EQ(ldns_pkt_nscount(p.get()), 0);
  EXPECT_FALSE(ldns_pkt_edns(p.get()));  // no OPT in the query, none in the response
}

TEST(NamesAnswer, AaaaAndAny) {
  const Roster r = roster();
  const NameTable t = table(r);
  auto p = respond(t, query("node-2.warren", {.type = LDNS_RR_TYPE_AAAA}));
  ASSERT_TRUE(p);
  EXPECT_EQ(
      records(ldns_pkt_answer(p.get())),
      std::vector<std::string>{tabbed("node-2.warren. 30 IN AAAA " + entry(r, 2).v6.to_string())});
  p = respond(t, query("node-2.warren", {.type = LDNS_RR_TYPE_ANY}));
  ASSERT_TRUE(p);
  EXPECT_EQ(records(ldns_pkt_answer(p.get())),
            (std::vector<std::string>{
                tabbed("node-2.warren. 30 IN A " + entry(r, 2).v4.to_string()),
                tabbed("node-2.warren. 30 IN AAAA " + entry(r, 2).v6.to_string())}));
}

TEST(NamesAnswer, CaseInsensitiveAndQuestionEchoedAsSent) {
  const Roster r = roster();
  const NameTable t = table(r);
  auto p = respond(t, query("NoDe-1.WaRReN."));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p.get()), 0))), "NoDe-1.WaRReN.");
  ASSERT_EQ(ldns_pkt_ancount(p.get()), 1);
  EXPECT_EQ(str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0), 0)),
            entry(r, 1).v4.to_string());
}

TEST(NamesAnswer, LiteralClassicQuery) {
  // id 0x1234, RD, one question node-1.warren A IN, no EDNS: the bytes `dig +noedns` sends.
  const std::vector<std::uint8_t> q = {
      0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 6,    'n',  'o', 'd',
      'e',  '-',  '1',  6,    'w',  'a',  'r',  'r',  'e',  'n',  0,    0x00, 0x01, 0x00, 0x01};
  const Roster r = roster();
  auto a = table(r).answer(q);
  ASSERT_TRUE(a);
  const auto& wire = std::get<DnsResponse>(*a);
  // Header: same id; QR AA RD RA, NOERROR; 1 question, 1 answer.
  ASSERT_GE(wire.size(), 12u);
  EXPECT_EQ(std::vector<std::uint8_t>(wire.begin(), wire.begin() + 12),
            (std::vector<std::uint8_t>{0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}));
  // The answer's owner is compressed to the question's name (offset 12), and the whole
  // response is 31 + 16 bytes.
  EXPECT_EQ(wire.size(), q.size() + 16);
  EXPECT_EQ(wire[q.size()], 0xC0);
  EXPECT_EQ(wire[q.size() + 1], 12);
}

TEST(NamesAnswer, NxdomainForUnknownAndRevokedAndDeeperNames) {
  const Roster r = roster();
  const NameTable t = table(r);
  for (const char* name : {"nobody.warren.", "gone-3.warren.", "x.node-1.warren.", "a.b.c.warren.",
                           "node\\.1.warren."}) {
    auto p = respond(t, query(name));
    ASSERT_TRUE(p) << name;
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NXDOMAIN) << name;
    EXPECT_TRUE(ldns_pkt_aa(p.get())) << name;
    EXPECT_EQ(ldns_pkt_ancount(p.get()), 0) << name;
    // The SOA for negative caching, serial = roster version, minimum = the TTL.
    EXPECT_EQ(records(ldns_pkt_authority(p.get())),
              std::vector<std::string>{"warren.\t30\tIN\tSOA\twarren. hostmaster.warren. " +
                                       std::to_string(r.version()) + " 3600 600 86400 30"})
        << name;
  }
}

TEST(NamesAnswer, NoDataForOtherTypes) {
  const NameTable t = table(roster());
  for (auto type : {LDNS_RR_TYPE_MX, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_SOA, LDNS_RR_TYPE_HTTPS}) {
    auto p = respond(t, query("node-1.warren.", {.type = type}));
    ASSERT_TRUE(p);
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR) << type;
    EXPECT_TRUE(ldns_pkt_aa(p.get()));
    EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
    EXPECT_EQ(ldns_pkt_nscount(p.get()), 1);  // the SOA
  }
}

TEST(NamesAnswer, Apex) {
  const Roster r = roster();
  const NameTable t = table(r);
  auto p = respond(t, query("WARREN.", {.type = LDNS_RR_TYPE_SOA}));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  ASSERT_EQ(ldns_pkt_ancount(p.get()), 1);
  EXPECT_EQ(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0)), LDNS_RR_TYPE_SOA);
  p = respond(t, query("warren.", {.type = LDNS_RR_TYPE_A}));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);  // exists, no A
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
  EXPECT_EQ(ldns_pkt_nscount(p.get()), 1);
}

TEST(NamesAnswer, ForwardOutsideTheDomain) {
  const NameTable t = table(roster());
  for (const char* name :
       {"example.com.", "node-1.warren.com.", "warrennet.", "nwarren.", ".", "node-1.", "com."}) {
    auto a = t.answer(query(name));
    ASSERT_TRUE(a) << name;
    EXPECT_TRUE(std::holds_alternative<Forward>(*a)) << name;
  }
  // Other classes outside the domain too (e.g. CH version.bind): the upstream's business.
  auto a = t.answer(query("version.bind.", {.type = LDNS_RR_TYPE_TXT, .cls = LDNS_RR_CLASS_CH}));
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::holds_alternative<Forward>(*a));
}

TEST(NamesAnswer, ConfiguredDomain) {
  const Roster r = roster();
  const NameTable t = table(r, "Mesh.Example.COM.");
  EXPECT_EQ(t.domain(), "mesh.example.com");
  auto p = respond(t, query("node-1.mesh.example.com."));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 1);
  auto a = t.answer(query("node-1.warren."));
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::holds_alternative<Forward>(*a));
  a = t.answer(query("node-1.example.com."));  // the parent is not the mesh's
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::holds_alternative<Forward>(*a));
}

TEST(NamesAnswer, OtherClassInTheDomainRefused) {
  const NameTable t = table(roster());
  auto p = respond(t, query("node-1.warren.", {.cls = LDNS_RR_CLASS_CH}));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
  p = respond(t, query("node-1.warren.", {.cls = LDNS_RR_CLASS_ANY}));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 1);  // ANY is served as IN
}

TEST(NamesAnswer, ReverseNames) {
  const Roster r = roster();
  const NameTable t = table(r);
  auto reverse = [](const net::IpAddress& a) {
    ldns_rdf* rdf = ldns_rdf_new_frm_data(a.is_v4() ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                          a.is_v4() ? 4 : 16, a.data());
    ldns_rdf* rev = ldns_rdf_address_reverse(rdf);
    std::string s = str(rev);
    ldns_rdf_deep_free(rdf);
    ldns_rdf_deep_free(rev);
    return s;
  };
  for (const auto& a : {entry(r, 1).v4, entry(r, 1).v6}) {
    std::string name = reverse(a);
    for (auto& c : name)  // case does not matter for the hex nibbles either
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto p = respond(t, query(name, {.type = LDNS_RR_TYPE_PTR}));
    ASSERT_TRUE(p) << name;
    EXPECT_TRUE(ldns_pkt_aa(p.get()));
    ASSERT_EQ(ldns_pkt_ancount(p.get()), 1) << name;
    EXPECT_EQ(str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0), 0)), "node-1.warren.");
  }
  // A mesh address nobody has: NXDOMAIN here, not a leak to the upstream resolvers.
  for (const char* a : {"100.64.0.1", "100.127.255.255", "2ff::1"}) {
    auto p = respond(t, query(reverse(ip(a)), {.type = LDNS_RR_TYPE_PTR}));
    ASSERT_TRUE(p) << a;
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NXDOMAIN) << a;
  }
  // Outside the prefixes, partial or malformed reverse names: the upstream's.
  for (std::string name :
       {reverse(ip("100.128.0.1")), reverse(ip("192.0.2.1")), reverse(ip("2001:db8::1")),
        std::string("64.100.in-addr.arpa."), std::string("064.64.64.100.in-addr.arpa."),
        std::string("1.64.64.300.in-addr.arpa."), std::string("x.64.64.100.in-addr.arpa.")}) {
    auto a = t.answer(query(name, {.type = LDNS_RR_TYPE_PTR}));
    ASSERT_TRUE(a) << name;
    EXPECT_TRUE(std::holds_alternative<Forward>(*a)) << name;
  }
  // A known address asked for another type: no data.
  auto p = respond(t, query(reverse(entry(r, 2).v4), {.type = LDNS_RR_TYPE_A}));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
}

// --- EDNS and size ----------------------------------------------------------------------------

TEST(NamesEdns, OptEchoedWithOurSizeAndDo) {
  const NameTable t = table(roster());
  auto p = respond(t, query("node-1.warren.", {.edns = true, .edns_size = 4096, .edns_do = true}));
  ASSERT_TRUE(p);
  EXPECT_TRUE(ldns_pkt_edns(p.get()));
  EXPECT_EQ(ldns_pkt_edns_udp_size(p.get()), kUdpPayloadSize);
  EXPECT_TRUE(ldns_pkt_edns_do(p.get()));
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 1);
  p = respond(t, query("node-1.warren.", {.edns = true, .edns_size = 1232}));
  ASSERT_TRUE(p);
  EXPECT_FALSE(ldns_pkt_edns_do(p.get()));
}

TEST(NamesSize, TcpGivesTheSameAnswer) {
  // Nothing today is long enough to be truncated, so both transports give the same bytes.
  const NameTable t = table(roster());
  for (auto type : {LDNS_RR_TYPE_A, LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_MX}) {
    const auto q = query("node-1.warren.", {.type = type});
    auto udp = t.answer(q, DnsTransport::kUdp);
    auto tcp = t.answer(q, DnsTransport::kTcp);
    ASSERT_TRUE(udp && tcp);
    EXPECT_EQ(*udp, *tcp);
  }
}

TEST(NamesEdns, UnknownVersionIsBadvers) {
  const NameTable t = table(roster());
  auto p = respond(t, query("node-1.warren.", {.edns = true, .edns_version = 1}));
  ASSERT_TRUE(p);
  // BADVERS (16) = extended rcode 1 in OPT, 0 in the header; no answer.
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(p.get()), 1);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
}

TEST(NamesSize, WorstCaseResponsesFitClassicUdp) {
  // The longest domain, a 63-byte node name and ANY: the largest answer the table can give.
  // Name compression keeps it far below 512 bytes, so nothing real is truncated.
  const std::string domain =
      std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(61, 'c');
  Roster r;
  const std::string label(63, 'n');
  ASSERT_TRUE(r.upsert(make_entry(r.plan(), label, key_of(9))));
  const NameTable t = table(r, domain);
  for (auto type : {LDNS_RR_TYPE_ANY, LDNS_RR_TYPE_MX}) {
    std::size_t size = 0;
    auto p =
        respond(t, query(label + "." + domain + ".", {.type = type}), DnsTransport::kUdp, &size);
    ASSERT_TRUE(p);
    EXPECT_FALSE(ldns_pkt_tc(p.get()));
    EXPECT_LE(size, kClassicUdpSize);
    EXPECT_GT(size, 255u + 12u);  // the 255-byte question is in it
  }
}

TEST(NamesSize, TruncateKeepsHeaderQuestionAndOpt) {
  // A response larger than 512 bytes (60 A records), as a big answer would be.
  PktPtr big(ldns_pkt_query_new(ldns_dname_new_frm_str("big.warren."), LDNS_RR_TYPE_A,
                                LDNS_RR_CLASS_IN, LDNS_RD));
  ldns_pkt_set_id(big.get(), 7);
  ldns_pkt_set_qr(big.get(), true);
  ldns_pkt_set_aa(big.get(), true);
  ldns_pkt_set_edns_udp_size(big.get(), kUdpPayloadSize);
  for (int i = 0; i < 60; ++i) {
    ldns_rr* rr = nullptr;
    const std::string text = "big.warren. 30 IN A 100.64.0." + std::to_string(i + 2);
    ASSERT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 30, nullptr, nullptr), LDNS_STATUS_OK);
    ASSERT_TRUE(ldns_pkt_push_rr(big.get(), LDNS_SECTION_ANSWER, rr));
  }
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  ASSERT_EQ(ldns_pkt2wire(&wire, big.get(), &size), LDNS_STATUS_OK);
  const std::vector<std::uint8_t> bytes(wire, wire + size);
  std::free(wire);
  ASSERT_GT(bytes.size(), kClassicUdpSize);

  auto cut = truncate_response(bytes);
  ASSERT_TRUE(cut) << cut.message();
  EXPECT_LE(cut->size(), kClassicUdpSize);
  auto p = parse(*cut);
  ASSERT_TRUE(p);
  EXPECT_TRUE(ldns_pkt_tc(p.get()));
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_EQ(ldns_pkt_id(p.get()), 7);
  EXPECT_EQ(records(ldns_pkt_question(p.get())),
            std::vector<std::string>{tabbed("big.warren. IN A")});
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
  EXPECT_TRUE(ldns_pkt_edns(p.get()));

  const std::vector<std::uint8_t> junk = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  EXPECT_EQ(truncate_response(junk).code(), EBADMSG);
}

// --- malformed and unsupported queries --------------------------------------------------------

// A 12-byte header: id 0xBEEF, RD, the given counts.
std::vector<std::uint8_t> header(std::uint16_t qd, std::uint16_t an = 0, std::uint16_t ns = 0,
                                 std::uint16_t ar = 0, std::uint8_t flags1 = 0x01) {
  return {0xBE,
          0xEF,
          flags1,
          0x00,
          static_cast<std::uint8_t>(qd >> 8),
          static_cast<std::uint8_t>(qd),
          static_cast<std::uint8_t>(an >> 8),
          static_cast<std::uint8_t>(an),
          static_cast<std::uint8_t>(ns >> 8),
          static_cast<std::uint8_t>(ns),
          static_cast<std::uint8_t>(ar >> 8),
          static_cast<std::uint8_t>(ar)};
}

std::vector<std::uint8_t> cat(std::vector<std::uint8_t> a, const std::vector<std::uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void expect_formerr(const NameTable& t, const std::vector<std::uint8_t>& q, const char* what) {
  auto p = respond(t, q);
  ASSERT_TRUE(p) << what;
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_FORMERR) << what;
  EXPECT_EQ(ldns_pkt_id(p.get()), 0xBEEF) << what;
  EXPECT_TRUE(ldns_pkt_qr(p.get())) << what;
  EXPECT_TRUE(ldns_pkt_rd(p.get())) << what;
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0) << what;
}

TEST(NamesMalformed, Formerr) {
  const NameTable t = table(roster());
  const std::vector<std::uint8_t> question = {6,   'n', 'o', 'd', 'e', '-', '1', 6, 'w', 'a',
                                              'r', 'r', 'e', 'n', 0,   0,   1,   0, 1};
  expect_formerr(t, header(0), "no question");
  expect_formerr(t, header(1), "question announced, none there");
  expect_formerr(t, cat(header(2), cat(question, question)), "two questions");
  expect_formerr(t, cat(header(1, 1), question), "an answer announced in a query");
  const std::vector<std::uint8_t> opt = {0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};  // 4096, v0
  expect_formerr(t, cat(header(1, 0, 0, 2), cat(question, cat(opt, opt))), "two OPT records");
  {  // one OPT is fine (and the counting above is not off by one)
    auto p = respond(t, cat(header(1, 0, 0, 1), cat(question, opt)));
    ASSERT_TRUE(p);
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
    EXPECT_TRUE(ldns_pkt_edns(p.get()));
  }
  for (std::size_t cut = 1; cut < question.size(); ++cut) {
    const std::vector<std::uint8_t> part(question.begin(), question.begin() + cut);
    expect_formerr(t, cat(header(1), part), ("question cut after " + std::to_string(cut)).c_str());
  }
  // Compression loops: a name pointing at itself, and two pointing at each other.
  expect_formerr(t, cat(header(1), {0xC0, 12, 0, 1, 0, 1}), "pointer to itself");
  expect_formerr(t, cat(header(1), {1, 'a', 0xC0, 16, 1, 'b', 0xC0, 12, 0, 1, 0, 1}),
                 "pointer loop");
  expect_formerr(t, cat(header(1), {0xC0, 200, 0, 1, 0, 1}), "pointer past the end");
  // A label of 64 (not a pointer, not a label length) and a name over 255 bytes.
  expect_formerr(t, cat(header(1), cat({64}, std::vector<std::uint8_t>(70, 'a'))), "label 64");
  std::vector<std::uint8_t> longname;
  for (int i = 0; i < 5; ++i) {
    longname.push_back(63);
    longname.insert(longname.end(), 63, 'x');
  }
  longname.insert(longname.end(), {0, 0, 1, 0, 1});
  expect_formerr(t, cat(header(1), longname), "name longer than 255");
}

TEST(NamesMalformed, NotAQueryIsAnError) {
  const NameTable t = table(roster());
  for (std::size_t n : {0u, 1u, 11u}) {
    const std::vector<std::uint8_t> shorter(n, 0);
    auto a = t.answer(shorter);
    ASSERT_FALSE(a) << n;
    EXPECT_EQ(a.code(), EBADMSG);
    EXPECT_NE(a.message().find("shorter than the 12-byte header"), std::string::npos);
  }
  auto q = query("node-1.warren.");
  q[2] |= 0x80;  // QR: a response
  auto a = t.answer(q);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.code(), EBADMSG);
  EXPECT_NE(a.message().find("response"), std::string::npos);
}

TEST(NamesMalformed, OtherOpcodesNotImplemented) {
  const NameTable t = table(roster());
  for (auto op : {LDNS_PACKET_IQUERY, LDNS_PACKET_STATUS, LDNS_PACKET_NOTIFY, LDNS_PACKET_UPDATE}) {
    auto p = respond(t, query("node-1.warren.", {.opcode = op}));
    ASSERT_TRUE(p) << op;
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOTIMPL) << op;
    EXPECT_EQ(ldns_pkt_get_opcode(p.get()), op);
    EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
  }
  // Undefined opcodes (6..15, which ldns's enum cannot hold) are echoed as numbers. (Opcode 15
  // went through the enum once: undefined behaviour, found by fuzz_mesh under UBSan.)
  for (unsigned op : {6u, 15u}) {
    auto q = query("node-1.warren.");
    LDNS_OPCODE_SET(q.data(), op);
    auto a = t.answer(q);
    ASSERT_TRUE(a) << op;
    const auto& wire = std::get<DnsResponse>(*a);
    ASSERT_GE(wire.size(), 12u);
    EXPECT_EQ(LDNS_OPCODE_WIRE(wire.data()), op);
    EXPECT_EQ(LDNS_RCODE_WIRE(wire.data()), LDNS_RCODE_NOTIMPL);
  }
}

}  // namespace
}  // namespace warren::mesh
