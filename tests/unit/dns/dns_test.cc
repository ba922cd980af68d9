// The server's tunnel resolver core: a zone of client names and the forwarder (dns/zone.h,
// dns/forwarder.h). Queries and upstream responses are built, and answers read, with ldns.
// The zone's finer points (EDNS, FORMERR, reverse names, 0x20) are also covered through
// mesh names (tests/unit/mesh/names_test.cc), which is the same code.

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dns/forwarder.h"
#include "dns/ldns_cxx.h"
#include "dns/message.h"
#include "dns/zone.h"

namespace warren::dns {
namespace {

using detail::PktPtr;
using namespace std::chrono_literals;

net::IpAddress ip(const char* text) {
  auto a = net::IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a.value_or(net::IpAddress{});
}
net::Endpoint ep(const char* text) {
  auto e = net::Endpoint::parse(text);
  EXPECT_TRUE(e) << text;
  return e.value_or(net::Endpoint{});
}

Response wire_of(const ldns_pkt* p) {
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, p, &size), LDNS_STATUS_OK);
  Response out(wire, wire + size);
  std::free(wire);
  return out;
}

Response query(const std::string& name, ldns_rr_type type = LDNS_RR_TYPE_A,
               std::uint16_t id = 0x1234, ldns_rr_class cls = LDNS_RR_CLASS_IN, int edns_size = 0) {
  PktPtr p(ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), type, cls, LDNS_RD));
  ldns_pkt_set_id(p.get(), id);
  if (edns_size > 0)
    ldns_pkt_set_edns_udp_size(p.get(), static_cast<std::uint16_t>(edns_size));
  return wire_of(p.get());
}

// An upstream's response to `name`/`type` with `records` A records (10.99.x.y) and id `id`.
Response upstream_answer(const std::string& name, std::uint16_t id, int records = 1,
                         ldns_rr_type type = LDNS_RR_TYPE_A) {
  PktPtr p(
      ldns_pkt_query_new(ldns_dname_new_frm_str(name.c_str()), type, LDNS_RR_CLASS_IN, LDNS_RD));
  ldns_pkt_set_id(p.get(), id);
  ldns_pkt_set_qr(p.get(), true);
  ldns_pkt_set_ra(p.get(), true);
  for (int i = 0; i < records; ++i) {
    ldns_rr* rr = nullptr;
    const std::string text =
        name + " 60 IN A 10.99." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    EXPECT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 60, nullptr, nullptr), LDNS_STATUS_OK);
    EXPECT_TRUE(ldns_pkt_push_rr(p.get(), LDNS_SECTION_ANSWER, rr));
  }
  return wire_of(p.get());
}

PktPtr parse(const Response& wire) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, wire.data(), wire.size()), LDNS_STATUS_OK);
  return PktPtr(p);
}

std::vector<std::string> answers(const ldns_pkt* p) {
  std::vector<std::string> out;
  const ldns_rr_list* l = ldns_pkt_answer(p);
  for (std::size_t i = 0; l && i < ldns_rr_list_rr_count(l); ++i) {
    char* s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(l, i), 0));
    out.push_back(s ? s : "");
    std::free(s);
  }
  return out;
}

// Two enrolled clients as the server's zone holds them.
Zone clients_zone() {
  Zone::Options o;
  o.domain = "warren.internal";
  o.reverse_prefixes = {*net::Prefix::parse("10.8.0.0/24"), *net::Prefix::parse("fd00:8::/64")};
  auto z =
      Zone::create(o, {{"alice", {ip("10.8.0.2"), ip("fd00:8::2")}}, {"Bob_2", {ip("10.8.0.3")}}});
  EXPECT_TRUE(z) << z.message();
  return std::move(*z);
}

PktPtr respond(const Zone& z, const Response& q, Transport t = Transport::kUdp) {
  auto a = z.answer(q, t);
  EXPECT_TRUE(a) << a.message();
  if (!a || !std::holds_alternative<Response>(*a)) {
    ADD_FAILURE() << "expected a response";
    return nullptr;
  }
  return parse(std::get<Response>(*a));
}

