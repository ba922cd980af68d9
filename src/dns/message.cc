// DNS message helpers shared by the zone and the forwarder (see message.h).

#include "dns/message.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "dns/ldns_cxx.h"

namespace warren::dns {
namespace detail {

Status push(ldns_pkt* p, ldns_pkt_section section, RrPtr rr) {
  if (!rr)
    return Error(ENOMEM, "DNS: out of memory building a record");
  if (!ldns_pkt_push_rr(p, section, rr.get()))
    return Error(ENOMEM, "DNS: out of memory adding a record");
  (void)rr.release();
  return ok();
}

// The opcode travels as a number, never as ldns's enum: casting another value to it is
// undefined behaviour in C++ (found by fuzz_mesh).
Result<Response> to_wire(const ldns_pkt* p, unsigned opcode) {
  std::uint8_t* wire = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK || wire == nullptr)
    return Error(ENOMEM, "DNS: cannot write the response");
  std::unique_ptr<std::uint8_t, WireFree> owned(wire);
  if (size < LDNS_HEADER_SIZE)
    return Error(EIO, "DNS: ldns wrote a response shorter than a header");
  LDNS_OPCODE_SET(wire, opcode & 0x0Fu);
  return Response(wire, wire + size);
}

// RA is set: warren's responders offer recursion for every other name through forwarding.
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

}  // namespace detail

using namespace detail;

namespace {
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
}  // namespace

Result<std::string> canonical_domain(std::string_view domain, std::string_view what) {
  const std::string w(what);
  const std::string shown(domain);
  if (!domain.empty() && domain.back() == '.')
    domain.remove_suffix(1);
  if (domain.empty())
    return Error(EINVAL, w + " \"" + shown + "\" is empty");
  if (domain.size() > kMaxDomainLength) {
    return Error(EINVAL, w + " \"" + shown + "\" is longer than " +
                             std::to_string(kMaxDomainLength) +
                             " characters (a host name under it must fit 255 bytes)");
  }
  std::string out;
  std::size_t label = 0;
  for (std::size_t i = 0; i <= domain.size(); ++i) {
    if (i == domain.size() || domain[i] == '.') {
      if (label == 0 || label > 63)
        return Error(EINVAL, w + " \"" + shown + "\": every label must be 1 to 63 characters long");
      if (out[out.size() - label] == '-' || out.back() == '-')
        return Error(EINVAL, w + " \"" + shown + "\": a label may not start or end with '-'");
      if (i < domain.size())
        out += '.';
      label = 0;
      continue;
    }
    const char c = lower(domain[i]);
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
      return Error(EINVAL, w + " \"" + shown + "\": only letters, digits, '-' and '.' are allowed");
    out += c;
    ++label;
  }
  auto is_or_under = [&](std::string_view zone) {
    return out == zone || (out.size() > zone.size() && out.ends_with(zone) &&
                           out[out.size() - zone.size() - 1] == '.');
  };
  if (is_or_under("local"))
    return Error(EINVAL, w + " \"" + shown + "\": .local belongs to multicast DNS");
  if (is_or_under("arpa"))
    return Error(EINVAL, w + " \"" + shown + "\": .arpa is the infrastructure domain");
  return out;
}

