#pragma once
/// Outcomes of operating-system calls: a value plus the errno that explains a failure.
///
/// Every system call is wrapped once in src/platform/linux and reports through these types, so
/// callers never read `errno` themselves. EAGAIN is a normal state (`would_block()`), not an
/// error to log. `op` names the failing call ("ioctl(TUNSETIFF)") for start-up messages; it
/// always points to a string literal.

#include <cerrno>
#include <string>
#include <utility>

namespace warren::platform {

/// Success or a positive errno.
struct [[nodiscard]] Status {
  int error = 0;             ///< 0 on success, else a positive errno value
  const char* op = nullptr;  ///< the failing operation (a string literal), may be null

  static Status ok_status() { return {}; }
  static Status failure(int err, const char* what) { return Status{err, what}; }

  bool ok() const { return error == 0; }
  bool would_block() const { return error == EAGAIN || error == EWOULDBLOCK; }
  /// "op: strerror(error)", or "success".
  std::string message() const;
};

/// A value on success, or a positive errno (and then `value` is default-constructed).
template <typename T>
struct [[nodiscard]] Result {
  T value{};
  int error = 0;
  const char* op = nullptr;

  static Result success(T v) { return Result{std::move(v), 0, nullptr}; }
  static Result failure(int err, const char* what) { return Result{T{}, err, what}; }
  static Result failure(const Status& s) { return Result{T{}, s.error, s.op}; }

  bool ok() const { return error == 0; }
  bool would_block() const { return error == EAGAIN || error == EWOULDBLOCK; }
  Status status() const { return Status{error, op}; }
  std::string message() const { return status().message(); }
};

}  // namespace warren::platform
