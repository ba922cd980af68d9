// Mesh names: one DNS query in, one response (or Forward) out.
//
//   bytes ─► header check (12 bytes, QR clear) ─► ldns_wire2pkt ─┬─ fails ─► FORMERR (id, opcode,
//                                                                │           RD from the header)
//                                                                ▼
//   opcode QUERY? one question? nothing in answer/authority? one OPT at most?
//     ─► EDNS version 0? ─► reverse name in the mesh prefixes? ─► PTR / NXDOMAIN / no data
//                        └► under the mesh domain? ─ no ─► Forward
//                             └─ class IN/ANY? ─► apex / NAME / deeper ─► records + rcode
//     ─► ldns_pkt2wire ─► longer than the transport allows? ─► truncate_response (TC)
//
// Every ldns object is owned by a unique_ptr with its free function, so an early return on any
// path leaks nothing. The header fields a FORMERR echoes are read with ldns's own wire macros
// (LDNS_ID_WIRE & co.), never by hand.

#include "mesh/names.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <utility>

#include "mesh/ldns_cxx.h"

namespace warren::mesh {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RrFree {
  void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
struct WireFree {
  void operator()(std::uint8_t* p) const { std::free(p); }  // ldns allocates with malloc
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

// Over TCP a message is prefixed by a two-byte length.
constexpr std::size_t kMaxTcpMessage = 65535;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// The raw bytes of label `i` (0 = leftmost) of a dname, as ldns gives it: a one-label dname
// (length byte, label bytes, root).
std::string label_at(const ldns_rdf* dname, std::uint8_t i) {
  RdfPtr l(ldns_dname_label(dname, i));
  if (!l || ldns_rdf_size(l.get()) < 1)
    return {};
  const std::uint8_t* d = ldns_rdf_data(l.get());
  const std::size_t n = d[0];
  if (n + 1 > ldns_rdf_size(l.get()))
    return {};
  return std::string(reinterpret_cast<const char*>(d + 1), n);
}

// Appends `rr` to `section`; ownership passes to the packet.
Status push(ldns_pkt* p, ldns_pkt_section section, RrPtr rr) {
  if (!rr)
    return Error(ENOMEM, "mesh DNS: out of memory building a record");
  if (!ldns_pkt_push_rr(p, section, rr.get()))
    return Error(ENOMEM, "mesh DNS: out of memory adding a record");
  (void)rr.release();
  return ok();
}

// The wire form of `p`, with `opcode` in the header. The opcode travels as a number, never as
// ldns's enum: a query may carry any of the 16 values and the enum holds only the six defined
// ones (casting another to it is undefined behaviour in C++; found by fuzz_mesh).
Result<DnsResponse> to_wire(const ldns_pkt* p, unsigned opcode) {
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK || wire == nullptr)
    return Error(ENOMEM, "mesh DNS: cannot write the response");
  std::unique_ptr<std::uint8_t, WireFree> owned(wire);
  if (size < LDNS_HEADER_SIZE)
    return Error(EIO, "mesh DNS: ldns wrote a response shorter than a header");
  LDNS_OPCODE_SET(wire, opcode & 0x0Fu);
  return DnsResponse(wire, wire + size);
}

// A response skeleton for `query`'s header: id, RD and CD copied, QR set (the opcode is put in
// by to_wire). RA is set: the responder offers recursion for every other name through its
// forwarding.
PktPtr response_header(std::uint16_t id, bool rd, bool cd) {
  PktPtr r(ldns_pkt_new());
  if (!r)
    return r;
  ldns_pkt_set_id(r.get(), id);
  ldns_pkt_set_qr(r.get(), true);
  ldns_pkt_set_rd(r.get(), rd);
  ldns_pkt_set_cd(r.get(), cd);
  ldns_pkt_set_ra(r.get(), true);
  return r;
}

// FORMERR for bytes ldns could not parse: only the header can be trusted (and is at least 12
// bytes long, checked by the caller).
Result<DnsAnswer> formerr_from_header(ConstBytes q) {
  const std::uint8_t* w = q.data();
  PktPtr r = response_header(LDNS_ID_WIRE(w), LDNS_RD_WIRE(w) != 0, LDNS_CD_WIRE(w) != 0);
  if (!r)
    return Error(ENOMEM, "mesh DNS: out of memory");
  ldns_pkt_set_rcode(r.get(), LDNS_RCODE_FORMERR);
  auto wire = to_wire(r.get(), LDNS_OPCODE_WIRE(w));
  if (!wire)
    return wire.error();
  return DnsAnswer(std::move(*wire));
}

// "192.0.2.1" as the dotted-decimal labels of `name` ("1.2.0.192.in-addr.arpa"), or the nibbles
// of an ip6.arpa name, when `name` (canonical, lower case) is a full-length reverse name; else
// nothing. Labels are read through ldns; this only interprets their text.
std::optional<net::IpAddress> reverse_address(const ldns_rdf* name) {
  static const RdfPtr v4_zone(ldns_dname_new_frm_str("in-addr.arpa."));
  static const RdfPtr v6_zone(ldns_dname_new_frm_str("ip6.arpa."));
  const std::uint8_t count = ldns_dname_label_count(name);
  if (count == 6 && ldns_dname_is_subdomain(name, v4_zone.get())) {
    std::array<std::uint8_t, 4> b{};
    for (std::uint8_t i = 0; i < 4; ++i) {
      const std::string l = label_at(name, i);
      if (l.empty() || l.size() > 3 || (l.size() > 1 && l[0] == '0'))
        return std::nullopt;  // "01" is not how an address is written in a reverse name
      unsigned v = 0;
      for (char c : l) {
        if (c < '0' || c > '9')
          return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
      }
      if (v > 255)
        return std::nullopt;
      b[3 - i] = static_cast<std::uint8_t>(v);
    }
    return net::IpAddress::v4(b);
  }
  if (count == 34 && ldns_dname_is_subdomain(name, v6_zone.get())) {
    std::array<std::uint8_t, 16> b{};
    for (std::uint8_t i = 0; i < 32; ++i) {
      const std::string l = label_at(name, i);
      if (l.size() != 1)
        return std::nullopt;
      const char c = l[0];
      unsigned v = 0;
      if (c >= '0' && c <= '9')
        v = static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v = static_cast<unsigned>(c - 'a' + 10);
      else
        return std::nullopt;
      const unsigned nibble = 31u - i;  // label 0 is the lowest nibble
      b[nibble / 2] |= static_cast<std::uint8_t>(nibble % 2 == 0 ? v << 4 : v);
    }
    return net::IpAddress::v6(b);
  }
  return std::nullopt;
}

RrPtr address_rr(const ldns_rdf* owner, const net::IpAddress& a) {
  RrPtr rr(ldns_rr_new_frm_type(a.is_v4() ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA));
  if (!rr)
    return rr;
  // ldns_rr_new_frm_type gives an owner-less record with empty rdata slots for the type.
  ldns_rdf* old_owner = ldns_rr_owner(rr.get());
  ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner));
  if (old_owner)
    ldns_rdf_deep_free(old_owner);
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr.get(), kNamesTtl);
  ldns_rdf* data = ldns_rdf_new_frm_data(a.is_v4() ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                         a.is_v4() ? 4 : 16, a.data());
  if (!data)
    return nullptr;
  ldns_rdf* old = ldns_rr_set_rdf(rr.get(), data, 0);
  if (old)
    ldns_rdf_deep_free(old);
  return rr;
}

