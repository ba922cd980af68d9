// Enrollment protocol: invites, JSON messages, the client call and the server (see enroll.h).

#include "control/enroll.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "crypto/blake2s.h"
#include "crypto/random.h"

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
  auto fail = [](std::string m) -> Result<Invite> {
    return Error(EINVAL, "invalid invite: " + m);
  };
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

bool verify_enroll_proof(const crypto::PrivateKey& challenge_private,
                         const ExporterValue& channel, const EnrollRequest& request) {
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
  return j.dump();
}

Result<crypto::PublicKey> parse_enroll_hello(std::string_view text) {
  auto fail = [](std::string m) -> Result<crypto::PublicKey> { return Error(EPROTO, std::move(m)); };
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

struct EnrollServer::Conn {
  // The TCP connection, shared with the TLS stream once the handshake is done; stop() shuts
  // it down from another thread (TcpConnection orders that against close()).
  std::shared_ptr<platform::TcpConnection> tcp;
  std::unique_ptr<TlsStream> stream;  // set once the handshake is done (guarded by mutex_)
  std::thread thread;
  bool done = false;  // guarded by mutex_
};

EnrollServer::EnrollServer(TlsIdentity identity, std::string_view listen, EnrollHandler handler,
                           EnrollServerOptions options)
    : acceptor_(std::move(identity), listen), handler_(std::move(handler)), options_(options) {}

EnrollServer::~EnrollServer() {
  stop();
}

void EnrollServer::start() {
  accept_thread_ = std::thread([this] { accept_loop(); });
}

void EnrollServer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !accept_thread_.joinable() && conns_.empty())
      return;
    stopping_ = true;
    for (auto& c : conns_)
      c->tcp->shutdown();
  }
  acceptor_.interrupt();
  if (accept_thread_.joinable())
    accept_thread_.join();
  std::vector<std::unique_ptr<Conn>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(conns_);
  }
  for (auto& c : all)
    if (c->thread.joinable())
      c->thread.join();
}

std::size_t EnrollServer::active_connections() const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(
      std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return !c->done; }));
}

std::uint64_t EnrollServer::requests_served() const {
  std::lock_guard lock(mutex_);
  return served_;
}

void EnrollServer::reap() {
  std::vector<std::unique_ptr<Conn>> finished;
  {
    std::lock_guard lock(mutex_);
    auto it =
        std::stable_partition(conns_.begin(), conns_.end(), [](const auto& c) { return !c->done; });
    std::move(it, conns_.end(), std::back_inserter(finished));
    conns_.erase(it, conns_.end());
  }
  for (auto& c : finished)
    c->thread.join();
}

void EnrollServer::accept_loop() {
  for (;;) {
    auto tcp = acceptor_.accept();
    if (!tcp)
      return;
    reap();
    std::lock_guard lock(mutex_);
    if (stopping_ || conns_.size() >= options_.max_connections) {
      tcp->close();  // over the cap: refuse at once rather than queue
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->tcp = std::move(tcp);
    Conn* raw = c.get();
    conns_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] { serve(*raw); });
  }
}

void EnrollServer::serve(Conn& c) {
  const Deadline deadline = SteadyClock::now() + options_.request_timeout;
  std::unique_ptr<TlsStream> stream;
  try {
    stream = acceptor_.handshake(c.tcp, deadline);  // closes the connection when destroyed
    {
      std::lock_guard lock(mutex_);
      c.stream = std::move(stream);
      if (stopping_)
        c.stream->shutdown();
    }
    TlsStream& s = *c.stream;
    // A fresh challenge key for this connection only; its private half dies with this scope.
    const crypto::PrivateKey challenge =
        crypto::generate_private_key(crypto::SystemRandom::instance());
    s.write_frame(enroll_hello_to_json(crypto::derive_public_key(challenge)), deadline);
    EnrollReply reply;
    std::string body;
    try {
      body = s.read_frame(options_.max_request_bytes, deadline);
    } catch (const ControlError& e) {
      if (std::string_view(e.what()).find("exceeds the limit") == std::string_view::npos)
        throw;
      reply = EnrollReply::failure("invalid_request", e.what());
    }
    if (reply.error_code.empty()) {
      auto req = parse_enroll_request(body);
      secure_zero(body.data(), body.size());
      if (!req.ok()) {
        reply = EnrollReply::failure(std::string(request_error_code(req.error())), req.message());
      } else if (!verify_enroll_proof(challenge, s.export_keying_material(kExporterLabel), *req)) {
        reply = EnrollReply::failure(
            "proof_invalid",
            "the request does not prove possession of the private key of its public key");
      } else {
        try {
          reply = handler_(*req);
        } catch (const std::exception& e) {
          reply = EnrollReply::failure("internal", std::string("internal error: ") + e.what());
        }
      }
    }
    s.write_frame(enroll_reply_to_json(reply), deadline);
    s.close(deadline);
    std::lock_guard lock(mutex_);
    ++served_;
  } catch (const std::exception&) {
    // Handshake failure, timeout or a peer that went away: nothing to answer. (Anything else
    // thrown here, e.g. bad_alloc, also ends only this connection.)
  }
  std::lock_guard lock(mutex_);
  c.stream.reset();
  c.tcp->close();  // also when the handshake failed
  c.done = true;
}

}  // namespace warren::control
