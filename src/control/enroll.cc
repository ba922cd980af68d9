// Enrollment protocol: invites, JSON messages, the client call and the server (see enroll.h).

#include "control/enroll.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/encoding.h"
#include "crypto/blake2s.h"
#include "crypto/random.h"
#include "control/session.h"
#include "mesh/address.h"
#include "mesh/names.h"
#include "mesh/roster.h"
#include "net/host_port.h"
#include "net/source_limiter.h"
#include "platform/event_loop.h"

namespace warren::control {

using nlohmann::json;

namespace {

constexpr std::size_t kInviteFixedBytes = 1 + 32 + kInviteIdBytes + kInviteSecretBytes;

bool is_hex_id(std::string_view s) {
  return s.size() == 2 * kInviteIdBytes && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string hex(std::span<const std::uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (auto x : b) {
    s += d[x >> 4];
    s += d[x & 15];
  }
  return s;
}

}  // namespace

// ---- invites -------------------------------------------------------------------------------

Result<Invite> parse_invite(std::string_view text) {
  auto fail = [](std::string m) -> Result<Invite> { return Error(EINVAL, "invalid invite: " + m); };
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (!text.starts_with(kInvitePrefix))
    return fail(
        "it does not start with \"warren1:\" (copy the whole line printed by "
        "`warren server invite`)");
  auto bytes = from_base64url(text.substr(kInvitePrefix.size()));
  if (!bytes)
    return fail("the text after \"warren1:\" is not base64url (truncated or mistyped?)");
  if (bytes->empty() || (*bytes)[0] != kInviteVersion)
    return fail("unknown invite format version (made by a newer warren?)");
  if (bytes->size() < kInviteFixedBytes + 1)
    return fail("too short (truncated?)");
  if (bytes->size() > kInviteFixedBytes + 255)
    return fail("too long");
  Invite inv;
  std::copy_n(bytes->begin() + 1, 32, inv.fingerprint.begin());
  inv.id = hex(std::span<const std::uint8_t>(bytes->data() + 33, kInviteIdBytes));
  std::copy_n(bytes->begin() + 33 + kInviteIdBytes, kInviteSecretBytes, inv.secret.data());
  inv.control_endpoint.assign(bytes->begin() + kInviteFixedBytes, bytes->end());
  secure_zero(bytes->data(), bytes->size());
  auto hp = split_host_port(inv.control_endpoint);
  if (!hp)
    return fail("its control endpoint is not host:port");
  // The host comes from whoever wrote the invite: it is resolved, printed and logged, so it
  // must be a plain host name or address (no control characters, spaces or other syntax).
  if (!net::valid_host(hp->host))
    return fail("its control endpoint's host '" + net::printable(hp->host) +
                "' is not a host name or an IP address");
  return inv;
}

std::string format_invite(const Invite& inv) {
  std::vector<std::uint8_t> b;
  b.push_back(kInviteVersion);
  b.insert(b.end(), inv.fingerprint.begin(), inv.fingerprint.end());
  for (std::size_t i = 0; i < kInviteIdBytes; ++i) {
    auto v = std::stoul(inv.id.substr(2 * i, 2), nullptr, 16);
    b.push_back(static_cast<std::uint8_t>(v));
  }
  b.insert(b.end(), inv.secret.data(), inv.secret.data() + kInviteSecretBytes);
  b.insert(b.end(), inv.control_endpoint.begin(), inv.control_endpoint.end());
  std::string s = std::string(kInvitePrefix) + to_base64url(b);
  secure_zero(b.data(), b.size());
  return s;
}

std::string random_invite_id() {
  std::array<std::uint8_t, kInviteIdBytes> b{};
  crypto::SystemRandom::instance().fill(b);
  return hex(b);
}

InviteSecret random_invite_secret() {
  InviteSecret s;
  crypto::SystemRandom::instance().fill(s.span());
  return s;
}

// ---- JSON ----------------------------------------------------------------------------------

namespace {

json enrollment_json(const Enrollment& e) {
  json j;
  j["name"] = e.name;
  j["addresses"] = json::array();
  for (const auto& p : e.addresses)
    j["addresses"].push_back(p.to_string());
  j["server_public_key"] = e.server_public_key.to_base64();
  j["server_endpoint"] = e.server_endpoint;
  j["routes"] = json::array();
  for (const auto& p : e.routes)
    j["routes"].push_back(p.to_string());
  j["dns"] = json::array();
  for (const auto& a : e.dns)
    j["dns"].push_back(a.to_string());
  j["mtu"] = e.mtu;
  j["persistent_keepalive"] = e.persistent_keepalive;
  if (e.mesh) {
    json m;
    m["prefix_v4"] = e.mesh->prefix_v4.to_string();
    m["prefix_v6"] = e.mesh->prefix_v6.to_string();
    m["domain"] = e.mesh->domain;
    m["v4_index"] = e.mesh->v4_index;
    m["stun"] = e.mesh->stun;
    if (!e.mesh->relay.empty())
      m["relay"] = e.mesh->relay;
    j["mesh"] = std::move(m);
  }
  if (e.quic)
    j["quic"] = json{{"endpoint", e.quic->endpoint}};
  return j;
}

const json& field(const json& j, const char* key, json::value_t type) {
  auto it = j.find(key);
  if (it == j.end())
    throw ControlError(std::string("missing field \"") + key + "\"");
  bool ok = it->type() == type ||
            (type == json::value_t::number_unsigned &&
             it->type() == json::value_t::number_integer && it->get<long long>() >= 0);
  if (!ok)
    throw ControlError(std::string("field \"") + key + "\" has the wrong type");
  return *it;
}

std::vector<net::Prefix> prefixes(const json& j, const char* key) {
  std::vector<net::Prefix> out;
  for (const auto& v : field(j, key, json::value_t::array)) {
    if (!v.is_string())
      throw ControlError(std::string("field \"") + key + "\" holds a non-string");
    auto p = net::Prefix::parse(v.get<std::string>());
    if (!p)
      throw ControlError(std::string("field \"") + key + "\": bad prefix '" + v.get<std::string>() +
                         "'");
    out.push_back(*p);
  }
  return out;
}

/// The "mesh" object of an enrollment (enroll.h, MeshSettings). Errors name the field as
/// "mesh.KEY".
MeshSettings mesh_settings_from(const json& j) {
  if (!j.is_object())
    throw ControlError("field \"mesh\" is not an object");
  auto bad = [](const char* key, const std::string& why) {
    return ControlError(std::string("field \"mesh.") + key + "\" " + why);
  };
  auto text = [&](const char* key) -> std::string {
    auto it = j.find(key);
    if (it == j.end())
      throw bad(key, "is missing");
    if (!it->is_string())
      throw bad(key, "is not a string");
    return it->get<std::string>();
  };
  MeshSettings m;
  auto v4 = net::Prefix::parse(text("prefix_v4"));
  auto v6 = net::Prefix::parse(text("prefix_v6"));
  if (!v4)
    throw bad("prefix_v4", "is not a prefix");
  if (!v6)
    throw bad("prefix_v6", "is not a prefix");
  // The node derives every peer's address from these: the plan's own rules, so that a
  // coordinator cannot hand a node a plan it would then fail on one peer at a time.
  auto plan = mesh::AddressPlan::create(*v4, *v6);
  if (!plan.ok())
    throw ControlError("field \"mesh\": " + plan.message());
  m.prefix_v4 = plan->v4_prefix();
  m.prefix_v6 = plan->v6_prefix();
  auto domain = mesh::canonical_mesh_domain(text("domain"));
  if (!domain.ok())
    throw bad("domain", "is not a mesh domain: " + domain.message());
  m.domain = *domain;
  auto index = j.find("v4_index");
  if (index == j.end())
    throw bad("v4_index", "is missing");
  if (!index->is_number_unsigned() || index->get<std::uint64_t>() > mesh::kMaxV4Index)
    throw bad("v4_index", "is not a number from 0 to " + std::to_string(mesh::kMaxV4Index));
  m.v4_index = static_cast<std::uint32_t>(index->get<std::uint64_t>());
  if (auto s = j.find("stun"); s != j.end()) {
    if (!s->is_array() || s->size() > kMaxMeshStunServers)
      throw bad("stun", "is not a list of at most " + std::to_string(kMaxMeshStunServers) +
                            " host:port strings");
    for (const auto& v : *s) {
      if (!v.is_string() || !split_host_port(v.get<std::string>()))
        throw bad("stun", "holds an item that is not host:port");
      m.stun.push_back(v.get<std::string>());
    }
  }
  if (auto r = j.find("relay"); r != j.end()) {
    if (!r->is_string() || !split_host_port(r->get<std::string>()))
      throw bad("relay", "is not host:port");
    m.relay = r->get<std::string>();
  }
  return m;
}

/// The "quic" object of an enrollment (enroll.h, QuicSettings). Errors name "quic.endpoint".
QuicSettings quic_settings_from(const json& j) {
  if (!j.is_object())
    throw ControlError("field \"quic\" is not an object");
  auto it = j.find("endpoint");
  if (it == j.end())
    throw ControlError("field \"quic.endpoint\" is missing");
  if (!it->is_string())
    throw ControlError("field \"quic.endpoint\" is not a string");
  const std::string text = it->get<std::string>();
  // The client writes it into its config file: only a host a resolver accepts, so no line
  // break, space or '#' can reach that file.
  auto hp = split_host_port(text);
  if (!hp || !net::valid_host(hp->host))
    throw ControlError("field \"quic.endpoint\" is not host:port ('" + net::printable(text) + "')");
  return QuicSettings{text};
}

Enrollment enrollment_from(const json& j) {
  if (!j.is_object())
    throw ControlError("enrollment is not an object");
  Enrollment e;
  e.name = field(j, "name", json::value_t::string).get<std::string>();
  e.addresses = prefixes(j, "addresses");
  auto key = crypto::PublicKey::from_base64(
      field(j, "server_public_key", json::value_t::string).get<std::string>());
  if (!key)
    throw ControlError("field \"server_public_key\" is not a base64 key");
  e.server_public_key = *key;
  e.server_endpoint = field(j, "server_endpoint", json::value_t::string).get<std::string>();
  if (!split_host_port(e.server_endpoint))
    throw ControlError("field \"server_endpoint\" is not host:port");
  e.routes = prefixes(j, "routes");
  for (const auto& v : field(j, "dns", json::value_t::array)) {
    auto a = v.is_string() ? net::IpAddress::parse(v.get<std::string>()) : std::nullopt;
    if (!a)
      throw ControlError("field \"dns\" holds a bad address");
    e.dns.push_back(*a);
  }
  auto mtu = field(j, "mtu", json::value_t::number_unsigned).get<std::uint64_t>();
  auto ka = field(j, "persistent_keepalive", json::value_t::number_unsigned).get<std::uint64_t>();
  if (mtu < 576 || mtu > 65535)
    throw ControlError("field \"mtu\" is out of range");
  if (ka > 65535)
    throw ControlError("field \"persistent_keepalive\" is out of range");
  e.mtu = static_cast<std::uint32_t>(mtu);
  e.persistent_keepalive = static_cast<std::uint16_t>(ka);
  if (auto m = j.find("mesh"); m != j.end())
    e.mesh = mesh_settings_from(*m);
  if (auto q = j.find("quic"); q != j.end())
    e.quic = quic_settings_from(*q);
  return e;
}

}  // namespace

std::string enrollment_to_json(const Enrollment& e) {
  return enrollment_json(e).dump();
}

Enrollment enrollment_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw ControlError("enrollment is not valid JSON");
  return enrollment_from(j);
}

std::string enroll_request_to_json(const EnrollRequest& r) {
  json j;
  j["version"] = kProtocolVersion;
  j["type"] = "enroll";
  j["invite_id"] = r.invite_id;
  j["secret"] = to_base64url(r.secret.span());
  j["name"] = r.name;
  j["public_key"] = r.public_key.to_base64();
  j["proof"] = to_base64(r.proof.span());
  return j.dump();
}

Result<EnrollRequest> parse_enroll_request(std::string_view text) {
  auto fail = [](std::string m, int code = EINVAL) -> Result<EnrollRequest> {
    return Error(code, std::move(m));
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("the request is not a JSON object");
  try {
    auto v = field(j, "version", json::value_t::number_unsigned).get<std::uint64_t>();
    if (v != static_cast<std::uint64_t>(kProtocolVersion))
      return fail("the client speaks enrollment protocol version " + std::to_string(v) +
                      ", this server version " + std::to_string(kProtocolVersion) +
                      " (which proves possession of the client's key); upgrade warren on the "
                      "client",
                  EPROTONOSUPPORT);
    if (field(j, "type", json::value_t::string).get<std::string>() != "enroll")
      return fail("unknown request type");
    EnrollRequest r;
    r.invite_id = field(j, "invite_id", json::value_t::string).get<std::string>();
    if (!is_hex_id(r.invite_id))
      return fail("field \"invite_id\" is not 16 hex digits");
    auto secret = from_base64url(field(j, "secret", json::value_t::string).get<std::string>());
    if (!secret || secret->size() != kInviteSecretBytes)
      return fail("field \"secret\" is not a 32-byte base64url value");
    std::copy(secret->begin(), secret->end(), r.secret.data());
    secure_zero(secret->data(), secret->size());
    r.name = field(j, "name", json::value_t::string).get<std::string>();
    if (r.name.size() > 64)
      return fail("field \"name\" is longer than 64 bytes");
    auto key = crypto::PublicKey::from_base64(
        field(j, "public_key", json::value_t::string).get<std::string>());
    if (!key || key->is_zero())
      return fail("field \"public_key\" is not a WireGuard public key (base64)");
    r.public_key = *key;
    auto proof = j.find("proof");
    if (proof == j.end() || !proof->is_string())
      return fail("the request carries no proof of possession of the client's key", EACCES);
    std::array<std::uint8_t, 32> p{};
    if (!from_base64(proof->get<std::string>(), p))
      return fail("field \"proof\" is not 32 bytes of base64", EACCES);
    r.proof = EnrollProof(std::span<const std::uint8_t, 32>(p));
    return r;
  } catch (const ControlError& e) {
    return fail(e.what());
  }
}

std::string_view request_error_code(const Error& e) {
  if (e.code == EPROTONOSUPPORT)
    return "unsupported_version";
  if (e.code == EACCES)
    return "proof_invalid";
  return "invalid_request";
}

// ---- proof of possession ---------------------------------------------------------------------

namespace {

/// BLAKE2s-256 keyed with dh over the proof's message (enroll.h).
EnrollProof proof_from_dh(const crypto::SharedSecret& dh, const ExporterValue& channel,
                          const crypto::PublicKey& client_key, std::string_view invite_id) {
  std::vector<std::uint8_t> msg;
  msg.reserve(kProofContext.size() + channel.size() + client_key.bytes.size() + invite_id.size());
  msg.insert(msg.end(), kProofContext.begin(), kProofContext.end());
  msg.insert(msg.end(), channel.data(), channel.data() + channel.size());
  msg.insert(msg.end(), client_key.bytes.begin(), client_key.bytes.end());
  msg.insert(msg.end(), invite_id.begin(), invite_id.end());
  EnrollProof out;
  crypto::blake2s_keyed(dh.span(), msg, out.span());
  secure_zero(msg.data(), msg.size());  // holds the exporter value
  return out;
}

}  // namespace

Result<EnrollProof> make_enroll_proof(const crypto::PrivateKey& client_private,
                                      const crypto::PublicKey& challenge_key,
                                      const ExporterValue& channel, std::string_view invite_id) {
  crypto::SharedSecret dh;
  if (!crypto::x25519(client_private, challenge_key, dh))
    return Error(EINVAL, "the server's challenge key is invalid (a low-order point)");
  return proof_from_dh(dh, channel, crypto::derive_public_key(client_private), invite_id);
}

bool verify_enroll_proof(const crypto::PrivateKey& challenge_private, const ExporterValue& channel,
                         const EnrollRequest& request) {
  crypto::SharedSecret dh;
  if (!crypto::x25519(challenge_private, request.public_key, dh))
    return false;  // a low-order public key: nobody holds its private key
  const EnrollProof expected = proof_from_dh(dh, channel, request.public_key, request.invite_id);
  return constant_time_equal(expected.span(), request.proof.span());
}

std::string enroll_hello_to_json(const crypto::PublicKey& challenge_key) {
  json j;
  j["version"] = kProtocolVersion;
  j["type"] = "hello";
  j["challenge_key"] = challenge_key.to_base64();
  // A version-1 client sends its request without waiting and reads this hello as its reply: it
  // only looks at "ok" and "error", so these make it print why it failed instead of "malformed
  // reply". Version-2 clients recognise the hello by "type" and ignore both.
  j["ok"] = false;
  j["error"] = {{"code", "unsupported_version"},
                {"message",
                 "this server speaks enrollment protocol version 2: upgrade warren on this "
                 "client"}};
  return j.dump();
}

Result<crypto::PublicKey> parse_enroll_hello(std::string_view text) {
  auto fail = [](std::string m) -> Result<crypto::PublicKey> {
    return Error(EPROTO, std::move(m));
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("the server's hello is not a JSON object");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned() ||
      v->get<std::uint64_t>() != static_cast<std::uint64_t>(kProtocolVersion))
    return fail("the server speaks another enrollment protocol version (expected " +
                std::to_string(kProtocolVersion) + "; upgrade warren on the older side)");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string() || t->get<std::string>() != "hello")
    return fail("the server's first message is not a hello");
  auto k = j.find("challenge_key");
  std::optional<crypto::PublicKey> key;
  if (k != j.end() && k->is_string())
    key = crypto::PublicKey::from_base64(k->get<std::string>());
  if (!key || key->is_zero())
    return fail("the server's hello has no valid \"challenge_key\"");
  return *key;
}

std::string enroll_reply_to_json(const EnrollReply& r) {
  json j;
  j["version"] = kProtocolVersion;
  if (r.enrollment) {
    j["ok"] = true;
    j["enrollment"] = enrollment_json(*r.enrollment);
  } else {
    j["ok"] = false;
    j["error"] = {{"code", r.error_code}, {"message", r.error_message}};
  }
  return j.dump();
}

// ---- client --------------------------------------------------------------------------------

Enrollment enroll(const Invite& invite, std::string_view client_name,
                  const crypto::PrivateKey& client_private, std::chrono::milliseconds timeout) {
  const Deadline deadline = SteadyClock::now() + timeout;
  auto hp = split_host_port(invite.control_endpoint);
  if (!hp)
    throw EnrollError("invalid_request", "the invite's control endpoint is not host:port");
  std::string reply_text;
  try {
    auto stream = TlsStream::connect(hp->host, hp->port, invite.fingerprint, deadline);
    auto challenge = parse_enroll_hello(stream->read_frame(kMaxMessageBytes, deadline));
    if (!challenge.ok())
      throw ControlError(challenge.message());
    auto proof = make_enroll_proof(client_private, *challenge,
                                   stream->export_keying_material(kExporterLabel), invite.id);
    if (!proof.ok())
      throw ControlError(proof.message());
    EnrollRequest req;
    req.invite_id = invite.id;
    req.secret = invite.secret;
    req.name = std::string(client_name);
    req.public_key = crypto::derive_public_key(client_private);
    req.proof = *proof;
    std::string body = enroll_request_to_json(req);
    stream->write_frame(body, deadline);
    secure_zero(body.data(), body.size());
    reply_text = stream->read_frame(kMaxMessageBytes, deadline);
    stream->close(deadline);
  } catch (const ControlError& e) {
    throw EnrollError("transport",
                      "enrollment with " + invite.control_endpoint + " failed: " + e.what());
  }
  json j = json::parse(reply_text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean())
    throw EnrollError("transport", "the server sent a malformed reply");
  if (!j["ok"].get<bool>()) {
    std::string code = "internal", message = "refused";
    if (j.contains("error") && j["error"].is_object()) {
      if (j["error"].contains("code") && j["error"]["code"].is_string())
        code = j["error"]["code"].get<std::string>();
      if (j["error"].contains("message") && j["error"]["message"].is_string())
        message = j["error"]["message"].get<std::string>();
    }
    throw EnrollError(code, "the server refused the enrollment: " + message);
  }
  try {
    if (!j.contains("enrollment"))
      throw ControlError("missing field \"enrollment\"");
    return enrollment_from(j["enrollment"]);
  } catch (const ControlError& e) {
    throw EnrollError("transport",
                      std::string("the server sent a malformed enrollment: ") + e.what());
  }
}

// ---- server --------------------------------------------------------------------------------
//
// One loop thread owns every connection; workers only run the handler. A connection's life:
//
//   accept ─► kHandshake ─► kSendHello ─► kReadRequest ─► (parse, verify proof)
//                                                          ├─► kHandling (queued for a worker)
//                                                          │      └─► completion ─┐
//                                                          └─► (refusal) ─────────┴─► kSendReply
//                                                                                   ─► kClosing
// Every state may end in a close: TLS failure, end of stream, a late ClientHello, the total
// deadline, or stop().
//
// A settings session (session.h) leaves kReadRequest for the same queue (kHandling, its
// handler's settings) and then stays in kSession: counted in `sessions`/`session_source`
// instead of the enrollment caps, its deadline pushed back by whatever the client sends, a
// ping queued when we sent nothing for a ping interval, settings queued after a reload.

namespace {

/// Connections are counted per IPv4 address and per IPv6 /64 (one host usually holds a /64).

std::string frame(std::string_view payload) {
  std::string out(4 + payload.size(), '\0');
  const auto n = static_cast<std::uint32_t>(payload.size());
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  std::memcpy(out.data() + 4, payload.data(), payload.size());
  return out;
}

std::uint32_t frame_length(std::string_view header) {
  const auto b = [&](int i) {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(header[i]));
  };
  return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

void wipe(std::string& s) {
  secure_zero(s.data(), s.size());
  s.clear();
}

}  // namespace

struct EnrollServer::Impl {
  using Io = TlsServerSession::Io;

