#pragma once
/// Secret storage: fixed-size byte arrays that are wiped when they die or are overwritten.
/// Keys, chaining keys and ephemeral private keys live in these so no copy outlives its use.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace warren {

/// Zeroes `len` bytes in a way the optimiser may not remove (glibc's explicit_bzero).
void secure_zero(void* p, std::size_t len) noexcept;

/// Compares in time that depends only on the length, never on where the bytes differ.
[[nodiscard]] bool constant_time_equal(std::span<const std::uint8_t> a,
                                       std::span<const std::uint8_t> b) noexcept;

/// True when every byte is zero, in constant time.
[[nodiscard]] bool constant_time_is_zero(std::span<const std::uint8_t> a) noexcept;

template <std::size_t N>
class Secret {
 public:
  Secret() noexcept { bytes_.fill(0); }
  explicit Secret(std::span<const std::uint8_t, N> b) noexcept {
    std::memcpy(bytes_.data(), b.data(), N);
  }
  Secret(const Secret& o) noexcept : bytes_(o.bytes_) {}
  Secret& operator=(const Secret& o) noexcept {
    bytes_ = o.bytes_;
    return *this;
  }
  ~Secret() { secure_zero(bytes_.data(), N); }

  std::uint8_t* data() noexcept { return bytes_.data(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  std::span<std::uint8_t, N> span() noexcept { return std::span<std::uint8_t, N>(bytes_); }
  std::span<const std::uint8_t, N> span() const noexcept {
    return std::span<const std::uint8_t, N>(bytes_);
  }
  void clear() noexcept { secure_zero(bytes_.data(), N); }
  [[nodiscard]] bool is_zero() const noexcept { return constant_time_is_zero(bytes_); }

 private:
  std::array<std::uint8_t, N> bytes_;
};

}  // namespace warren
