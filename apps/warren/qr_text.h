#pragma once
/// A QR code for a terminal: `warren server export --qr` shows a client config to a phone's
/// WireGuard app. libqrencode makes the symbol; this draws it as text.
///
///   text ──qr_encode (libqrencode, 8-bit mode, level L)──► QrSymbol ──qr_render──► lines
///
/// Drawing, with the 4-module quiet zone the standard asks for around the symbol:
///   * kUtf8: two module rows per line with the half blocks ▀ ▄ █ and a space, each line in
///     black on white (ANSI SGR 30;47, reset at its end), so the symbol is dark on light
///     whatever the terminal's colours (as `qrencode -t ansiutf8`, which the WireGuard
///     documentation uses). A symbol of W modules is W + 8 columns and (W + 9) / 2 lines.
///   * kAscii: one module row per line, a module as two characters ("##" dark, two spaces
///     light), no escapes: for terminals without UTF-8 or colour. Dark on light only where the
///     terminal draws dark text on a light background. W + 8 lines of 2 * (W + 8) characters.
///
/// The text encoded is a secret (it holds a private key): the symbol wipes its modules when
/// destroyed, the caller wipes the rendering after printing it, and nothing here logs.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace warren::apps {

inline constexpr int kQrQuietZone = 4;

struct QrSymbol {
  int version = 0;                 ///< 1..40
  int width = 0;                   ///< modules per side: 17 + 4 * version
  std::vector<std::uint8_t> dark;  ///< width * width, row-major, 1 = dark
  QrSymbol() = default;
  QrSymbol(QrSymbol&&) = default;
  QrSymbol& operator=(QrSymbol&&) = default;
  ~QrSymbol();
  [[nodiscard]] bool at(int x, int y) const {
    return x >= 0 && y >= 0 && x < width && y < width &&
           dark[static_cast<std::size_t>(y * width + x)] != 0;
  }
};

/// Encodes `text` as bytes (8-bit mode) at error correction level L (the smallest symbol; a
/// screen is a clean medium). Fails when the text does not fit in version 40.
[[nodiscard]] Result<QrSymbol> qr_encode(std::string_view text);

enum class QrStyle { kUtf8, kAscii };

/// The symbol with its quiet zone as lines of text (see above), each ending in '\n'.
[[nodiscard]] std::string qr_render(const QrSymbol& symbol, QrStyle style);

}  // namespace warren::apps