  struct Conn {
    enum class State {
      kHandshake,
      kSendHello,
      kReadRequest,
      kHandling,
      kSendReply,
      kClosing,
      kSession
    };
    std::uint64_t id = 0;
    net::IpAddress source;  // net::SourceLimiter::key() of the peer
    std::unique_ptr<TlsServerSession> tls;
    State state = State::kHandshake;
    Deadline hello_deadline;
    Deadline deadline;
    crypto::PrivateKey challenge;  // this connection's ephemeral key (wiped when it dies)
    std::string in;                // the request frame as it arrives (holds the invite secret)
    std::string out;               // the frame being written
    std::size_t out_offset = 0;
    std::uint32_t watching = platform::kReadable;
    // Settings sessions only.
    bool session = false;          // counted in sessions/session_source, not the enroll caps
    crypto::PublicKey client_key;  // proven on this connection
    std::string pending;           // frames queued while `out` is being written
    Deadline next_ping;
    ~Conn() { wipe(in); }
  };
  struct Job {
    std::uint64_t conn;
    EnrollRequest request;
    bool session = false;  // a session's settings: the handler is session_handler
  };
  struct Done {
    std::uint64_t conn;
    EnrollReply reply;
    bool session = false;
    std::optional<Enrollment> settings;
  };

  Impl(TlsIdentity id, const std::vector<std::string>& listen, EnrollHandler h,
       EnrollServerOptions o)
      : identity(std::move(id)), handler(std::move(h)), options(o) {
    platform::ignore_sigpipe();
    if (listen.empty())
      throw ControlError("no address to listen on");
    for (const auto& address : listen) {
      auto l = platform::tcp_listen(address);
      if (!l)
        throw ControlError("cannot listen on " + address + ": " + l.message());
      listeners.push_back(std::move(*l));
    }
  }

