// The settings session: messages and the client (see session.h). The server's side is part of
// EnrollServer's loop (enroll.cc).

#include "control/session.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "control/mesh_session.h"

namespace warren::control {

using nlohmann::json;

namespace {

json message(std::string_view type) {
  json j;
  j["version"] = kProtocolVersion;
  j["type"] = std::string(type);
  return j;
}

}  // namespace

std::string session_request_to_json(const SessionRequest& r) {
  json j = message("session");
  j["public_key"] = r.public_key.to_base64();
  j["proof"] = to_base64(r.proof.span());
  return j.dump();
}

bool is_session_request(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return false;
  auto t = j.find("type");
  return t != j.end() && t->is_string() && t->get<std::string>() == "session";
}

Result<KeyProofMessage> parse_key_proof_message(std::string_view text, int version,
                                                std::string_view type, std::string_view what) {
  const std::string w(what);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error(EINVAL, "the " + w + " is not a JSON object");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned())
    return Error(EINVAL, "field \"version\" is missing or not a number");
  if (v->get<std::uint64_t>() != static_cast<std::uint64_t>(version))
    return Error(EPROTONOSUPPORT, "the " + w + " is of protocol version " +
                                      std::to_string(v->get<std::uint64_t>()) +
                                      ", this server speaks version " + std::to_string(version));
  auto t = j.find("type");
  if (t == j.end() || !t->is_string() || t->get<std::string>() != type)
    return Error(EINVAL, "not a " + std::string(type) + " message");
  auto k = j.find("public_key");
  std::optional<crypto::PublicKey> key;
  if (k != j.end() && k->is_string())
    key = crypto::PublicKey::from_base64(k->get<std::string>());
  if (!key || key->is_zero())
    return Error(EINVAL, "field \"public_key\" is not a WireGuard public key (base64)");
  auto p = j.find("proof");
  KeyProofMessage out{*key, {}};
  if (p == j.end() || !p->is_string() || !from_base64(p->get<std::string>(), out.proof))
    return Error(EACCES, "the " + w + " carries no well-formed proof of possession (32 bytes "
                         "of base64)");
  return out;
}

Result<SessionRequest> parse_session_request(std::string_view text) {
  auto m = parse_key_proof_message(text, kProtocolVersion, "session", "request");
  if (!m.ok())
    return m.error();
  return SessionRequest{m->public_key, EnrollProof(std::span<const std::uint8_t, 32>(m->proof))};
}

std::string session_settings_to_json(const Enrollment& settings) {
  json j = message("settings");
  j["settings"] = json::parse(enrollment_to_json(settings));
  return j.dump();
}

std::string session_ping_to_json() {
  return message("ping").dump();
}

std::string session_pong_to_json() {
  return message("pong").dump();
}

Result<SessionMessage> parse_session_message(std::string_view text) {
  auto fail = [](std::string m) -> Result<SessionMessage> { return Error(EPROTO, std::move(m)); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("the message is not a JSON object");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned() ||
      v->get<std::uint64_t>() != static_cast<std::uint64_t>(kProtocolVersion))
    return fail("the message is not of protocol version " + std::to_string(kProtocolVersion));
  SessionMessage m;
  auto ok = j.find("ok");
  if (ok != j.end() && ok->is_boolean() && !ok->get<bool>()) {
    m.type = SessionMessageType::kRefused;
    m.error_code = "internal";
    auto e = j.find("error");
    if (e != j.end() && e->is_object()) {
      if (auto c = e->find("code"); c != e->end() && c->is_string())
        m.error_code = c->get<std::string>();
      if (auto t = e->find("message"); t != e->end() && t->is_string())
        m.error_message = t->get<std::string>();
    }
    return m;
  }
  auto t = j.find("type");
  if (t == j.end() || !t->is_string())
    return fail("the message has no \"type\"");
  m.type_name = t->get<std::string>();
  if (m.type_name == "ping") {
    m.type = SessionMessageType::kPing;
  } else if (m.type_name == "pong") {
    m.type = SessionMessageType::kPong;
  } else if (m.type_name == "settings") {
    auto s = j.find("settings");
    if (s == j.end() || !s->is_object())
      return fail("a settings message without a \"settings\" object");
    try {
      m.settings = enrollment_from_json(s->dump());
    } catch (const ControlError& e) {
      return fail(std::string("malformed settings: ") + e.what());
    }
    m.type = SessionMessageType::kSettings;
  }
  return m;
}

Result<EnrollProof> make_session_proof(const crypto::PrivateKey& client_private,
                                       const crypto::PublicKey& challenge_key,
                                       const ExporterValue& channel) {
  return make_enroll_proof(client_private, challenge_key, channel, kSessionProofId);
}

bool verify_session_proof(const crypto::PrivateKey& challenge_private,
                          const ExporterValue& channel, const SessionRequest& r) {
  EnrollRequest as_enroll;
  as_enroll.invite_id = std::string(kSessionProofId);
  as_enroll.public_key = r.public_key;
  as_enroll.proof = r.proof;
  return verify_enroll_proof(challenge_private, channel, as_enroll);
}

// ---- client --------------------------------------------------------------------------------

SessionClient::SessionClient(SessionClientOptions options, const crypto::PrivateKey& key,
                             SettingsCallback on_settings,
                             std::function<void(const std::string&)> log)
    : options_(std::move(options)),
      key_(key),
      on_settings_(std::move(on_settings)),
      log_(std::move(log)) {}

SessionClient::~SessionClient() {
  stop();
}

void SessionClient::start() {
  thread_ = std::thread([this] { run(); });
}

