#pragma once
/// The one error type of warren: every fallible operation outside the per-packet verdicts
/// returns `Result<T>` (a value, or an `Error`), and `Status` (= `Result<void>`) when there is
/// no value. Replaces `{errno, message}` structs, empty-string-as-success and out-parameters.
///
///   Result<std::uint16_t> open_port(...);
///   auto r = open_port(...);
///   if (!r) return r.error();            // Error converts into any Result<U>
///   use(*r);
///
/// `Error::code` is a positive errno value (EINVAL, EADDRINUSE, ...) so that the UAPI and the
/// platform layer can hand it on unchanged; `message` says what failed, for an operator.
/// `Error::op` names the failing operation ("ioctl(TUNSETIFF)") where a system call failed; it
/// always points to a string literal. EAGAIN is a normal state (`would_block()`), not an error
/// to log.
///
/// Like std::expected (C++23, unavailable with g++ 12 in C++20 mode): accessing the value of
/// an error result, or the error of a success, is a programming error (checked by assert).

#include <cassert>
#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace warren {

struct Error {
  int code = EIO;            ///< positive errno value; never 0
  std::string message;       ///< for an operator; may be empty when `op` says it all
  const char* op = nullptr;  ///< the failing operation (a string literal), may be null

  Error() = default;
  Error(int c, std::string m) : code(c == 0 ? EIO : c), message(std::move(m)) {}
  /// A failed system call: "op: strerror(code)" is its message.
  static Error from_errno(int c, const char* what) {
    Error e;
    e.code = c == 0 ? EIO : c;
    e.op = what;
    return e;
  }
  bool would_block() const { return code == EAGAIN || code == EWOULDBLOCK; }
  /// `message`, else "op: strerror(code)", else strerror(code).
  std::string text() const;
  /// "context: text()" — for adding what the caller was doing.
  Error with_context(const std::string& context) const {
    Error e = *this;
    e.message = context + ": " + text();
    return e;
  }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  bool would_block() const { return !ok() && error().would_block(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }
  /// 0 on success, else the errno value.
  int code() const { return ok() ? 0 : error().code; }
  /// "" on success, else error().text().
  std::string message() const { return ok() ? std::string() : error().text(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  Result(Error e) : error_(std::move(e)), failed_(true) {}  // NOLINT: implicit

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  bool would_block() const { return failed_ && error_.would_block(); }
  const Error& error() const& {
    assert(failed_);
    return error_;
  }
  Error&& error() && {
    assert(failed_);
    return std::move(error_);
  }
  int code() const { return failed_ ? error_.code : 0; }
  std::string message() const { return failed_ ? error_.text() : std::string(); }

 private:
  Error error_{};
  bool failed_ = false;
};

/// Success or an Error, no value.
using Status = Result<void>;

/// A successful Status (for `return ok();` where the type is spelled out elsewhere).
inline Status ok() {
  return {};
}

}  // namespace warren
