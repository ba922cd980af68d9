// The enrollment control channel's messages (src/control): invite lines, the client's request
// (and its proof of possession, checked against a fixed challenge), the server's enrollment
// reply and hello (JSON), and the status document. The first byte picks the parser. Contract: bad input is an error value or a ControlError naming the problem (no other
// exception, no crash); whatever parses formats back into text that parses to the same value.

#include <string>

#include "control/enroll.h"
#include "control/status.h"
#include "control/tls.h"
#include "fuzz_support.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
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