  TlsIdentity identity;
  EnrollHandler handler;
  SessionHandler session_handler;
  SessionEvents session_events;
  std::atomic<bool> settings_dirty{false};
  std::atomic<std::size_t> sessions_open{0};
  EnrollServerOptions options;
  // One loop serves every address, so the caps (global, per source) are shared among them.
  std::vector<std::unique_ptr<platform::TcpListener>> listeners;
  std::unique_ptr<platform::EventLoop> loop;
  std::thread loop_thread;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open{0};
  std::atomic<std::uint64_t> served{0};
  mutable std::mutex counts_mutex;
  EnrollServer::AnswerCounts counts;  // guarded by counts_mutex

  // Loop thread only.
  std::map<std::uint64_t, std::unique_ptr<Conn>> conns;
  net::SourceLimiter per_source{options.max_connections_per_source};
  net::SourceLimiter session_source{options.max_sessions_per_source};
  std::size_t sessions = 0;
  std::uint64_t next_id = 1;
  std::optional<Deadline> listener_paused_until;

  // Shared between the loop and the workers.
  std::mutex mutex;
  std::condition_variable jobs_ready;
  std::deque<Job> jobs;       // guarded by mutex
  std::vector<Done> done;     // guarded by mutex
  /// Frames for established sessions from send_to_session (any thread).
  std::vector<std::pair<std::uint64_t, std::shared_ptr<const std::string>>>
      outbox;  // guarded by mutex
  bool workers_stop = false;  // guarded by mutex

