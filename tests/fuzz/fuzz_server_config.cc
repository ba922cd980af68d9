// The server's TOML configuration (src/server/config.h): parse_config on arbitrary text. The
// contract: a bad file throws ConfigError with a message that names the file (no other exception,
// no crash); a good one yields a configuration whose values are within their documented bounds.
// parse_duration and valid_client_name get the same text.

#include <string>

#include "fuzz_support.h"
#include "server/config.h"

using namespace warren;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "/nonexistent/warren-fuzz/server.toml";
  try {
    server::ServerConfig c = server::parse_config(text, path);
    WARREN_FUZZ_CHECK(c.listen_port != 0);          // "must be 1..65535"
    WARREN_FUZZ_CHECK(!c.public_endpoint.empty());  // required
    WARREN_FUZZ_CHECK(!c.private_key_file.empty() && c.private_key_file[0] == '/');  // absolute
    WARREN_FUZZ_CHECK(!c.database.empty() && c.database[0] == '/');
    WARREN_FUZZ_CHECK(c.ipv4 || c.ipv6);
  } catch (const server::ConfigError& e) {
    const std::string m = e.what();
    WARREN_FUZZ_CHECK(m.find("server.toml") != std::string::npos);
  }
  (void)server::parse_duration(text);
  (void)server::valid_client_name(text);
  return 0;
}
