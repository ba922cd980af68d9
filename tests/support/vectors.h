#pragma once
// Reads the known-answer vector files in tests/vectors (copies of ../shared/vectors). The files
// are flat JSON objects of hex strings, so a key lookup by text search is all the tests need.

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/encoding.h"

namespace warren::test {

inline std::string read_vector_file(const std::string& name) {
  std::ifstream in(std::string(WARREN_VECTORS_DIR) + "/" + name);
  if (!in)
    throw std::runtime_error("cannot open vector file " + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The string value of the first `"key": "value"` pair with this exact key at or after `from`
/// (an occurrence of the text as a value, not a key, is skipped).
inline std::string json_string(const std::string& json, const std::string& key,
                               std::size_t from = 0) {
  const std::string needle = "\"" + key + "\"";
  std::size_t pos = from;
  while ((pos = json.find(needle, pos)) != std::string::npos) {
    std::size_t p = pos + needle.size();
    while (p < json.size() && (json[p] == ' ' || json[p] == '\t' || json[p] == '\n'))
      ++p;
    if (p < json.size() && json[p] == ':') {
      const std::size_t open = json.find('"', p);
      const std::size_t close = open == std::string::npos ? open : json.find('"', open + 1);
      if (close == std::string::npos)
        break;
      return json.substr(open + 1, close - open - 1);
    }
    pos = p;  // the needle was a value, not a key
  }
  throw std::runtime_error("vector key not found: " + key);
}

inline std::vector<std::uint8_t> json_hex(const std::string& json, const std::string& key,
                                          std::size_t from = 0) {
  auto v = from_hex(json_string(json, key, from));
  if (!v)
    throw std::runtime_error("vector value is not hex: " + key);
  return *v;
}

}  // namespace warren::test

namespace warren::test {
/// The text of a JSON number value `"key": 123`.
inline std::string json_number(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\"";
  auto k = json.find(needle);
  if (k == std::string::npos)
    throw std::runtime_error("vector key not found: " + key);
  auto p = json.find_first_of("0123456789", json.find(':', k));
  auto e = json.find_first_not_of("0123456789", p);
  return json.substr(p, e - p);
}
}  // namespace warren::test