RrPtr text_rr(const std::string& text) {
  ldns_rr* rr = nullptr;
  if (ldns_rr_new_frm_str(&rr, text.c_str(), kNamesTtl, nullptr, nullptr) != LDNS_STATUS_OK)
    return nullptr;
  return RrPtr(rr);
}

}  // namespace

Result<std::string> canonical_mesh_domain(std::string_view domain) {
  const std::string shown(domain);
  if (!domain.empty() && domain.back() == '.')
    domain.remove_suffix(1);
  if (domain.empty())
    return Error(EINVAL, "mesh domain \"" + shown + "\" is empty");
  if (domain.size() > kMaxMeshDomainLength) {
    return Error(EINVAL, "mesh domain \"" + shown + "\" is longer than " +
                             std::to_string(kMaxMeshDomainLength) +
                             " characters (a node name under it must fit 255 bytes)");
  }
  std::string out;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      if (label == 0 || label > 63) {
        return Error(EINVAL,
                     "mesh domain \"" + shown + "\": every label must be 1 to 63 characters long");
      }
      if (out[out.size() - label] == '-' || out.back() == '-') {
        return Error(EINVAL,
                     "mesh domain \"" + shown + "\": a label may not start or end with '-'");
      }
      if (i < domain.size())
        out += '.';
      label = 0;
      continue;
    }
    const char c = lower(domain[i]);
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return Error(EINVAL,
                   "mesh domain \"" + shown + "\": only letters, digits, '-' and '.' are allowed");
    }
    out += c;
    ++label;
  }
  auto is_or_under = [&](std::string_view zone) {
    return out == zone || (out.size() > zone.size() && out.ends_with(zone) &&
                           out[out.size() - zone.size() - 1] == '.');
  };
  if (is_or_under("local"))
    return Error(EINVAL, "mesh domain \"" + shown + "\": .local belongs to multicast DNS");
  if (is_or_under("arpa"))
    return Error(EINVAL, "mesh domain \"" + shown + "\": .arpa is the infrastructure domain");
  return out;
}