class FixedRandom : public RandomSource {
 public:
  explicit FixedRandom(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  void fill(std::span<std::uint8_t> out) override {
    for (auto& b : out)
      b = bytes_[i_++ % bytes_.size()];
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t i_ = 0;
};

std::uint16_t id_of(const Response& r) {
  return static_cast<std::uint16_t>(r[0] << 8 | r[1]);
}

const MonoTime t0{};
const Client kAlice{ep("10.8.0.2:40000"), 0, Transport::kUdp};

// --- the zone of client names ------------------------------------------------------------------

TEST(ClientZone, AAndAaaaOfAClient) {
  const Zone z = clients_zone();
  auto p = respond(z, query("alice.warren.internal."));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_EQ(answers(p.get()), std::vector<std::string>{"10.8.0.2"});
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x1234);
  p = respond(z, query("ALICE.Warren.Internal.", LDNS_RR_TYPE_AAAA));
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p.get()), std::vector<std::string>{"fd00:8::2"});
  // A label with '_' (client names may have one) and any case.
  p = respond(z, query("bob_2.warren.internal."));
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p.get()), std::vector<std::string>{"10.8.0.3"});
}

TEST(ClientZone, NoAddressOfTheFamilyIsNoData) {
  auto p = respond(clients_zone(), query("bob_2.warren.internal.", LDNS_RR_TYPE_AAAA));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(answers(p.get()).empty());
  EXPECT_EQ(ldns_pkt_nscount(p.get()), 1);  // the SOA, for negative caching
}

TEST(ClientZone, UnknownNameUnderTheDomainIsNxdomain) {
  for (const char* name : {"carol.warren.internal.", "x.alice.warren.internal."}) {
    auto p = respond(clients_zone(), query(name));
    ASSERT_TRUE(p);
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NXDOMAIN) << name;
    EXPECT_TRUE(ldns_pkt_aa(p.get()));
  }
}

TEST(ClientZone, OtherClassInTheDomainIsRefused) {
  auto p =
      respond(clients_zone(), query("alice.warren.internal.", LDNS_RR_TYPE_A, 9, LDNS_RR_CLASS_CH));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
}

TEST(ClientZone, ReverseNameOfAClient) {
  auto p = respond(clients_zone(), query("3.0.8.10.in-addr.arpa.", LDNS_RR_TYPE_PTR));
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p.get()), std::vector<std::string>{"bob_2.warren.internal."});
}

