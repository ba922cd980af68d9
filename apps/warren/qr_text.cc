// QR codes for the terminal (see qr_text.h).

#include "qr_text.h"

#include <qrencode.h>

#include <cerrno>
#include <memory>

#include "base/secure.h"

namespace warren::apps {

QrSymbol::~QrSymbol() {
  if (!dark.empty())
    secure_zero(dark.data(), dark.size());
}

Result<QrSymbol> qr_encode(std::string_view text) {
  // The largest symbol (version 40) holds 2953 bytes at level L (ISO/IEC 18004 table 7).
  constexpr std::size_t kMaxBytes = 2953;
  if (text.empty())
    return Error(EINVAL, "nothing to encode in a QR code");
  if (text.size() > kMaxBytes)
    return Error(ERANGE, "the text (" + std::to_string(text.size()) +
                             " bytes) is too long for a QR code (at most 2953)");
  // libqrencode wants a NUL-terminated string; the copy holds the secret too.
  std::string copy(text);
  struct Free {
    void operator()(QRcode* q) const {
      if (q->data)
        secure_zero(q->data,
                    static_cast<std::size_t>(q->width) * static_cast<std::size_t>(q->width));
      QRcode_free(q);
    }
  };
  std::unique_ptr<QRcode, Free> q(
      QRcode_encodeString8bit(copy.c_str(), /*version=*/0, QR_ECLEVEL_L));
  secure_zero(copy.data(), copy.size());
  if (!q)
    return Error(ENOMEM, "libqrencode could not encode the text");
  QrSymbol s;
  s.version = q->version;
  s.width = q->width;
  s.dark.resize(static_cast<std::size_t>(q->width) * static_cast<std::size_t>(q->width));
  // libqrencode: bit 0 of each byte is the module's colour (1 = dark); the rest is metadata.
  for (std::size_t i = 0; i < s.dark.size(); ++i)
    s.dark[i] = q->data[i] & 1;
  return s;
}

std::string qr_render(const QrSymbol& s, QrStyle style) {
  const int lo = -kQrQuietZone, hi = s.width + kQrQuietZone;  // [lo, hi) with the quiet zone
  std::string out;
  if (style == QrStyle::kAscii) {
    for (int y = lo; y < hi; ++y) {
      for (int x = lo; x < hi; ++x)
        out += s.at(x, y) ? "##" : "  ";
      out += '\n';
    }
    return out;
  }
  for (int y = lo; y < hi; y += 2) {
    out += "\033[30;47m";
    for (int x = lo; x < hi; ++x) {
      const bool top = s.at(x, y), bottom = s.at(x, y + 1);  // below the last row: light
      out += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    out += "\033[0m\n";
  }
  return out;
}

}  // namespace warren::apps