  void start() {
    auto l = platform::make_event_loop();
    if (!l.ok())
      throw ControlError("cannot create the enrollment event loop: " + l.message());
    loop = std::move(*l);
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      if (auto s = loop->add(listeners[i]->native_handle(), platform::kReadable,
                             [this, i](std::uint32_t) { on_listener(*listeners[i]); });
          !s.ok())
        throw ControlError("cannot watch the enrollment socket: " + s.message());
    }
    loop->set_wake_handler([this] { on_completions(); });
    for (std::size_t i = 0; i < std::max<std::size_t>(options.workers, 1); ++i)
      workers.emplace_back([this] { work(); });
    loop_thread = std::thread([this] { run(); });
  }

  void stop() {
    stopping = true;
    {
      std::lock_guard lock(mutex);
      workers_stop = true;
    }
    jobs_ready.notify_all();
    if (loop)
      loop->wake();
    if (loop_thread.joinable())
      loop_thread.join();
    for (auto& w : workers)
      if (w.joinable())
        w.join();
    workers.clear();
  }

  void run() {
    while (!stopping) {
      auto r = loop->run_once(timeout());
      if (!r.ok())
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // EINTR is not an error
      const auto now = SteadyClock::now();
      if (listener_paused_until && now >= *listener_paused_until) {
        listener_paused_until.reset();
        for (const auto& l : listeners)
          (void)loop->modify(l->native_handle(), platform::kReadable);
      }
      expire(now);
    }
    while (!conns.empty())
      close(conns.begin()->first);
    for (const auto& l : listeners)
      (void)loop->remove(l->native_handle());
  }