TEST(ClientZone, OtherNamesAreForwarded) {
  auto a = clients_zone().answer(query("example.org."));
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::holds_alternative<Forward>(*a));
  a = clients_zone().answer(query("1.0.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR));
  ASSERT_TRUE(a);
  EXPECT_TRUE(std::holds_alternative<Forward>(*a));
}

TEST(ClientZone, BadHostsAndDomainsRefusedWithTheReason) {
  Zone::Options o;
  o.domain = "warren.internal";
  auto z = Zone::create(o, {{"a.b", {ip("10.8.0.2")}}});
  ASSERT_FALSE(z);
  EXPECT_NE(z.message().find("\"a.b\" is not a DNS label"), std::string::npos) << z.message();
  z = Zone::create(o, {{"a", {}}, {"A", {}}});
  ASSERT_FALSE(z);
  EXPECT_NE(z.message().find("twice"), std::string::npos) << z.message();
  o.domain = "printers.local";
  o.what = "dns.domain";
  z = Zone::create(o, {});
  ASSERT_FALSE(z);
  EXPECT_EQ(z.message(), "dns.domain \"printers.local\": .local belongs to multicast DNS");
}

// --- messages -----------------------------------------------------------------------------------

TEST(Message, ErrorResponseEchoesIdQuestionAndRd) {
  auto r = error_response(query("x.example.", LDNS_RR_TYPE_MX, 0xBEEF), Rcode::kRefused);
  ASSERT_TRUE(r) << r.message();
  auto p = parse(*r);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0xBEEF);
  EXPECT_TRUE(ldns_pkt_qr(p.get()));
  EXPECT_TRUE(ldns_pkt_rd(p.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
  EXPECT_EQ(ldns_pkt_qdcount(p.get()), 1);
  // A response is never answered (two responders could loop).
  EXPECT_FALSE(error_response(*r, Rcode::kRefused));
  EXPECT_FALSE(error_response(Response(11, 0), Rcode::kRefused));
}

TEST(Message, QuestionIsCanonicalWithTheUdpLimit) {
  auto q = parse_question(query("WwW.Example.ORG.", LDNS_RR_TYPE_AAAA, 7, LDNS_RR_CLASS_IN, 4096));
  ASSERT_TRUE(q) << q.message();
  EXPECT_EQ(q->name, "www.example.org.");
  EXPECT_EQ(q->type, LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(q->id, 7);
  EXPECT_EQ(q->udp_limit, kUdpPayloadSize);  // 4096 capped
  q = parse_question(query("a.example.", LDNS_RR_TYPE_A, 7, LDNS_RR_CLASS_IN, 100));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->udp_limit, kClassicUdpSize);  // below 512 counts as 512
}

// --- the forwarder -------------------------------------------------------------------------------

TEST(Forwarder, FreshRandomIdUpstreamAndTheWayBack) {
  FixedRandom random({0xAB, 0xCD});
  Forwarder f({ep("192.0.2.53:53")}, {}, random);
  auto up = f.forward(query("example.org.", LDNS_RR_TYPE_A, 0x1234), kAlice, t0);
  ASSERT_TRUE(up) << up.message();
  EXPECT_EQ(up->upstream, ep("192.0.2.53:53"));
  EXPECT_EQ(id_of(up->datagram), 0xABCD);  // from the random source, not the client's
  EXPECT_EQ(f.outstanding(), 1u);

  auto back = f.on_response(ep("192.0.2.53:53"), upstream_answer("example.org.", 0xABCD));
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->client, kAlice);
  EXPECT_EQ(id_of(back->response), 0x1234);  // the client's id again
  EXPECT_EQ(answers(parse(back->response).get()), std::vector<std::string>{"10.99.0.1"});
  EXPECT_EQ(f.outstanding(), 0u);
  EXPECT_EQ(f.stats().answered, 1u);
  // A second copy of the answer finds nothing outstanding.
  EXPECT_EQ(f.on_response(ep("192.0.2.53:53"), upstream_answer("example.org.", 0xABCD)).code(),
            ENOENT);
}

TEST(Forwarder, SpoofedResponsesAreRejectedAndTheQueryStaysOutstanding) {
  FixedRandom random({0x00, 0x07});
  Forwarder f({ep("192.0.2.53:53")}, {}, random);
  ASSERT_TRUE(f.forward(query("bank.example."), kAlice, t0));
  // Wrong id.
  EXPECT_EQ(f.on_response(ep("192.0.2.53:53"), upstream_answer("bank.example.", 0x0008)).code(),
            ENOENT);
  // Right id, other sender (address, then port).
  EXPECT_EQ(f.on_response(ep("203.0.113.9:53"), upstream_answer("bank.example.", 7)).code(), EPERM);
  EXPECT_EQ(f.on_response(ep("192.0.2.53:5353"), upstream_answer("bank.example.", 7)).code(),
            EPERM);
  // Right id and sender, other question (a poisoning attempt for another name).
  EXPECT_EQ(f.on_response(ep("192.0.2.53:53"), upstream_answer("evil.example.", 7)).code(), EPERM);
  EXPECT_EQ(
      f.on_response(ep("192.0.2.53:53"), upstream_answer("bank.example.", 7, 1, LDNS_RR_TYPE_AAAA))
          .code(),
      EPERM);
  // A query (QR clear) with the right id is not a response.
  EXPECT_EQ(f.on_response(ep("192.0.2.53:53"), query("bank.example.", LDNS_RR_TYPE_A, 7)).code(),
            EBADMSG);
  EXPECT_EQ(f.stats().mismatched, 6u);
  EXPECT_EQ(f.outstanding(), 1u);
  // The real answer still gets through; the 0x20 case of the name does not matter.
  auto back = f.on_response(ep("192.0.2.53:53"), upstream_answer("BANK.example.", 7));
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(id_of(back->response), 0x1234);
}

TEST(Forwarder, TimeoutTriesTheNextUpstreamThenServfail) {
  FixedRandom random({0x00, 0x01, 0x00, 0x02});
  ForwarderOptions o;
  o.timeout = 1s;
  Forwarder f({ep("192.0.2.1:53"), ep("192.0.2.2:53")}, o, random);
  auto up = f.forward(query("slow.example.", LDNS_RR_TYPE_A, 0x4444), kAlice, t0);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->upstream, ep("192.0.2.1:53"));
  EXPECT_EQ(f.next_deadline(), t0 + 1s);
  auto e = f.expire(t0 + 999ms);
  EXPECT_TRUE(e.resend.empty() && e.failed.empty());

  e = f.expire(t0 + 1s);
  ASSERT_EQ(e.resend.size(), 1u);
  EXPECT_TRUE(e.failed.empty());
  EXPECT_EQ(e.resend[0].upstream, ep("192.0.2.2:53"));
  EXPECT_EQ(id_of(e.resend[0].datagram), 2);  // a new id for the new attempt
  // The first upstream's late answer no longer counts (its id is gone).
  EXPECT_FALSE(f.on_response(ep("192.0.2.1:53"), upstream_answer("slow.example.", 1)));

  e = f.expire(t0 + 2s);
  EXPECT_TRUE(e.resend.empty());
  ASSERT_EQ(e.failed.size(), 1u);
  EXPECT_EQ(e.failed[0].client, kAlice);
  auto p = parse(e.failed[0].response);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x4444);
  EXPECT_EQ(f.outstanding(), 0u);
  EXPECT_EQ(f.next_deadline(), kNoDeadline);
  EXPECT_EQ(f.stats().timed_out, 1u);
}

