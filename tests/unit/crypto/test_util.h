#pragma once
// Helpers for the crypto tests: hex literals and string lookups in the JSON vector files.
// The vector files are flat objects of "name": "hex" pairs, so a string search is enough and
// keeps the tests free of a JSON dependency.

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/encoding.h"
#include "support/vectors.h"

namespace warren::test {

using ByteVec = std::vector<std::uint8_t>;

/// Decodes a hex literal; throws on malformed input so a typo fails the test loudly.
inline ByteVec hex(std::string_view text) {
  auto v = from_hex(text);
  if (!v) {
    throw std::invalid_argument("bad hex literal in test: " + std::string(text));
  }
  return *v;
}

template <std::size_t N>
std::array<std::uint8_t, N> hex_array(std::string_view text) {
  std::array<std::uint8_t, N> out{};
  if (!from_hex(text, out)) {
    throw std::invalid_argument("bad hex: " + std::string(text));
  }
  return out;
}

inline ByteVec ascii(std::string_view s) {
  return ByteVec(s.begin(), s.end());
}

/// A vector file under WARREN_VECTORS_DIR (read and searched by tests/support/vectors.h).
class VectorFile {
 public:
  explicit VectorFile(const std::string& name) : text_(read_vector_file(name)) {}

  /// The string value of the first `"key": "value"` pair with this exact key.
  std::string string(std::string_view key) const { return json_string(text_, std::string(key)); }

  ByteVec bytes(std::string_view key) const { return hex(string(key)); }

 private:
  std::string text_;
};

}  // namespace warren::test
