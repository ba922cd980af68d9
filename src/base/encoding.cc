#include "base/encoding.h"

#include <array>

namespace warren {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// The two base64 alphabets (RFC 4648 §4 and §5) differ only in the characters for 62 and 63.
struct B64Alphabet {
  const char* digits;
  char c62;
  char c63;
};
constexpr B64Alphabet kStd{kB64, '+', '/'};
constexpr B64Alphabet kUrl{kB64Url, '-', '_'};

int b64_value(char c, const B64Alphabet& a) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == a.c62)
    return 62;
  if (c == a.c63)
    return 63;
  return -1;
}

std::string encode_b64(std::span<const std::uint8_t> bytes, const B64Alphabet& a, bool pad) {
  std::string s;
  s.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int k = 3; k >= 0; --k)
      s.push_back(a.digits[(v >> (6 * k)) & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    std::uint32_t v = bytes[i] << 16;
    s.push_back(a.digits[(v >> 18) & 63]);
    s.push_back(a.digits[(v >> 12) & 63]);
    if (pad)
      s += "==";
  } else if (rest == 2) {
    std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    s.push_back(a.digits[(v >> 18) & 63]);
    s.push_back(a.digits[(v >> 12) & 63]);
    s.push_back(a.digits[(v >> 6) & 63]);
    if (pad)
      s.push_back('=');
  }
  return s;
}

/// The one decoder: unpadded base64 over `a`, written straight into `out` (so a caller decoding
/// a secret never gets a heap copy of it). Returns the number of bytes written, or nullopt on a
/// character outside the alphabet, a length = 1 (mod 4), non-zero trailing bits (non-canonical
/// encoding) or more bytes than `out` holds.
std::optional<std::size_t> decode_b64(std::string_view text, const B64Alphabet& a,
                                      std::span<std::uint8_t> out) {
  if (text.size() % 4 == 1)
    return std::nullopt;
  std::size_t o = 0;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = b64_value(c, a);
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= out.size())
        return std::nullopt;
      out[o++] = static_cast<std::uint8_t>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0)  // non-canonical trailing bits
    return std::nullopt;
  return o;
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string s;
  s.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    s.push_back(kHexDigits[b >> 4]);
    s.push_back(kHexDigits[b & 15]);
  }
  return s;
}

bool from_hex(std::string_view text, std::span<std::uint8_t> out) {
  if (text.size() != out.size() * 2)
    return false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(text[2 * i]);
    int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

std::optional<std::vector<std::uint8_t>> from_hex(std::string_view text) {
  if (text.size() % 2 != 0)
    return std::nullopt;
  std::vector<std::uint8_t> out(text.size() / 2);
  if (!from_hex(text, out))
    return std::nullopt;
  return out;
}

std::string to_base64(std::span<const std::uint8_t> bytes) {
  return encode_b64(bytes, kStd, /*pad=*/true);
}

bool from_base64(std::string_view text, std::span<std::uint8_t> out) {
  if (text.size() != (out.size() + 2) / 3 * 4)
    return false;
  // Padding: at most two '=' and only at the end; any other '=' is refused by the decoder as a
  // character outside the alphabet. The fixed length above then makes the pad count exact.
  for (int k = 0; k < 2 && !text.empty() && text.back() == '='; ++k)
    text.remove_suffix(1);
  auto n = decode_b64(text, kStd, out);
  return n && *n == out.size();
}

std::string to_base64url(std::span<const std::uint8_t> bytes) {
  return encode_b64(bytes, kUrl, /*pad=*/false);
}

std::optional<std::vector<std::uint8_t>> from_base64url(std::string_view text) {
  std::vector<std::uint8_t> out(text.size() * 3 / 4);
  auto n = decode_b64(text, kUrl, out);
  if (!n)
    return std::nullopt;
  out.resize(*n);
  return out;
}

}  // namespace warren