TEST(Forwarder, TableIsBounded) {
  FixedRandom random({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  ForwarderOptions o;
  o.max_outstanding = 3;
  Forwarder f({ep("192.0.2.1:53")}, o, random);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(f.forward(query("n" + std::to_string(i) + ".example."), kAlice, t0));
  auto full = f.forward(query("n3.example."), kAlice, t0);
  EXPECT_EQ(full.code(), EAGAIN);
  EXPECT_EQ(f.outstanding(), 3u);
  EXPECT_EQ(f.stats().table_full, 1u);
}

TEST(Forwarder, NoUpstreamsOrNoQuestion) {
  FixedRandom random({1});
  Forwarder f({}, {}, random);
  EXPECT_EQ(f.forward(query("a.example."), kAlice, t0).code(), ENETUNREACH);
  f.set_upstreams({ep("192.0.2.1:53")});
  EXPECT_EQ(f.forward(Response(12, 0), kAlice, t0).code(), EBADMSG);  // qdcount 0
}

TEST(Forwarder, LongUdpAnswerIsTruncatedTcpIsNot) {
  FixedRandom random({0x10, 0x01, 0x10, 0x02});
  Forwarder f({ep("192.0.2.1:53")}, {}, random);
  const Response big = upstream_answer("many.example.", 0x1001, 60);  // > 512 bytes
  ASSERT_GT(big.size(), kClassicUdpSize);
  ASSERT_TRUE(f.forward(query("many.example.", LDNS_RR_TYPE_A, 5), kAlice, t0));
  auto back = f.on_response(ep("192.0.2.1:53"), big);
  ASSERT_TRUE(back) << back.message();
  auto p = parse(back->response);
  EXPECT_TRUE(ldns_pkt_tc(p.get()));  // the client retries over TCP
  EXPECT_TRUE(truncated(back->response));
  EXPECT_FALSE(truncated(big));
  // What a TCP retry needs: the upstream that answered and the client's own query.
  EXPECT_EQ(back->upstream, ep("192.0.2.1:53"));
  EXPECT_EQ(back->query, query("many.example.", LDNS_RR_TYPE_A, 5));
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 0);
  EXPECT_EQ(ldns_pkt_id(p.get()), 5);
  EXPECT_LE(back->response.size(), kClassicUdpSize);

  const Client tcp{ep("10.8.0.2:40001"), 77, Transport::kTcp};
  ASSERT_TRUE(f.forward(query("many.example.", LDNS_RR_TYPE_A, 6), tcp, t0));
  Response big2 = upstream_answer("many.example.", 0x1002, 60);
  back = f.on_response(ep("192.0.2.1:53"), big2);
  ASSERT_TRUE(back);
  p = parse(back->response);
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(ldns_pkt_ancount(p.get()), 60);
}

TEST(Forwarder, ClosedConnectionForgotten) {
  FixedRandom random({0x20, 0x01, 0x20, 0x02});
  Forwarder f({ep("192.0.2.1:53")}, {}, random);
  ASSERT_TRUE(f.forward(query("a.example."), Client{ep("10.8.0.2:1"), 5, Transport::kTcp}, t0));
  ASSERT_TRUE(f.forward(query("b.example."), kAlice, t0));
  f.forget_connection(5);
  EXPECT_EQ(f.outstanding(), 1u);
}

// --- rate limit and resolv.conf ----------------------------------------------------------------

TEST(RateLimiter, PerAddressBurstThenRate) {
  RateLimiter r(10, 5);
  const auto a = ip("10.8.0.2"), b = ip("10.8.0.3");
  int allowed = 0;
  for (int i = 0; i < 20; ++i)
    allowed += r.allow(a, t0) ? 1 : 0;
  EXPECT_EQ(allowed, 5);                // the burst
  EXPECT_TRUE(r.allow(b, t0));          // another client is not affected
  EXPECT_FALSE(r.allow(a, t0 + 50ms));  // half a token
  EXPECT_TRUE(r.allow(a, t0 + 100ms));  // one token per 100 ms
}

TEST(RateLimiter, BoundedTable) {
  RateLimiter r(1, 1, 2);
  EXPECT_TRUE(r.allow(ip("10.8.0.2"), t0));
  EXPECT_TRUE(r.allow(ip("10.8.0.3"), t0));
  EXPECT_FALSE(r.allow(ip("10.8.0.4"), t0));  // full, nobody idle
  EXPECT_EQ(r.tracked(), 2u);
  EXPECT_TRUE(r.allow(ip("10.8.0.4"), t0 + 2s));  // the idle ones made room
  EXPECT_LE(r.tracked(), 2u);
}

TEST(ResolvConf, NameserversWithoutOurOwnAddresses) {
  const char* text =
      "# generated\nsearch example.org\nnameserver 192.0.2.53\n"
      "nameserver\t10.8.0.1  # the tunnel resolver itself\n"
      "nameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver 192.0.2.53\n"
      "nameservers 192.0.2.99\noptions edns0\n nameserver 127.0.0.53\n";
  auto u = upstreams_from_resolv_conf(text, {ip("10.8.0.1"), ip("fd00:8::1")});
  EXPECT_EQ(u, (std::vector<net::Endpoint>{ep("192.0.2.53:53"), ep("[2001:db8::53]:53"),
                                           ep("127.0.0.53:53")}));
  EXPECT_TRUE(upstreams_from_resolv_conf("nameserver 10.8.0.1\n", {ip("10.8.0.1")}).empty());
}

}  // namespace
}  // namespace warren::dns
