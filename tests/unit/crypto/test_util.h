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

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A vector file under WARREN_VECTORS_DIR.
class VectorFile {
 public:
  explicit VectorFile(const std::string& name)
      : text_(read_text_file(std::string(WARREN_VECTORS_DIR) + "/" + name)) {}

  /// The string value of the first `"key": "value"` pair with this exact key.
  std::string string(std::string_view key) const {
    const std::string needle = "\"" + std::string(key) + "\"";
    std::size_t pos = 0;
    while ((pos = text_.find(needle, pos)) != std::string::npos) {
      std::size_t p = pos + needle.size();
      while (p < text_.size() && (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n')) {
        ++p;
      }
      if (p < text_.size() && text_[p] == ':') {
        std::size_t open = text_.find('"', p);
        std::size_t close = open == std::string::npos ? open : text_.find('"', open + 1);
        if (close == std::string::npos) {
          break;
        }
        return text_.substr(open + 1, close - open - 1);
      }
      pos = p;  // the needle was a value, not a key
    }
    throw std::runtime_error("vector key not found: " + std::string(key));
  }

  ByteVec bytes(std::string_view key) const { return hex(string(key)); }

 private:
  std::string text_;
};

}  // namespace warren::test
