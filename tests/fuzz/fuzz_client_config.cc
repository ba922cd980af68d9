// The client's wg-quick .conf parser (src/client/config.h): parse_config on arbitrary text. A bad
// file throws ConfigError (no other exception, no crash); a good one formats back with
// format_config into text that parses to the same configuration (format is a fixed point), so
// `warren join` never writes a file `warren up` reads differently. parse_host_port gets the text.

#include <string>

#include "client/config.h"
#include "fuzz_support.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "/nonexistent/warren-fuzz/wg0.conf";
  try {
    client::ClientConfig c = client::parse_config(text, path);
    WARREN_FUZZ_CHECK(c.interface == "wg0");
    const std::string once = client::format_config(c);
    client::ClientConfig again = client::parse_config(once, path);  // must not throw
    WARREN_FUZZ_CHECK(client::format_config(again) == once);
    WARREN_FUZZ_CHECK(again.peers.size() == c.peers.size());
    WARREN_FUZZ_CHECK(again.addresses == c.addresses);
  } catch (const client::ConfigError& e) {
    WARREN_FUZZ_CHECK(std::string(e.what()).size() > 0);
  }
  if (auto hp = client::parse_host_port(text)) {
    auto back = client::parse_host_port(hp->to_string());
    WARREN_FUZZ_CHECK(back && *back == *hp);
  }
  return 0;
}