  /// Until the nearest deadline of any connection (or the listener's pause), at most 1 s.
  Duration timeout() const {
    Deadline next = SteadyClock::now() + std::chrono::seconds(1);
    for (const auto& [id, c] : conns) {
      next = std::min(next, c->deadline);
      if (c->state == Conn::State::kSession)
        next = std::min(next, c->next_ping);
      if (c->state == Conn::State::kHandshake && !c->tls->client_hello_received())
        next = std::min(next, c->hello_deadline);
    }
    if (listener_paused_until)
      next = std::min(next, *listener_paused_until);
    return std::max(Duration::zero(),
                    std::chrono::duration_cast<Duration>(next - SteadyClock::now()));
  }

  void expire(Deadline now) {
    std::vector<std::uint64_t> late;
    for (const auto& [id, c] : conns) {
      const bool hello_late = c->state == Conn::State::kHandshake &&
                              !c->tls->client_hello_received() && now >= c->hello_deadline;
      if (hello_late || now >= c->deadline)
        late.push_back(id);
    }
    for (auto id : late)
      close(id);
    std::vector<std::uint64_t> ping;
    for (const auto& [id, c] : conns)
      if (c->state == Conn::State::kSession && now >= c->next_ping)
        ping.push_back(id);
    for (auto id : ping) {
      Conn& c = *conns[id];
      send_session(c, session_ping_to_json());
      if (!drive(c))
        close(id);
    }
  }

