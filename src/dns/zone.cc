// A local zone: one DNS query in, one response (or Forward) out (see zone.h).
//
//   bytes ─► header check (12 bytes, QR clear) ─► ldns_wire2pkt ─┬─ fails ─► FORMERR (id, opcode,
//                                                                │           RD from the header)
//                                                                ▼
//   opcode QUERY? one question? nothing in answer/authority? one OPT at most?
//     ─► EDNS version 0? ─► reverse name in the reverse prefixes? ─► PTR / NXDOMAIN / no data
//                        └► under the domain? ─ no ─► Forward
//                             └─ class IN/ANY? ─► apex / NAME / deeper ─► records + rcode
//     ─► ldns_pkt2wire ─► longer than the transport allows? ─► truncate_response (TC)
//
// Moved here from mesh/names.cc (issue 14: the server's tunnel resolver answers the same way).
// The header fields a FORMERR echoes are read with ldns's own wire macros (LDNS_ID_WIRE & co.),
// never by hand.

#include "dns/zone.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <utility>

#include "dns/ldns_cxx.h"

namespace warren::dns {
namespace {

using namespace detail;

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

// FORMERR for bytes ldns could not parse: only the header can be trusted (and is at least 12
// bytes long, checked by the caller).
Result<Answer> formerr_from_header(ConstBytes q) {
  const std::uint8_t* w = q.data();
  PktPtr r = response_header(LDNS_ID_WIRE(w), LDNS_RD_WIRE(w) != 0, LDNS_CD_WIRE(w) != 0);
  if (!r)
    return Error(ENOMEM, "DNS: out of memory");
  ldns_pkt_set_rcode(r.get(), LDNS_RCODE_FORMERR);
  auto wire = to_wire(r.get(), LDNS_OPCODE_WIRE(w));
  if (!wire)
    return wire.error();
  return Answer(std::move(*wire));
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

RrPtr address_rr(const ldns_rdf* owner, const net::IpAddress& a, std::uint32_t ttl) {
  RrPtr rr(ldns_rr_new_frm_type(a.is_v4() ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA));
  if (!rr)
    return rr;
  // ldns_rr_new_frm_type gives an owner-less record with empty rdata slots for the type.
  ldns_rdf* old_owner = ldns_rr_owner(rr.get());
  ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner));
  if (old_owner)
    ldns_rdf_deep_free(old_owner);
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr.get(), ttl);
  ldns_rdf* data = ldns_rdf_new_frm_data(a.is_v4() ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                         a.is_v4() ? 4 : 16, a.data());
  if (!data)
    return nullptr;
  ldns_rdf* old = ldns_rr_set_rdf(rr.get(), data, 0);
  if (old)
    ldns_rdf_deep_free(old);
  return rr;
}

RrPtr text_rr(const std::string& text, std::uint32_t ttl) {
  ldns_rr* rr = nullptr;
  if (ldns_rr_new_frm_str(&rr, text.c_str(), ttl, nullptr, nullptr) != LDNS_STATUS_OK)
    return nullptr;
  return RrPtr(rr);
}

}  // namespace

