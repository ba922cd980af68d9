#pragma once
/// Process-wide logging to stderr in wireguard-go's shape:
///
///   ERROR: (wg0) 2024/05/01 12:00:00 Failed to bind UDP socket: Address already in use
///
/// or, when stderr is the systemd journal, with the priority and without the timestamp:
///
///   <3>ERROR: (wg0) Failed to bind UDP socket: Address already in use
///
/// Levels follow wireguard-go's LOG_LEVEL (silent < error < verbose < debug); "verbose" and
/// "debug" differ only in that debug also prints per-event detail. Never pass key material,
/// preshared keys or packet contents to these functions.
///
/// Thread-safety: every function may be called from any thread. Each message is formatted on
/// the caller's stack and written with a single call, so lines never interleave. The level is
/// an atomic, so `log_enabled()` is cheap enough for the data path (the data path logs only
/// at debug level and only after checking it).

#include <cstdarg>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace warren::platform {

class LogFile;  // platform/log_output.h

enum class LogLevel : int { kSilent = 0, kError = 1, kVerbose = 2, kDebug = 3 };

/// "silent", "error", "verbose", "debug" (as wireguard-go); nullopt otherwise.
std::optional<LogLevel> parse_log_level(std::string_view text);
/// LOG_LEVEL from the environment; error when unset or unknown.
LogLevel log_level_from_env();

/// Sets the level and the interface name shown in every line ("" = no interface prefix), and
/// journal mode when stderr is the journal (see log_set_journal).
void log_configure(LogLevel level, std::string interface_name);
void log_set_level(LogLevel level);
LogLevel log_level();
inline bool log_enabled(LogLevel level);

/// Redirects complete lines (with the trailing newline) to `sink` instead of stderr; an empty
/// function restores stderr. For tests.
void log_set_output(std::function<void(std::string_view line)> sink);

/// Journal mode (platform/log_output.h): each line starts with its sd-daemon priority, "<3>"
/// for errors, "<6>" for verbose and "<7>" for debug, and carries no timestamp. log_configure()
/// turns it on exactly when stderr is the journal (JOURNAL_STREAM names stderr); this sets it
/// directly (tests).
void log_set_journal(bool on);
bool log_journal();

/// Sends lines to `file` instead of stderr (a backgrounded client daemon, runtime/runtime.h);
/// null restores stderr. Journal mode is turned off: a file wants timestamps, not priorities.
void log_set_file(std::unique_ptr<LogFile> file);

void log_message(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));
void log_vmessage(LogLevel level, const char* format, va_list args)
    __attribute__((format(printf, 2, 0)));

void log_error(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_verbose(const char* format, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char* format, ...) __attribute__((format(printf, 1, 2)));

namespace detail {
int current_log_level() noexcept;
}  // namespace detail

inline bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= detail::current_log_level();
}

}  // namespace warren::platform