  /// Queues one frame on a session and restarts its ping interval.
  void send_session(Conn& c, const std::string& message) {
    if (c.out.empty()) {
      c.out = frame(message);
      c.out_offset = 0;
    } else {
      c.pending += frame(message);
    }
    c.next_ping = SteadyClock::now() + options.session_ping_interval;
  }

  void on_listener(platform::TcpListener& listener) {
    // Drain the accept queue (bounded, then the connections' events run): a full queue makes
    // the kernel drop honest clients' SYNs, which then wait a second to retry.
    for (int i = 0; i < 1024; ++i) {
      auto a = listener.try_accept();
      if (a.ok()) {
        admit(std::move(*a));
        continue;
      }
      const int e = a.code();
      if (e == EAGAIN)
        return;
      if (e == ECONNABORTED || e == EINTR || e == EPROTO)
        continue;
      // Out of descriptors or memory: stop accepting for a moment instead of spinning.
      listener_paused_until = SteadyClock::now() + std::chrono::milliseconds(100);
      for (const auto& l : listeners)
        (void)loop->modify(l->native_handle(), 0);
      return;
    }
  }

  void admit(platform::AcceptedTcp a) {
    if (stopping || conns.size() - sessions >= options.max_connections)
      return;  // closed at once (the connection's destructor)
    const net::IpAddress key = net::SourceLimiter::key(a.peer);
    if (per_source.full(key))
      return;
    auto c = std::make_unique<Conn>();
    c->id = next_id++;
    c->source = key;
    try {
      c->tls = std::make_unique<TlsServerSession>(identity, std::move(a.connection));
    } catch (const ControlError&) {
      return;
    }
    const auto now = SteadyClock::now();
    c->hello_deadline = now + options.client_hello_timeout;
    c->deadline = now + options.request_timeout;
    const std::uint64_t id = c->id;
    if (!loop->add(c->tls->native_handle(), platform::kReadable,
                   [this, id](std::uint32_t events) { on_event(id, events); })
             .ok())
      return;
    per_source.add(key);
    ++open;
    conns.emplace(id, std::move(c));
  }

  void close(std::uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    Conn& c = *it->second;
    (void)loop->remove(c.tls->native_handle());
    (c.session ? session_source : per_source).remove(c.source);
    const bool established = c.state == Conn::State::kSession;
    if (c.session) {
      --sessions;
      --sessions_open;
    }
    conns.erase(it);  // closes the socket
    --open;
    if (established && session_events.on_closed)
      session_events.on_closed(id);
  }

  void on_event(std::uint64_t id, std::uint32_t events) {
    auto it = conns.find(id);
    if (it == conns.end())
      return;
    Conn& c = *it->second;
    if (c.state == Conn::State::kHandling) {
      // Nothing is watched while a worker decides; only a hang-up is reported here.
      if (events & platform::kHangup)
        close(id);
      return;
    }
    if (!drive(c))
      close(id);
  }

  void on_completions() {
    if (settings_dirty.exchange(false))
      refresh_sessions();
    std::vector<Done> ready;
    std::vector<std::pair<std::uint64_t, std::shared_ptr<const std::string>>> frames;
    {
      std::lock_guard lock(mutex);
      ready.swap(done);
      frames.swap(outbox);
    }
    for (auto& [id, message] : frames) {
      auto it = conns.find(id);
      if (it == conns.end() || it->second->state != Conn::State::kSession)
        continue;  // gone meanwhile
      Conn& c = *it->second;
      send_session(c, *message);
      if (c.out.size() - c.out_offset + c.pending.size() > options.max_session_backlog || !drive(c))
        close(id);
    }
    for (auto& d : ready) {
      auto it = conns.find(d.conn);
      if (it == conns.end())
        continue;  // closed meanwhile (deadline, hang-up): the answer is dropped
      Conn& c = *it->second;
      if (d.session && c.state == Conn::State::kSession) {
        if (!d.settings) {  // revoked or disabled since: the session ends
          close(d.conn);
          continue;
        }
        send_session(c, session_settings_to_json(*d.settings));
      } else if (c.state != Conn::State::kHandling) {
        continue;
      } else if (d.session && d.settings) {
        c.state = Conn::State::kSession;
        c.deadline = SteadyClock::now() + options.session_idle_timeout;
        send_session(c, session_settings_to_json(*d.settings));
        if (session_events.on_established)
          session_events.on_established(c.id, c.client_key);
      } else if (d.session) {
        // Back under the enrollment caps for the refusal's short remaining life.
        leave_session(c);
        start_reply(c, EnrollReply::failure("unknown_client",
                                            "no enrolled, enabled client has this key"));
      } else {
        start_reply(c, d.reply);
      }
      if (!drive(c))
        close(d.conn);
    }
  }

