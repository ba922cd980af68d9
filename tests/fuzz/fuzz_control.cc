// The enrollment control channel's messages (src/control): invite lines, the client's request
// (and its proof of possession, checked against a fixed challenge), the server's enrollment
// reply and hello (JSON), the status document, and the settings session's messages and request
// (first byte 0xF0 and up: kept apart so that the older seeds keep their parsers), and the QUIC
// transport's hello, server message and frame reader (0xF5..0xF7, control/quic_auth.h). The first
// byte picks the parser. Contract: bad input is an error value or a ControlError naming the problem
// (no other exception, no crash); whatever parses formats back into text that parses to the same
// value.

#include <string>

#include "control/enroll.h"
#include "control/mesh_session.h"
#include "control/quic_auth.h"
#include "control/session.h"
#include "control/status.h"
#include "control/tls.h"
#include "fuzz_support.h"

using namespace warren;

namespace {

/// The mesh messages of the session (control/mesh_session.h), `parser` 0xF2..0xF4: roster,
/// roster_request, endpoints. Whatever parses formats back to the same value.
int fuzz_mesh_session(std::uint8_t parser, std::string_view text) {
  (void)control::session_message_type(text);
  if (parser == 0xF2) {
    auto d = control::parse_roster_message(text);
    if (!d.ok()) {
      WARREN_FUZZ_CHECK(!d.message().empty());
      return 0;
    }
    auto back = control::parse_roster_message(control::roster_message_to_json(*d));
    WARREN_FUZZ_CHECK(back.ok() && *back == *d);
  } else if (parser == 0xF3) {
    auto r = control::parse_roster_request(text);
    if (!r.ok()) {
      WARREN_FUZZ_CHECK(!r.message().empty());
      return 0;
    }
    auto back = control::parse_roster_request(control::roster_request_to_json(*r));
    WARREN_FUZZ_CHECK(back.ok() && *back == *r);
  } else {
    auto r = control::parse_endpoints(text);
    if (!r.ok()) {
      WARREN_FUZZ_CHECK(!r.message().empty());
      return 0;
    }
    auto back = control::parse_endpoints(control::endpoints_to_json(*r));
    WARREN_FUZZ_CHECK(back.ok() && *back == *r);
    auto checked = control::check_endpoint_report(*r);
    WARREN_FUZZ_CHECK(checked.kept.local.size() + checked.rejected.size() >= r->local.size());
  }
  return 0;
}

/// The QUIC transport's messages (control/quic_auth.h): 0xF5 the client's hello, 0xF6 the
/// server's answer, 0xF7 the stream's framing (the input as a byte stream cut into chunks).
int fuzz_quic(std::uint8_t parser, std::string_view text) {
  if (parser == 0xF5) {
    auto h = control::parse_quic_hello(text);
    if (!h.ok()) {
      WARREN_FUZZ_CHECK(!h.message().empty());
      WARREN_FUZZ_CHECK(!control::quic_error_code(h.error()).empty());
      return 0;
    }
    WARREN_FUZZ_CHECK(!h->public_key.is_zero());
    // A random proof for whatever key neither crashes nor passes.
    static const crypto::PrivateKey server = [] {
      crypto::PrivateKey k;
      k.data()[0] = 1;
      return k;
    }();
    static const control::ExporterValue exporter;
    (void)control::verify_quic_hello(server, exporter, *h);
    return 0;
  }
  if (parser == 0xF6) {
    auto m = control::parse_quic_server_message(text);
    if (!m.ok()) {
      WARREN_FUZZ_CHECK(!m.message().empty());
      return 0;
    }
    if (m->assignment) {
      auto back =
          control::parse_quic_server_message(control::quic_assignment_to_json(*m->assignment));
      WARREN_FUZZ_CHECK(back.ok() && back->assignment);
      WARREN_FUZZ_CHECK(control::enrollment_to_json(*back->assignment) ==
                        control::enrollment_to_json(*m->assignment));
    } else {
      WARREN_FUZZ_CHECK(!m->error_code.empty());
      auto back = control::parse_quic_server_message(
          control::quic_error_to_json(m->error_code, m->error_message));
      WARREN_FUZZ_CHECK(back.ok() && !back->assignment && back->error_code == m->error_code);
    }
    return 0;
  }
  // Framing: a small limit so that the oversized path is reached; chunk sizes from the input.
  control::FrameReader reader(256);
  std::size_t total = 0, at = 0;
  while (at < text.size()) {
    const std::size_t chunk = 1 + static_cast<std::uint8_t>(text[at]) % 16;
    const std::string_view piece = text.substr(at, chunk);
    at += piece.size();
    const Status st =
        reader.feed(ConstBytes(reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size()));
    while (auto body = reader.next()) {
      WARREN_FUZZ_CHECK(body->size() <= 256);
      auto frame = control::encode_frame(*body);
      WARREN_FUZZ_CHECK(frame.ok() && frame->size() == body->size() + 4);
      total += frame->size();
    }
    if (!st.ok()) {
      WARREN_FUZZ_CHECK(reader.failed());
      break;
    }
  }
  WARREN_FUZZ_CHECK(total + reader.buffered() <= text.size());
  return 0;
}

/// The settings session's messages (control/session.h): `parser` 0xF0 = any message either
/// side may receive, 0xF1 = the client's session request, 0xF2..0xF4 the mesh messages,
/// 0xF5..0xF7 the QUIC ones; the rest of 0xF8..0xFF as 0xF0 and 0xF1 by parity.
int fuzz_session(std::uint8_t parser, std::string_view text) {
  if (parser >= 0xF2 && parser <= 0xF4)
    return fuzz_mesh_session(parser, text);
  if (parser >= 0xF5 && parser <= 0xF7)
    return fuzz_quic(parser, text);
  if (parser % 2 == 0) {
    auto m = control::parse_session_message(text);
    if (!m.ok()) {
      WARREN_FUZZ_CHECK(!m.message().empty());
      return 0;
    }
    if (m->type == control::SessionMessageType::kSettings) {
      WARREN_FUZZ_CHECK(m->settings.has_value());
      auto back = control::parse_session_message(control::session_settings_to_json(*m->settings));
      WARREN_FUZZ_CHECK(back.ok() && back->type == control::SessionMessageType::kSettings);
      WARREN_FUZZ_CHECK(control::enrollment_to_json(*back->settings) ==
                        control::enrollment_to_json(*m->settings));
    }
    if (m->type == control::SessionMessageType::kPing)
      WARREN_FUZZ_CHECK(control::parse_session_message(control::session_ping_to_json())->type ==
                        control::SessionMessageType::kPing);
    return 0;
  }
  auto req = control::parse_session_request(text);
  if (!req.ok()) {
    WARREN_FUZZ_CHECK(!req.message().empty());
    return 0;
  }
  WARREN_FUZZ_CHECK(control::is_session_request(text));
  auto back = control::parse_session_request(control::session_request_to_json(*req));
  WARREN_FUZZ_CHECK(back.ok());
  WARREN_FUZZ_CHECK(back->public_key == req->public_key);
  WARREN_FUZZ_CHECK(constant_time_equal(back->proof.span(), req->proof.span()));
  // A random proof for whatever key: checking it neither crashes nor passes.
  static const crypto::PrivateKey challenge = [] {
    crypto::PrivateKey k;
    k.data()[0] = 1;
    return k;
  }();
  static const control::ExporterValue channel;
  (void)control::verify_session_proof(challenge, channel, *req);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] >= 0xF0)
    return fuzz_session(data[0], text);
  switch (data[0] % 5) {
    case 0: {
      auto inv = control::parse_invite(text);
      if (!inv.ok()) {
        WARREN_FUZZ_CHECK(!inv.message().empty());
        break;
      }
      const std::string line = control::format_invite(*inv);
      auto back = control::parse_invite(line);
      WARREN_FUZZ_CHECK(back.ok());
      WARREN_FUZZ_CHECK(back->id == inv->id);
      WARREN_FUZZ_CHECK(back->control_endpoint == inv->control_endpoint);
      WARREN_FUZZ_CHECK(back->fingerprint == inv->fingerprint);
      WARREN_FUZZ_CHECK(control::format_invite(*back) == line);
      break;
    }
    case 1: {
      auto req = control::parse_enroll_request(text);
      if (!req.ok()) {
        WARREN_FUZZ_CHECK(!req.message().empty());
        break;
      }
      const std::string json = control::enroll_request_to_json(*req);
      auto back = control::parse_enroll_request(json);
      WARREN_FUZZ_CHECK(back.ok());
      WARREN_FUZZ_CHECK(back->invite_id == req->invite_id);
      WARREN_FUZZ_CHECK(back->name == req->name);
      WARREN_FUZZ_CHECK(back->public_key == req->public_key);
      WARREN_FUZZ_CHECK(back->proof.span().size() == 32 &&
                        constant_time_equal(back->proof.span(), req->proof.span()));
      // Whatever the request claims, checking its proof neither crashes nor (with a random
      // proof) passes; a proof for a key nobody holds cannot be made at all.
      static const crypto::PrivateKey challenge = [] {
        crypto::PrivateKey k;
        k.data()[0] = 1;
        return k;
      }();
      static const control::ExporterValue channel;
      (void)control::verify_enroll_proof(challenge, channel, *req);
      break;
    }
    case 4: {
      auto key = control::parse_enroll_hello(text);
      if (!key.ok()) {
        WARREN_FUZZ_CHECK(!key.message().empty());
        break;
      }
      auto back = control::parse_enroll_hello(control::enroll_hello_to_json(*key));
      WARREN_FUZZ_CHECK(back.ok() && *back == *key);
      break;
    }
    case 2: {
      try {
        const control::Enrollment e = control::enrollment_from_json(text);
        const std::string json = control::enrollment_to_json(e);
        WARREN_FUZZ_CHECK(control::enrollment_to_json(control::enrollment_from_json(json)) == json);
      } catch (const control::ControlError&) {
      }
      break;
    }
    default: {
      try {
        const control::InterfaceStatus s = control::status_from_json(text);
        const std::string json = control::to_json(s);
        WARREN_FUZZ_CHECK(control::to_json(control::status_from_json(json)) == json);
      } catch (const control::ControlError&) {
      }
      break;
    }
  }
  return 0;
}
