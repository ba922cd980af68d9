#include "base/secure.h"

#include <string.h>

namespace warren {

void secure_zero(void* p, std::size_t len) noexcept {
  if (len == 0)
    return;  // explicit_bzero's pointer must be valid even for zero bytes
  explicit_bzero(p, len);
}

bool constant_time_equal(std::span<const std::uint8_t> a,
                         std::span<const std::uint8_t> b) noexcept {
  if (a.size() != b.size())
    return false;
  volatile std::uint8_t acc = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    acc = acc | static_cast<std::uint8_t>(a[i] ^ b[i]);
  return acc == 0;
}

bool constant_time_is_zero(std::span<const std::uint8_t> a) noexcept {
  volatile std::uint8_t acc = 0;
  for (auto byte : a)
    acc = acc | byte;
  return acc == 0;
}

}  // namespace warren