  /// A reload changed the clients' settings: one handler call per session, on the workers.
  void refresh_sessions() {
    bool any = false;
    {
      std::lock_guard lock(mutex);
      for (const auto& [id, c] : conns)
        if (c->state == Conn::State::kSession) {
          Job j;
          j.conn = id;
          j.request.public_key = c->client_key;
          j.session = true;
          jobs.push_back(std::move(j));
          any = true;
        }
    }
    if (any)
      jobs_ready.notify_all();
  }

  /// Moves `c` from the enrollment caps to the session caps; false (nothing moved) when the
  /// session caps are full.
  bool enter_session(Conn& c) {
    if (sessions >= options.max_sessions || session_source.full(c.source))
      return false;
    per_source.remove(c.source);
    session_source.add(c.source);
    ++sessions;
    ++sessions_open;
    c.session = true;
    return true;
  }

  void leave_session(Conn& c) {
    if (!c.session)
      return;
    session_source.remove(c.source);
    --sessions;
    --sessions_open;
    per_source.add(c.source);
    c.session = false;
  }

  /// A session request: verify, check the caps, ask a worker for the client's settings.
  void take_session_request(Conn& c, std::string_view body) {
    auto req = parse_session_request(body);
    if (!session_handler) {
      start_reply(c, EnrollReply::failure("invalid_request", "this server has no sessions"));
      return;
    }
    if (!req.ok()) {
      start_reply(
          c, EnrollReply::failure(std::string(request_error_code(req.error())), req.message()));
      return;
    }
    bool proven = false;
    try {
      proven = verify_session_proof(c.challenge,
                                    c.tls->export_keying_material(kExporterLabel), *req);
    } catch (const ControlError&) {
    }
    c.challenge.clear();
    if (!proven) {
      start_reply(c, EnrollReply::failure("proof_invalid",
                                          "the request does not prove possession of the "
                                          "private key of its public key"));
      return;
    }
    if (!enter_session(c)) {
      start_reply(c, EnrollReply::failure("busy", "too many settings sessions; try again later"));
      return;
    }
    c.client_key = req->public_key;
    {
      std::lock_guard lock(mutex);
      Job j;
      j.conn = c.id;
      j.request.public_key = req->public_key;
      j.session = true;
      jobs.push_back(std::move(j));
    }
    c.state = Conn::State::kHandling;
    jobs_ready.notify_one();
    watch(c, 0);
  }

  void watch(Conn& c, std::uint32_t events) {
    if (c.watching != events && loop->modify(c.tls->native_handle(), events).ok())
      c.watching = events;
  }

  void start_reply(Conn& c, const EnrollReply& reply) {
    {
      std::lock_guard lock(counts_mutex);
      if (reply.enrollment)
        ++counts.enrolled;
      else
        ++counts.refused[reply.error_code];
    }
    c.out = frame(enroll_reply_to_json(reply));
    c.out_offset = 0;
    c.state = Conn::State::kSendReply;
  }

  /// The request frame is complete: refuse it here or hand it to a worker.
  void take_request(Conn& c) {
    std::string body = c.in.substr(4);
    wipe(c.in);
    if (is_session_request(body)) {
      take_session_request(c, body);
      return;
    }
    auto req = parse_enroll_request(body);
    wipe(body);
    if (!req.ok()) {
      start_reply(
          c, EnrollReply::failure(std::string(request_error_code(req.error())), req.message()));
      return;
    }
    bool proven = false;
    try {
      proven =
          verify_enroll_proof(c.challenge, c.tls->export_keying_material(kExporterLabel), *req);
    } catch (const ControlError&) {
    }
    c.challenge.clear();
    if (!proven) {
      start_reply(
          c, EnrollReply::failure("proof_invalid",
                                  "the request does not prove possession of the private key of its "
                                  "public key"));
      return;
    }
    {
      std::lock_guard lock(mutex);
      if (jobs.size() < options.max_queued_requests) {
        jobs.push_back(Job{c.id, std::move(*req)});
        c.state = Conn::State::kHandling;
      }
    }
    if (c.state == Conn::State::kHandling) {
      jobs_ready.notify_one();
      watch(c, 0);
    } else {
      start_reply(c, EnrollReply::failure(
                         "busy", "the server is busy with other enrollments; try again shortly"));
    }
  }