void SessionClient::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    if (stream_)
      stream_->shutdown();
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void SessionClient::run() {
  auto backoff = std::chrono::milliseconds(1000);
  for (;;) {
    if (once())
      backoff = std::chrono::milliseconds(1000);
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, backoff, [&] { return stop_; }))
      return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void SessionClient::set_mesh_callbacks(std::function<void()> on_established,
                                       RosterCallback on_roster) {
  on_established_ = std::move(on_established);
  on_roster_ = std::move(on_roster);
}

void SessionClient::send(std::string message) {
  std::lock_guard lock(out_mutex_);
  outbox_.push_back(std::move(message));
  if (loop_)
    loop_->wake();
}

// Before the session is established: one exchange at a time with blocking frames. After the
// first settings message, the stream is read with read_available() under an event loop, so
// messages queued by send() go out promptly while the server is quiet:
//
//   socket readable / send() wake / 200 ms tick ─► drain TLS into `in` ─► whole frames ─► handle
//                                               └─► outbox ─► write_frame
bool SessionClient::once() {
  bool established = false;
  struct LoopGuard {  // loop_ is cleared before the loop goes
    SessionClient* self;
    ~LoopGuard() {
      std::lock_guard lock(self->out_mutex_);
      self->loop_ = nullptr;
      self->outbox_.clear();
    }
  } guard{this};
  try {
    auto hp = split_host_port(options_.control_endpoint);
    if (!hp)
      throw ControlError("the control endpoint " + options_.control_endpoint +
                         " is not host:port");
    auto deadline = SteadyClock::now() + options_.connect_timeout;
    auto stream = TlsStream::connect(hp->host, hp->port, options_.fingerprint, deadline);
    TlsStream* s = stream.get();
    {
      std::lock_guard lock(mutex_);
      if (stop_)
        return false;
      stream_ = std::move(stream);
    }
    auto challenge = parse_enroll_hello(s->read_frame(kMaxMessageBytes, deadline));
    if (!challenge.ok())
      throw ControlError(challenge.message());
    auto proof = make_session_proof(key_, *challenge, s->export_keying_material(kExporterLabel));
    if (!proof.ok())
      throw ControlError(proof.message());
    s->write_frame(session_request_to_json({crypto::derive_public_key(key_), *proof}), deadline);
    auto handle = [&](std::string_view frame) {
      if (established && on_roster_ && session_message_type(frame) == kRosterMessageType) {
        on_roster_(parse_roster_message(frame));
        return;
      }
      auto m = parse_session_message(frame);
      if (!m.ok())
        throw ControlError(m.message());
      if (m->type == SessionMessageType::kRefused)
        throw ControlError("refused (" + m->error_code + "): " + m->error_message);
      if (m->type == SessionMessageType::kPing)
        s->write_frame(session_pong_to_json(), SteadyClock::now() + options_.connect_timeout);
      if (m->type == SessionMessageType::kSettings) {
        on_settings_(*m->settings);
        if (!established) {
          established = true;
          ++sessions_;
          log_("settings session with " + options_.control_endpoint + " established");
          if (on_established_)
            on_established_();
        }
      }
    };
    // Until established: blocking frames of at most kMaxMessageBytes.
    while (!established)
      handle(s->read_frame(kMaxMessageBytes, SteadyClock::now() + options_.idle_timeout));

    auto loop = platform::make_event_loop();
    if (!loop.ok())
      throw ControlError("cannot make the session's event loop: " + loop.message());
    (*loop)->set_wake_handler([] {});
    if (auto st = (*loop)->add(s->native_handle(), platform::kReadable, [](std::uint32_t) {});
        !st)
      throw ControlError("cannot watch the session's socket: " + st.message());
    {
      std::lock_guard lock(out_mutex_);
      loop_ = loop->get();
    }
    std::string in;
    std::vector<std::uint8_t> chunk(64 * 1024);
    auto last_heard = SteadyClock::now();
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stop_)
          break;
      }
      for (;;) {  // what TLS holds now (also records it buffered before the loop)
        const std::size_t n = s->read_available(chunk, SteadyClock::now() + options_.connect_timeout);
        if (n == 0)
          break;
        in.append(reinterpret_cast<const char*>(chunk.data()), n);
        last_heard = SteadyClock::now();
      }
      std::size_t at = 0;
      while (in.size() - at >= 4) {
        const auto* b = reinterpret_cast<const std::uint8_t*>(in.data() + at);
        const std::size_t len = (std::size_t{b[0]} << 24) | (std::size_t{b[1]} << 16) |
                                (std::size_t{b[2]} << 8) | b[3];
        if (len > kMaxRosterMessageBytes)
          throw ControlError("the server sent a frame of " + std::to_string(len) +
                             " bytes (at most " + std::to_string(kMaxRosterMessageBytes) + ")");
        if (in.size() - at - 4 < len)
          break;
        handle(std::string_view(in).substr(at + 4, len));
        at += 4 + len;
      }
      in.erase(0, at);
      std::vector<std::string> out;
      {
        std::lock_guard lock(out_mutex_);
        out.swap(outbox_);
      }
      for (const auto& o : out)
        s->write_frame(o, SteadyClock::now() + options_.connect_timeout);
      if (SteadyClock::now() - last_heard > options_.idle_timeout)
        throw ControlError("nothing heard for " +
                           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              options_.idle_timeout)
                                              .count()) +
                           " s");
      if (auto r = (*loop)->run_once(std::chrono::milliseconds(200)); !r.ok())
        throw ControlError("session loop: " + r.message());
    }
  } catch (const std::exception& e) {  // ControlError mostly; nothing may end the thread
    std::lock_guard lock(mutex_);
    if (!stop_)
      log_("settings session with " + options_.control_endpoint + ": " + e.what() +
           "; keeping the current settings, reconnecting");
  }
  std::lock_guard lock(mutex_);
  stream_.reset();
  return established;
}

}  // namespace warren::control
