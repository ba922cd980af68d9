// The mesh messages of the settings session (see mesh_session.h).

#include "control/mesh_session.h"

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "control/enroll.h"

namespace warren::control {

using nlohmann::json;

namespace {

json message(std::string_view type) {
  json j;
  j["version"] = kProtocolVersion;
  j["type"] = std::string(type);
  return j;
}

/// The message as a JSON object of this protocol version and `type`, or EPROTO saying why not.
Result<json> open_message(std::string_view text, std::string_view type) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(EPROTO, "the message is not a JSON object");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned() ||
      v->get<std::uint64_t>() != static_cast<std::uint64_t>(kProtocolVersion))
    return Error(EPROTO, "the message is not of protocol version " +
                             std::to_string(kProtocolVersion));
  auto t = j.find("type");
  if (t == j.end() || !t->is_string() || t->get<std::string>() != type)
    return Error(EPROTO, "not a \"" + std::string(type) + "\" message");
  return j;
}

/// Standard padded base64 of any length (base/encoding.h decodes a known length).
std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  std::vector<std::uint8_t> out(text.size() / 4 * 3 - pad);
  if (!from_base64(text, out))
    return std::nullopt;
  return out;
}

Result<net::Endpoint> endpoint_item(const json& v, const std::string& field) {
  if (!v.is_string())
    return Error(EINVAL, "field \"" + field + "\" holds a non-string");
  auto e = net::Endpoint::parse(v.get<std::string>());
  if (!e || e->port == 0)
    return Error(EINVAL, "field \"" + field + "\": \"" + v.get<std::string>() +
                             "\" is not a numeric address:port with a port from 1 to 65535");
  return *e;
}

}  // namespace

std::string session_message_type(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return {};
  auto t = j.find("type");
  return t != j.end() && t->is_string() ? t->get<std::string>() : std::string();
}

// ---- roster ----------------------------------------------------------------------------------

std::string roster_message_to_json(const mesh::RosterDelta& delta) {
  return roster_message_to_json(mesh::encode_delta(delta));
}

std::string roster_message_to_json(ConstBytes encoded_delta) {
  json j = message(kRosterMessageType);
  j["delta"] = to_base64(encoded_delta);
  return j.dump();
}

Result<mesh::RosterDelta> parse_roster_message(std::string_view text) {
  auto j = open_message(text, kRosterMessageType);
  if (!j.ok())
    return j.error();
  auto d = j->find("delta");
  if (d == j->end() || !d->is_string())
    return Error(EINVAL, "field \"delta\" is missing or not a string");
  auto bytes = decode_base64(d->get_ref<const std::string&>());
  if (!bytes)
    return Error(EINVAL, "field \"delta\" is not base64");
  auto delta = mesh::decode_delta(*bytes);
  if (!delta.ok())
    return Error(delta.code(), "field \"delta\": " + delta.message());
  return std::move(*delta);
}

// ---- roster_request ----------------------------------------------------------------------------

std::string roster_request_to_json(const RosterRequest& request) {
  json j = message(kRosterRequestType);
  j["from"] = request.from;
  return j.dump();
}

Result<RosterRequest> parse_roster_request(std::string_view text) {
  auto j = open_message(text, kRosterRequestType);
  if (!j.ok())
    return j.error();
  auto f = j->find("from");
  if (f == j->end() || !f->is_number_unsigned())
    return Error(EINVAL, "field \"from\" is missing or not a roster version (an unsigned number)");
  return RosterRequest{f->get<std::uint64_t>()};
}

// ---- endpoints ---------------------------------------------------------------------------------

std::string endpoints_to_json(const EndpointReport& report) {
  json j = message(kEndpointsMessageType);
  j["local"] = json::array();
  for (const auto& e : report.local)
    j["local"].push_back(e.to_string());
  if (report.reflexive)
    j["reflexive"] = report.reflexive->to_string();
  return j.dump();
}

Result<EndpointReport> parse_endpoints(std::string_view text) {
  auto j = open_message(text, kEndpointsMessageType);
  if (!j.ok())
    return j.error();
  EndpointReport r;
  auto l = j->find("local");
  if (l == j->end() || !l->is_array())
    return Error(EINVAL, "field \"local\" is missing or not a list");
  if (l->size() > mesh::kMaxLocalEndpoints)
    return Error(EINVAL, "field \"local\" has " + std::to_string(l->size()) +
                             " endpoints; at most " + std::to_string(mesh::kMaxLocalEndpoints));
  for (const auto& v : *l) {
    auto e = endpoint_item(v, "local");
    if (!e.ok())
      return e.error();
    r.local.push_back(*e);
  }
  if (auto x = j->find("reflexive"); x != j->end()) {
    auto e = endpoint_item(*x, "reflexive");
    if (!e.ok())
      return e.error();
    r.reflexive = *e;
  }
  return r;
}

namespace {

/// Why a peer could not dial `e`, or "" when it could.
std::string unusable(const net::Endpoint& e) {
  static const auto multicast_v4 = *net::Prefix::parse("224.0.0.0/4");
  static const auto multicast_v6 = *net::Prefix::parse("ff00::/8");
  static const auto link_local_v6 = *net::Prefix::parse("fe80::/10");
  static const auto this_network_v4 = *net::Prefix::parse("0.0.0.0/8");
  if (e.port == 0)
    return "port 0";
  if (e.address.is_unspecified() || this_network_v4.contains(e.address))
    return "unspecified address";
  if (e.address.is_loopback())
    return "loopback address";
  if (multicast_v4.contains(e.address) || multicast_v6.contains(e.address) ||
      e.address == *net::IpAddress::parse("255.255.255.255"))
    return "multicast or broadcast address";
  if (link_local_v6.contains(e.address))
    return "IPv6 link-local address (no scope a peer could use)";
  return {};
}

}  // namespace

CheckedEndpoints check_endpoint_report(const EndpointReport& report) {
  CheckedEndpoints out;
  for (const auto& e : report.local) {
    if (auto why = unusable(e); !why.empty()) {
      out.rejected.push_back(e.to_string() + ": " + why);
    } else if (std::find(out.kept.local.begin(), out.kept.local.end(), e) !=
               out.kept.local.end()) {
      out.rejected.push_back(e.to_string() + ": listed twice");
    } else if (out.kept.local.size() >= mesh::kMaxLocalEndpoints) {
      out.rejected.push_back(e.to_string() + ": more than " +
                             std::to_string(mesh::kMaxLocalEndpoints) + " local endpoints");
    } else {
      out.kept.local.push_back(e);
    }
  }
  if (report.reflexive) {
    if (auto why = unusable(*report.reflexive); !why.empty())
      out.rejected.push_back(report.reflexive->to_string() + ": " + why);
    else
      out.kept.reflexive = report.reflexive;
  }
  return out;
}

}  // namespace warren::control
