#pragma once
/// Hex and base64 as `wg` prints keys: lowercase hex (UAPI) and standard padded base64 (wg);
/// unpadded base64url (RFC 4648 §5) for invites. Both base64 forms share one decoder.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace warren {

std::string to_hex(std::span<const std::uint8_t> bytes);
/// Decodes hex of exactly `out.size()` bytes (either case); false on any other input.
[[nodiscard]] bool from_hex(std::string_view text, std::span<std::uint8_t> out);
std::optional<std::vector<std::uint8_t>> from_hex(std::string_view text);

std::string to_base64(std::span<const std::uint8_t> bytes);
/// Decodes padded standard base64 of exactly `out.size()` bytes; false on anything else,
/// including non-canonical trailing bits (as wg's key_from_base64 does).
[[nodiscard]] bool from_base64(std::string_view text, std::span<std::uint8_t> out);

/// Unpadded base64url (RFC 4648 §5: '-' and '_' for 62 and 63, no '=').
std::string to_base64url(std::span<const std::uint8_t> bytes);
/// Decodes unpadded base64url of any length; nullopt on a character outside the alphabet
/// (including '='), a length = 1 (mod 4) or non-canonical trailing bits.
std::optional<std::vector<std::uint8_t>> from_base64url(std::string_view text);

}  // namespace warren
