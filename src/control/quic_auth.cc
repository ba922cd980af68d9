// The QUIC transport's hello, proof, server messages and framing (see quic_auth.h).

#include "control/quic_auth.h"

#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "control/session.h"
#include "crypto/blake2s.h"

namespace warren::control {

using nlohmann::json;

namespace {

/// BLAKE2s-256 keyed with dh over context || exporter || client key (quic_auth.h).
QuicProof proof_from_dh(const crypto::SharedSecret& dh, const ExporterValue& exporter,
                        const crypto::PublicKey& client_key) {
  std::vector<std::uint8_t> msg;
  msg.reserve(kQuicProofContext.size() + exporter.size() + client_key.bytes.size());
  msg.insert(msg.end(), kQuicProofContext.begin(), kQuicProofContext.end());
  msg.insert(msg.end(), exporter.data(), exporter.data() + exporter.size());
  msg.insert(msg.end(), client_key.bytes.begin(), client_key.bytes.end());
  QuicProof out;
  crypto::blake2s_keyed(dh.span(), msg, out.span());
  secure_zero(msg.data(), msg.size());  // holds the exporter value
  return out;
}

std::uint32_t load_be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
         std::uint32_t{p[3]};
}

}  // namespace

Result<QuicProof> make_quic_proof(const crypto::PrivateKey& client_private,
                                  const crypto::PublicKey& server_public,
                                  const ExporterValue& exporter) {
  crypto::SharedSecret dh;  // wiped by its destructor
  if (!crypto::x25519(client_private, server_public, dh))
    return Error(EINVAL, "the server's public key is invalid (a low-order point)");
  return proof_from_dh(dh, exporter, crypto::derive_public_key(client_private));
}

Result<std::string> make_quic_hello(const crypto::PrivateKey& client_private,
                                    const crypto::PublicKey& server_public,
                                    const ExporterValue& exporter) {
  auto proof = make_quic_proof(client_private, server_public, exporter);
  if (!proof)
    return proof.error();
  json j;
  j["version"] = kQuicAuthVersion;
  j["type"] = "quic_hello";
  j["public_key"] = crypto::derive_public_key(client_private).to_base64();
  j["proof"] = to_base64(proof->span());
  return j.dump();
}

Result<QuicHello> parse_quic_hello(std::string_view text) {
  auto m = parse_key_proof_message(text, kQuicAuthVersion, "quic_hello", "hello");
  if (!m.ok())
    return m.error();
  QuicHello h{m->public_key, QuicProof(std::span<const std::uint8_t, 32>(m->proof))};
  secure_zero(m->proof.data(), m->proof.size());
  return h;
}

std::string_view quic_error_code(const Error& e) {
  if (e.code == EPROTONOSUPPORT)
    return "unsupported_version";
  if (e.code == EACCES)
    return "proof_invalid";
  return "invalid_request";
}

bool verify_quic_hello(const crypto::PrivateKey& server_private, const ExporterValue& exporter,
                       const QuicHello& hello) {
  crypto::SharedSecret dh;
  if (!crypto::x25519(server_private, hello.public_key, dh))
    return false;  // a low-order public key: nobody holds its private key
  const QuicProof expected = proof_from_dh(dh, exporter, hello.public_key);
  return constant_time_equal(expected.span(), hello.proof.span());
}

std::string quic_error_to_json(std::string_view code, std::string_view message) {
  json j;
  j["version"] = kQuicAuthVersion;
  j["type"] = "error";
  j["code"] = std::string(code);
  j["message"] = std::string(message);
  // A message with bytes that are not UTF-8 must not throw: replace them.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string quic_assignment_to_json(const Enrollment& assignment) {
  return session_settings_to_json(assignment);
}

Result<QuicServerMessage> parse_quic_server_message(std::string_view text) {
  auto fail = [](std::string m) -> Result<QuicServerMessage> {
    return Error(EPROTO, std::move(m));
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("the server's message is not a JSON object");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string())
    return fail("the server's message has no \"type\"");
  const std::string type = t->get<std::string>();
  QuicServerMessage m;
  if (type == "settings") {
    auto s = parse_session_message(text);
    if (!s)
      return fail("malformed assignment: " + s.message());
    if (s->type != SessionMessageType::kSettings || !s->settings)
      return fail("malformed assignment");
    m.assignment = std::move(s->settings);
    return m;
  }
  if (type != "error")
    return fail("the server's message has an unknown type");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_unsigned() ||
      v->get<std::uint64_t>() != static_cast<std::uint64_t>(kQuicAuthVersion))
    return fail("the server's error is not of QUIC protocol version " +
                std::to_string(kQuicAuthVersion));
  m.error_code = "internal";
  if (auto c = j.find("code"); c != j.end() && c->is_string() && !c->get<std::string>().empty())
    m.error_code = c->get<std::string>();
  if (auto s = j.find("message"); s != j.end() && s->is_string())
    m.error_message = s->get<std::string>();
  return m;
}

Result<std::vector<std::uint8_t>> encode_frame(std::string_view body) {
  if (body.size() > kMaxQuicFrameBytes)
    return Error(EMSGSIZE, "a frame of " + std::to_string(body.size()) +
                               " bytes is over the limit of " + std::to_string(kMaxQuicFrameBytes));
  std::vector<std::uint8_t> out(kQuicFrameHeaderBytes + body.size());
  const auto n = static_cast<std::uint32_t>(body.size());
  out[0] = static_cast<std::uint8_t>(n >> 24);
  out[1] = static_cast<std::uint8_t>(n >> 16);
  out[2] = static_cast<std::uint8_t>(n >> 8);
  out[3] = static_cast<std::uint8_t>(n);
  std::copy(body.begin(), body.end(), out.begin() + kQuicFrameHeaderBytes);
  return out;
}

// ---- FrameReader ----------------------------------------------------------------------------

Status FrameReader::feed(ConstBytes data) {
  if (failed_)
    return Error(EMSGSIZE, "a frame of " + std::to_string(announced_) +
                               " bytes is over the limit of " + std::to_string(max_body_));
  // Drop what next() already returned before growing the buffer, so it holds at most one
  // partial frame plus the new chunk.
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    scan_ -= start_;
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data.begin(), data.end());
  check_headers();
  if (failed_)
    return Error(EMSGSIZE, "a frame of " + std::to_string(announced_) +
                               " bytes is over the limit of " + std::to_string(max_body_));
  return {};
}

void FrameReader::check_headers() {
  // A length is checked as soon as its 4 bytes are here, not when the body is complete: an
  // oversized announcement fails at once instead of after the peer sent 4 GiB.
  while (!failed_ && scan_ + kQuicFrameHeaderBytes <= buffer_.size()) {
    const std::size_t length = load_be32(buffer_.data() + scan_);
    if (length > max_body_) {
      failed_ = true;
      announced_ = length;
      return;
    }
    scan_ += kQuicFrameHeaderBytes + length;
  }
}

std::optional<std::string> FrameReader::next() {
  if (buffered() < kQuicFrameHeaderBytes)
    return std::nullopt;
  if (start_ >= scan_)  // its header is the oversized one (or not checked yet)
    return std::nullopt;
  const std::size_t length = load_be32(buffer_.data() + start_);
  if (buffered() < kQuicFrameHeaderBytes + length)
    return std::nullopt;
  const auto* body = reinterpret_cast<const char*>(buffer_.data() + start_ + kQuicFrameHeaderBytes);
  std::string out(body, length);
  start_ += kQuicFrameHeaderBytes + length;
  return out;
}

}  // namespace warren::control