Result<DnsResponse> truncate_response(ConstBytes response) {
  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, response.data(), response.size()) != LDNS_STATUS_OK)
    return Error(EBADMSG, "mesh DNS: the response to truncate does not parse");
  PktPtr p(parsed);
  PktPtr r = response_header(ldns_pkt_id(p.get()), ldns_pkt_rd(p.get()), ldns_pkt_cd(p.get()));
  if (!r)
    return Error(ENOMEM, "mesh DNS: out of memory");
  ldns_pkt_set_ra(r.get(), ldns_pkt_ra(p.get()));
  ldns_pkt_set_aa(r.get(), ldns_pkt_aa(p.get()));
  ldns_pkt_set_rcode(r.get(), ldns_pkt_get_rcode(p.get()));
  ldns_pkt_set_tc(r.get(), true);
  const ldns_rr_list* q = ldns_pkt_question(p.get());
  for (std::size_t i = 0; q && i < ldns_rr_list_rr_count(q); ++i) {
    if (auto s = push(r.get(), LDNS_SECTION_QUESTION, RrPtr(ldns_rr_clone(ldns_rr_list_rr(q, i))));
        !s)
      return s.error();
  }
  // ldns keeps the OPT record in the packet's EDNS fields, not in the additional section.
  if (ldns_pkt_edns(p.get())) {
    ldns_pkt_set_edns_udp_size(r.get(), ldns_pkt_edns_udp_size(p.get()));
    ldns_pkt_set_edns_extended_rcode(r.get(), ldns_pkt_edns_extended_rcode(p.get()));
    ldns_pkt_set_edns_version(r.get(), ldns_pkt_edns_version(p.get()));
    ldns_pkt_set_edns_z(r.get(), ldns_pkt_edns_z(p.get()));
  }
  return to_wire(r.get(), LDNS_OPCODE_WIRE(response.data()));  // parsed: >= 12 bytes
}

Result<NameTable> NameTable::create(const Roster& roster, std::string_view domain) {
  auto canonical = canonical_mesh_domain(domain);
  if (!canonical)
    return canonical.error();
  NameTable t;
  t.domain_ = std::move(*canonical);
  t.plan_ = roster.plan();
  t.serial_ = static_cast<std::uint32_t>(roster.version());
  for (const auto& [key, e] : roster.nodes()) {
    if (e.state != NodeState::kActive)
      continue;  // revoked: peers drop it, so its name must not lead anywhere either
    t.by_name_.emplace(e.name, Addresses{e.v4, e.v6});
    t.by_address_.emplace(e.v4, e.name);
    t.by_address_.emplace(e.v6, e.name);
  }
  return t;
}

std::optional<NameTable::Addresses> NameTable::find(std::string_view label) const {
  std::string l(label);
  for (auto& c : l)
    c = lower(c);
  auto it = by_name_.find(l);
  if (it == by_name_.end())
    return std::nullopt;
  return it->second;
}