Result<Question> parse_question(ConstBytes message) {
  if (message.size() < LDNS_HEADER_SIZE)
    return Error(EBADMSG, "DNS message of " + std::to_string(message.size()) +
                              " bytes is shorter than the 12-byte header");
  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, message.data(), message.size()) != LDNS_STATUS_OK)
    return Error(EBADMSG, "DNS message does not parse");
  PktPtr p(parsed);
  const ldns_rr_list* qs = ldns_pkt_question(p.get());
  if (!qs || ldns_rr_list_rr_count(qs) != 1)
    return Error(EBADMSG, "DNS message has not exactly one question");
  const ldns_rr* q = ldns_rr_list_rr(qs, 0);
  const ldns_rdf* owner = ldns_rr_owner(q);
  if (!owner)
    return Error(EBADMSG, "DNS question has no name");
  RdfPtr name(ldns_rdf_clone(owner));
  if (!name)
    return Error(ENOMEM, "DNS: out of memory");
  ldns_dname2canonical(name.get());
  char* text = ldns_rdf2str(name.get());
  if (!text)
    return Error(ENOMEM, "DNS: out of memory");
  Question out;
  out.name = text;
  std::free(text);
  out.id = ldns_pkt_id(p.get());
  out.type = static_cast<std::uint16_t>(ldns_rr_get_type(q));
  out.klass = static_cast<std::uint16_t>(ldns_rr_get_class(q));
  out.recursion_desired = ldns_pkt_rd(p.get());
  if (ldns_pkt_edns(p.get())) {  // RFC 6891 §6.2.5: sizes below 512 count as 512
    out.udp_limit =
        std::clamp<std::size_t>(ldns_pkt_edns_udp_size(p.get()), kClassicUdpSize, kUdpPayloadSize);
  }
  return out;
}

std::size_t response_limit(Transport transport, std::size_t udp_limit) {
  return transport == Transport::kTcp ? kMaxTcpMessage : udp_limit;
}

Result<Response> truncate_response(ConstBytes response) {
  ldns_pkt* parsed = nullptr;
  if (response.size() < LDNS_HEADER_SIZE ||
      ldns_wire2pkt(&parsed, response.data(), response.size()) != LDNS_STATUS_OK)
    return Error(EBADMSG, "DNS: the response to truncate does not parse");
  PktPtr p(parsed);
  PktPtr r = response_header(ldns_pkt_id(p.get()), ldns_pkt_rd(p.get()), ldns_pkt_cd(p.get()));
  if (!r)
    return Error(ENOMEM, "DNS: out of memory");
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
  return to_wire(r.get(), LDNS_OPCODE_WIRE(response.data()));
}

Result<Response> fit_response(ConstBytes response, std::size_t limit) {
  if (response.size() <= limit)
    return Response(response.begin(), response.end());
  return truncate_response(response);
}

Result<Response> error_response(ConstBytes query, Rcode rcode) {
  if (query.size() < LDNS_HEADER_SIZE)
    return Error(EBADMSG, "DNS query of " + std::to_string(query.size()) +
                              " bytes is shorter than the 12-byte header");
  const std::uint8_t* w = query.data();
  if (LDNS_QR_WIRE(w) != 0)
    return Error(EBADMSG, "DNS message has the QR bit set: a response, not a query");
  PktPtr r = response_header(LDNS_ID_WIRE(w), LDNS_RD_WIRE(w) != 0, LDNS_CD_WIRE(w) != 0);
  if (!r)
    return Error(ENOMEM, "DNS: out of memory");
  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, w, query.size()) == LDNS_STATUS_OK) {
    PktPtr q(parsed);
    const ldns_rr_list* qs = ldns_pkt_question(q.get());
    if (qs && ldns_rr_list_rr_count(qs) == 1) {
      if (auto s =
              push(r.get(), LDNS_SECTION_QUESTION, RrPtr(ldns_rr_clone(ldns_rr_list_rr(qs, 0))));
          !s)
        return s.error();
    }
  }
  ldns_pkt_set_rcode(r.get(), static_cast<std::uint8_t>(rcode));
  return to_wire(r.get(), LDNS_OPCODE_WIRE(w));
}

Result<Response> with_id(ConstBytes message, std::uint16_t id) {
  if (message.size() < LDNS_HEADER_SIZE)
    return Error(EBADMSG, "DNS message of " + std::to_string(message.size()) +
                              " bytes is shorter than the 12-byte header");
  Response out(message.begin(), message.end());
  ldns_write_uint16(out.data(), id);
  return out;
}

}  // namespace warren::dns
