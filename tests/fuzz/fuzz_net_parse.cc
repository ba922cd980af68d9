// Text parsing of addresses, prefixes and endpoints (UAPI values, config files) and of keys
// (hex, base64). Whatever parses must print back to a string that parses to the same value.

#include <array>
#include <string>

#include "base/encoding.h"
#include "fuzz_support.h"
#include "net/ip_address.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto a = net::IpAddress::parse(text)) {
    auto b = net::IpAddress::parse(a->to_string());
    WARREN_FUZZ_CHECK(b && *b == *a);
  }
  if (auto p = net::Prefix::parse(text)) {
    WARREN_FUZZ_CHECK(p->length <= p->max_length());
    auto q = net::Prefix::parse(p->to_string());
    WARREN_FUZZ_CHECK(q && *q == *p);
    WARREN_FUZZ_CHECK(p->canonical().contains(p->address));
  }
  if (auto e = net::Endpoint::parse(text)) {
    auto f = net::Endpoint::parse(e->to_string());
    WARREN_FUZZ_CHECK(f && *f == *e);
  }
  std::array<std::uint8_t, 32> key{};
  if (from_hex(text, key))
    WARREN_FUZZ_CHECK(to_hex(key).size() == 64);
  if (from_base64(text, key))
    WARREN_FUZZ_CHECK(to_base64(key) == text);
  if (auto bytes = from_hex(text))
    WARREN_FUZZ_CHECK(bytes->size() * 2 == text.size());
  return 0;
}