Result<DnsAnswer> NameTable::answer(ConstBytes query, DnsTransport transport) const {
  if (query.size() < LDNS_HEADER_SIZE) {
    return Error(EBADMSG, "DNS query of " + std::to_string(query.size()) +
                              " bytes is shorter than the 12-byte header");
  }
  if (LDNS_QR_WIRE(query.data()) != 0)
    return Error(EBADMSG, "DNS message has the QR bit set: a response, not a query");

  ldns_pkt* parsed = nullptr;
  // ldns sets `parsed` only on success (it frees its half-built packet itself).
  if (ldns_wire2pkt(&parsed, query.data(), query.size()) != LDNS_STATUS_OK)
    return formerr_from_header(query);
  PktPtr q(parsed);
  const unsigned opcode = LDNS_OPCODE_WIRE(query.data());
  PktPtr r = response_header(ldns_pkt_id(q.get()), ldns_pkt_rd(q.get()), ldns_pkt_cd(q.get()));
  if (!r)
    return Error(ENOMEM, "mesh DNS: out of memory");

  const ldns_rr_list* questions = ldns_pkt_question(q.get());
  const std::size_t qdcount = questions ? ldns_rr_list_rr_count(questions) : 0;
  const ldns_rr* question = qdcount == 1 ? ldns_rr_list_rr(questions, 0) : nullptr;
  if (question) {  // echoed in every response below, as it came
    if (auto s = push(r.get(), LDNS_SECTION_QUESTION, RrPtr(ldns_rr_clone(question))); !s)
      return s.error();
  }
  const bool edns = ldns_pkt_edns(q.get());
  if (edns) {
    ldns_pkt_set_edns_udp_size(r.get(), kUdpPayloadSize);
    ldns_pkt_set_edns_do(r.get(), ldns_pkt_edns_do(q.get()));  // RFC 3225 §3: copied
  }
  auto finish = [&](std::uint8_t rcode) -> Result<DnsAnswer> {
    ldns_pkt_set_rcode(r.get(), rcode);
    auto wire = to_wire(r.get(), opcode);
    if (!wire)
      return wire.error();
    std::size_t limit = kMaxTcpMessage;
    if (transport == DnsTransport::kUdp) {
      limit = kClassicUdpSize;
      if (edns) {  // RFC 6891 §6.2.5: sizes below 512 count as 512
        limit = std::clamp<std::size_t>(ldns_pkt_edns_udp_size(q.get()), kClassicUdpSize,
                                        kUdpPayloadSize);
      }
    }
    if (wire->size() > limit) {
      auto cut = truncate_response(*wire);
      if (!cut)
        return cut.error();
      return DnsAnswer(std::move(*cut));
    }
    return DnsAnswer(std::move(*wire));
  };

  if (opcode != LDNS_PACKET_QUERY)
    return finish(LDNS_RCODE_NOTIMPL);
  // A query has exactly one question (RFC 9619) and nothing in the answer or authority
  // sections; the additional section may carry OPT (and records we ignore, such as TSIG,
  // which the mesh does not use).
  if (!question || ldns_pkt_ancount(q.get()) != 0 || ldns_pkt_nscount(q.get()) != 0)
    return finish(LDNS_RCODE_FORMERR);
  // More than one OPT record is FORMERR (RFC 6891 §6.1.1). ldns folds every OPT it reads into
  // the packet's EDNS fields (the last one wins) and leaves them out of the additional count,
  // so the header's count minus what ldns kept is the number of OPT records.
  if (LDNS_ARCOUNT(query.data()) - ldns_pkt_arcount(q.get()) > 1)
    return finish(LDNS_RCODE_FORMERR);
  if (edns && ldns_pkt_edns_version(q.get()) != 0) {
    // BADVERS is 16: extended rcode 1 in the OPT record, 0 in the header (RFC 6891 §6.1.3).
    ldns_pkt_set_edns_extended_rcode(r.get(), 1);
    return finish(LDNS_RCODE_NOERROR);
  }

  const ldns_rdf* owner = ldns_rr_owner(question);
  if (!owner)
    return finish(LDNS_RCODE_FORMERR);
  RdfPtr qname(ldns_rdf_clone(owner));
  if (!qname)
    return Error(ENOMEM, "mesh DNS: out of memory");
  ldns_dname2canonical(qname.get());  // lower case: DNS names compare case-insensitively
  const ldns_rr_type qtype = ldns_rr_get_type(question);
  const ldns_rr_class qclass = ldns_rr_get_class(question);
  const bool class_ok = qclass == LDNS_RR_CLASS_IN || qclass == LDNS_RR_CLASS_ANY;
  const bool want_any = qtype == LDNS_RR_TYPE_ANY;

  // Reverse names of mesh addresses: authoritative here; every other reverse name is the
  // upstream's.
  if (auto a = reverse_address(qname.get());
      a && (plan_.v4_prefix().contains(*a) || plan_.v6_prefix().contains(*a))) {
    if (!class_ok)
      return finish(LDNS_RCODE_REFUSED);
    ldns_pkt_set_aa(r.get(), true);
    auto it = by_address_.find(*a);
    if (it == by_address_.end())
      return finish(LDNS_RCODE_NXDOMAIN);
    if (qtype == LDNS_RR_TYPE_PTR || want_any) {
      RrPtr ptr(ldns_rr_new_frm_type(LDNS_RR_TYPE_PTR));
      if (!ptr)
        return Error(ENOMEM, "mesh DNS: out of memory");
      ldns_rdf* old_owner = ldns_rr_owner(ptr.get());
      ldns_rr_set_owner(ptr.get(), ldns_rdf_clone(owner));
      if (old_owner)
        ldns_rdf_deep_free(old_owner);
      ldns_rr_set_class(ptr.get(), LDNS_RR_CLASS_IN);
      ldns_rr_set_ttl(ptr.get(), kNamesTtl);
      const std::string target = it->second + "." + domain_ + ".";
      ldns_rdf* old = ldns_rr_set_rdf(ptr.get(), ldns_dname_new_frm_str(target.c_str()), 0);
      if (old)
        ldns_rdf_deep_free(old);
      if (!ldns_rr_rdf(ptr.get(), 0))
        return Error(ENOMEM, "mesh DNS: out of memory");
      if (auto s = push(r.get(), LDNS_SECTION_ANSWER, std::move(ptr)); !s)
        return s.error();
    }
    return finish(LDNS_RCODE_NOERROR);
  }

  const std::string apex_text = domain_ + ".";
  RdfPtr apex(ldns_dname_new_frm_str(apex_text.c_str()));
  if (!apex)
    return Error(ENOMEM, "mesh DNS: out of memory");
  const bool at_apex = ldns_dname_compare(qname.get(), apex.get()) == 0;
  if (!at_apex && !ldns_dname_is_subdomain(qname.get(), apex.get()))
    return DnsAnswer(Forward{});
  if (!class_ok)
    return finish(LDNS_RCODE_REFUSED);

  ldns_pkt_set_aa(r.get(), true);
  // The SOA goes with every negative answer (RFC 2308 §3: its minimum is the negative TTL).
  const std::string soa_text =
      apex_text + " " + std::to_string(kNamesTtl) + " IN SOA " + apex_text + " hostmaster." +
      apex_text + " " + std::to_string(serial_) + " 3600 600 86400 " + std::to_string(kNamesTtl);
  auto negative = [&](std::uint8_t rcode) -> Result<DnsAnswer> {
    if (auto s = push(r.get(), LDNS_SECTION_AUTHORITY, text_rr(soa_text)); !s)
      return s.error();
    return finish(rcode);
  };

  if (at_apex) {
    if (qtype == LDNS_RR_TYPE_SOA || want_any) {
      if (auto s = push(r.get(), LDNS_SECTION_ANSWER, text_rr(soa_text)); !s)
        return s.error();
      return finish(LDNS_RCODE_NOERROR);
    }
    return negative(LDNS_RCODE_NOERROR);
  }
  if (ldns_dname_label_count(qname.get()) != ldns_dname_label_count(apex.get()) + 1)
    return negative(LDNS_RCODE_NXDOMAIN);  // nothing lives deeper than NAME.<domain>
  // Raw label bytes (already lower case): a label holding '.' or other bytes never matches a
  // roster name, which is a plain DNS label.
  auto it = by_name_.find(label_at(qname.get(), 0));
  if (it == by_name_.end())
    return negative(LDNS_RCODE_NXDOMAIN);
  bool any = false;
  if (qtype == LDNS_RR_TYPE_A || want_any) {
    if (auto s = push(r.get(), LDNS_SECTION_ANSWER, address_rr(owner, it->second.v4)); !s)
      return s.error();
    any = true;
  }
  if (qtype == LDNS_RR_TYPE_AAAA || want_any) {
    if (auto s = push(r.get(), LDNS_SECTION_ANSWER, address_rr(owner, it->second.v6)); !s)
      return s.error();
    any = true;
  }
  if (!any)
    return negative(LDNS_RCODE_NOERROR);
  return finish(LDNS_RCODE_NOERROR);
}

}  // namespace warren::mesh
