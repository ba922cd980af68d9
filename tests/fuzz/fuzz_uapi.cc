// The UAPI: the request framing (RequestReader fed the input in pieces whose sizes come from the
// input), and every `set` body through parse_set; a body that parses is applied to a Device and
// read back with format_get, which must produce a well-formed reply.

#include "fuzz_support.h"
#include "uapi/protocol.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Cursor in(data, size);
  const std::size_t chunk = 1 + in.u8() % 64;
  const auto rest = in.rest();
  const std::string_view text(reinterpret_cast<const char*>(rest.data()), rest.size());

  // Whole input as a set body: the parser on its own.
  (void)uapi::parse_set(text);

  uapi::RequestReader reader(4096);
  for (std::size_t off = 0; off < text.size(); off += chunk) {
    reader.feed(text.substr(off, chunk));
    WARREN_FUZZ_CHECK(reader.pending_bytes() <= 4096 + chunk);
    while (auto req = reader.next()) {
      if (req->kind == uapi::RequestKind::kReject)
        WARREN_FUZZ_CHECK(req->errno_value > 0);
      if (req->kind != uapi::RequestKind::kSet)
        continue;
      auto parsed = uapi::parse_set(req->body);
      if (!parsed) {
        WARREN_FUZZ_CHECK(parsed.error().code > 0 && !parsed.error().message.empty());
        continue;
      }
      test::ScriptedRandom rng(3);
      wg::Device dev(rng);
      test::CollectingSink sink;
      auto e = dev.apply(*parsed, {}, sink);
      if (!e)
        WARREN_FUZZ_CHECK(e.code() > 0);
      const std::string reply = uapi::format_get(dev.snapshot());
      WARREN_FUZZ_CHECK(reply.size() >= 9 && reply.substr(reply.size() - 9) == "errno=0\n\n");
    }
    if (reader.closed())
      break;
  }
  return 0;
}