  /// Advances `c` as far as it goes without waiting; false when it must be closed.
  bool drive(Conn& c) {
    using S = Conn::State;
    for (;;) {
      Io io = Io::kDone;
      switch (c.state) {
        case S::kHandshake:
          io = c.tls->handshake();
          if (io == Io::kDone) {
            c.challenge = crypto::generate_private_key(crypto::SystemRandom::instance());
            c.out = frame(enroll_hello_to_json(crypto::derive_public_key(c.challenge)));
            c.out_offset = 0;
            c.state = S::kSendHello;
            continue;
          }
          break;
        case S::kSendHello:
          io = c.tls->write_from(c.out, c.out_offset);
          if (io == Io::kDone) {
            c.out.clear();
            c.state = S::kReadRequest;
            continue;
          }
          break;
        case S::kReadRequest: {
          const std::size_t need = c.in.size() < 4 ? 4 : 4 + std::size_t{frame_length(c.in)};
          io = c.tls->read_to(c.in, need);
          if (io != Io::kDone)
            break;
          if (c.in.size() == 4) {
            const std::uint32_t n = frame_length(c.in);
            if (n > options.max_request_bytes) {
              start_reply(c, EnrollReply::failure("invalid_request",
                                                  "message of " + std::to_string(n) +
                                                      " bytes exceeds the limit of " +
                                                      std::to_string(options.max_request_bytes)));
              continue;
            }
            if (n > 0)
              continue;  // now the body
          }
          take_request(c);
          if (c.state == S::kHandling)
            return true;
          continue;
        }
        case S::kHandling:
          return true;
        case S::kSendReply:
          io = c.tls->write_from(c.out, c.out_offset);
          if (io == Io::kDone) {
            ++served;
            c.tls->send_close_notify();
            c.state = S::kClosing;
            continue;
          }
          break;
        case S::kClosing:
          // Wait for the client's close_notify or end of stream before closing, so that our
          // close cannot reset the connection under an answer the client has not read yet.
          io = c.tls->drain();
          break;
        case S::kSession:
          return drive_session(c);
      }
      switch (io) {
        case Io::kWantRead:
          watch(c, platform::kReadable);
          return true;
        case Io::kWantWrite:
          watch(c, platform::kWritable);
          return true;
        default:
          return false;  // closed, failed, or finished
      }
    }
  }

  /// A session: write what is queued, read what the client sends (each whole frame counts as
  /// a sign of life; unknown types are ignored). False when it must be closed.
  bool drive_session(Conn& c) {
    std::uint32_t want = 0;
    for (;;) {
      if (c.out.empty() && !c.pending.empty()) {
        c.out.swap(c.pending);
        c.out_offset = 0;
      }
      if (c.out.empty())
        break;
      const Io io = c.tls->write_from(c.out, c.out_offset);
      if (io == Io::kDone) {
        c.out.clear();
        c.out_offset = 0;
        continue;
      }
      if (io == Io::kWantWrite)
        want |= platform::kWritable;
      else if (io == Io::kWantRead)
        want |= platform::kReadable;
      else
        return false;
      break;
    }
    for (;;) {
      const std::size_t need = c.in.size() < 4 ? 4 : 4 + std::size_t{frame_length(c.in)};
      if (c.in.size() == 4 && frame_length(c.in) > options.max_request_bytes)
        return false;
      const Io io = c.tls->read_to(c.in, need);
      if (io == Io::kWantRead || io == Io::kWantWrite) {
        want |= io == Io::kWantRead ? platform::kReadable : platform::kWritable;
        break;
      }
      if (io != Io::kDone)
        return false;
      if (c.in.size() == 4 && frame_length(c.in) > 0)
        continue;  // now the body
      auto m = parse_session_message(std::string_view(c.in).substr(4));
      if (!m.ok()) {
        c.in.clear();
        return false;
      }
      if (m->type == SessionMessageType::kOther && session_events.on_message)
        session_events.on_message(c.id, c.client_key, m->type_name,
                                  std::string_view(c.in).substr(4));
      c.in.clear();
      c.deadline = SteadyClock::now() + options.session_idle_timeout;
    }
    watch(c, want | platform::kReadable);
    return true;
  }

  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mutex);
        jobs_ready.wait(lock, [&] { return workers_stop || !jobs.empty(); });
        if (workers_stop)
          return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      Done d{job.conn, {}, job.session, std::nullopt};
      try {
        if (job.session)
          d.settings = session_handler(job.request.public_key);
        else
          d.reply = handler(job.request);
      } catch (const std::exception& e) {
        d.reply = EnrollReply::failure("internal", std::string("internal error: ") + e.what());
        d.settings.reset();
      }
      {
        std::lock_guard lock(mutex);
        done.push_back(std::move(d));
      }
      loop->wake();
    }
  }
};

EnrollServer::EnrollServer(TlsIdentity identity, std::string_view listen, EnrollHandler handler,
                           EnrollServerOptions options)
    : EnrollServer(std::move(identity), std::vector<std::string>{std::string(listen)},
                   std::move(handler), options) {}

EnrollServer::EnrollServer(TlsIdentity identity, const std::vector<std::string>& listen,
                           EnrollHandler handler, EnrollServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(identity), listen, std::move(handler), options)) {}

EnrollServer::~EnrollServer() {
  stop();
}

void EnrollServer::set_session_handler(SessionHandler handler) {
  impl_->session_handler = std::move(handler);
}

void EnrollServer::settings_changed() {
  impl_->settings_dirty = true;
  if (impl_->loop)
    impl_->loop->wake();
}

std::size_t EnrollServer::active_sessions() const {
  return impl_->sessions_open.load();
}

void EnrollServer::set_session_events(SessionEvents events) {
  impl_->session_events = std::move(events);
}

void EnrollServer::send_to_session(std::uint64_t session, std::string message) {
  send_to_session(session, std::make_shared<const std::string>(std::move(message)));
}

void EnrollServer::send_to_session(std::uint64_t session,
                                   std::shared_ptr<const std::string> message) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->outbox.emplace_back(session, std::move(message));
  }
  if (impl_->loop)
    impl_->loop->wake();
}

void EnrollServer::start() {
  impl_->start();
}

void EnrollServer::stop() {
  impl_->stop();
}

std::uint16_t EnrollServer::port() const {
  return impl_->listeners.front()->port();
}

std::size_t EnrollServer::active_connections() const {
  return impl_->open.load();
}

std::uint64_t EnrollServer::requests_served() const {
  return impl_->served.load();
}

EnrollServer::AnswerCounts EnrollServer::answer_counts() const {
  std::lock_guard lock(impl_->counts_mutex);
  return impl_->counts;
}

}  // namespace warren::control