bool valid_host_label(std::string_view label) {
  if (label.empty() || label.size() > 63)
    return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

Result<Zone> Zone::create(Options options, std::vector<Host> hosts) {
  auto canonical = canonical_domain(options.domain, options.what);
  if (!canonical)
    return canonical.error();
  Zone z;
  z.domain_ = std::move(*canonical);
  z.serial_ = options.serial;
  z.ttl_ = options.ttl;
  z.reverse_ = std::move(options.reverse_prefixes);
  for (auto& h : hosts) {
    if (!valid_host_label(h.label))
      return Error(EINVAL, "\"" + h.label + "\" is not a DNS label (1 to 63 of A-Z a-z 0-9 - _)");
    std::string l = h.label;
    for (auto& c : l)
      c = lower(c);
    for (const auto& a : h.addresses)
      z.by_address_.emplace(a, l);
    if (!z.by_name_.emplace(l, std::move(h.addresses)).second)
      return Error(EINVAL, "host \"" + h.label + "\" is in the zone twice");
  }
  return z;
}

const std::vector<net::IpAddress>* Zone::find(std::string_view label) const {
  std::string l(label);
  for (auto& c : l)
    c = lower(c);
  auto it = by_name_.find(l);
  return it == by_name_.end() ? nullptr : &it->second;
}

Result<Answer> Zone::answer(ConstBytes query, Transport transport) const {
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
    return Error(ENOMEM, "DNS: out of memory");

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
  auto finish = [&](std::uint8_t rcode) -> Result<Answer> {
    ldns_pkt_set_rcode(r.get(), rcode);
    auto wire = to_wire(r.get(), opcode);
    if (!wire)
      return wire.error();
    std::size_t udp_limit = kClassicUdpSize;
    if (edns) {  // RFC 6891 §6.2.5: sizes below 512 count as 512
      udp_limit = std::clamp<std::size_t>(ldns_pkt_edns_udp_size(q.get()), kClassicUdpSize,
                                          kUdpPayloadSize);
    }
    const std::size_t limit = response_limit(transport, udp_limit);
    if (wire->size() > limit) {
      auto cut = truncate_response(*wire);
      if (!cut)
        return cut.error();
      return Answer(std::move(*cut));
    }
    return Answer(std::move(*wire));
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
    return Error(ENOMEM, "DNS: out of memory");
  ldns_dname2canonical(qname.get());  // lower case: DNS names compare case-insensitively
  const ldns_rr_type qtype = ldns_rr_get_type(question);
  const ldns_rr_class qclass = ldns_rr_get_class(question);
  const bool class_ok = qclass == LDNS_RR_CLASS_IN || qclass == LDNS_RR_CLASS_ANY;
  const bool want_any = qtype == LDNS_RR_TYPE_ANY;

  // Reverse names of mesh addresses: authoritative here; every other reverse name is the
  // upstream's.
  if (auto a = reverse_address(qname.get());
      a && std::any_of(reverse_.begin(), reverse_.end(),
                       [&](const net::Prefix& p) { return p.contains(*a); })) {
    if (!class_ok)
      return finish(LDNS_RCODE_REFUSED);
    ldns_pkt_set_aa(r.get(), true);
    auto it = by_address_.find(*a);
    if (it == by_address_.end())
      return finish(LDNS_RCODE_NXDOMAIN);
    if (qtype == LDNS_RR_TYPE_PTR || want_any) {
      RrPtr ptr(ldns_rr_new_frm_type(LDNS_RR_TYPE_PTR));
      if (!ptr)
        return Error(ENOMEM, "DNS: out of memory");
      ldns_rdf* old_owner = ldns_rr_owner(ptr.get());
      ldns_rr_set_owner(ptr.get(), ldns_rdf_clone(owner));
      if (old_owner)
        ldns_rdf_deep_free(old_owner);
      ldns_rr_set_class(ptr.get(), LDNS_RR_CLASS_IN);
      ldns_rr_set_ttl(ptr.get(), ttl_);
      const std::string target = it->second + "." + domain_ + ".";
      ldns_rdf* old = ldns_rr_set_rdf(ptr.get(), ldns_dname_new_frm_str(target.c_str()), 0);
      if (old)
        ldns_rdf_deep_free(old);
      if (!ldns_rr_rdf(ptr.get(), 0))
        return Error(ENOMEM, "DNS: out of memory");
      if (auto s = push(r.get(), LDNS_SECTION_ANSWER, std::move(ptr)); !s)
        return s.error();
    }
    return finish(LDNS_RCODE_NOERROR);
  }

  const std::string apex_text = domain_ + ".";
  RdfPtr apex(ldns_dname_new_frm_str(apex_text.c_str()));
  if (!apex)
    return Error(ENOMEM, "DNS: out of memory");
  const bool at_apex = ldns_dname_compare(qname.get(), apex.get()) == 0;
  if (!at_apex && !ldns_dname_is_subdomain(qname.get(), apex.get()))
    return Answer(Forward{});
  if (!class_ok)
    return finish(LDNS_RCODE_REFUSED);

  ldns_pkt_set_aa(r.get(), true);
  // The SOA goes with every negative answer (RFC 2308 §3: its minimum is the negative TTL).
  const std::string soa_text = apex_text + " " + std::to_string(ttl_) + " IN SOA " + apex_text +
                               " hostmaster." + apex_text + " " + std::to_string(serial_) +
                               " 3600 600 86400 " + std::to_string(ttl_);
  auto negative = [&](std::uint8_t rcode) -> Result<Answer> {
    if (auto s = push(r.get(), LDNS_SECTION_AUTHORITY, text_rr(soa_text, ttl_)); !s)
      return s.error();
    return finish(rcode);
  };

  if (at_apex) {
    if (qtype == LDNS_RR_TYPE_SOA || want_any) {
      if (auto s = push(r.get(), LDNS_SECTION_ANSWER, text_rr(soa_text, ttl_)); !s)
        return s.error();
      return finish(LDNS_RCODE_NOERROR);
    }
    return negative(LDNS_RCODE_NOERROR);
  }
  if (ldns_dname_label_count(qname.get()) != ldns_dname_label_count(apex.get()) + 1)
    return negative(LDNS_RCODE_NXDOMAIN);  // nothing lives deeper than NAME.<domain>
  // Raw label bytes (already lower case): a label holding '.' or other bytes never matches a
  // host name, which is a plain DNS label.
  auto it = by_name_.find(label_at(qname.get(), 0));
  if (it == by_name_.end())
    return negative(LDNS_RCODE_NXDOMAIN);
  bool any = false;
  for (const net::IpAddress& addr : it->second) {
    const bool wanted =
        want_any || (addr.is_v4() ? qtype == LDNS_RR_TYPE_A : qtype == LDNS_RR_TYPE_AAAA);
    if (!wanted)
      continue;
    if (auto s = push(r.get(), LDNS_SECTION_ANSWER, address_rr(owner, addr, ttl_)); !s)
      return s.error();
    any = true;
  }
  if (!any)
    return negative(LDNS_RCODE_NOERROR);
  return finish(LDNS_RCODE_NOERROR);
}

}  // namespace warren::dns
